"""References that real tools accept, checked by those tools: biber (biblatex's data model),
LaTeX with biblatex (the year an entry is cited by), pandoc (BibLaTeX read as CSL-JSON),
bibtexparser, and citeproc-js (the formatted Chicago and APA references).

Each tool installs from Debian or npm (see .ci/run); a test is skipped locally when its tool
is missing, and fails in CI (SCHOLION_REQUIRE_TOOLS=1)."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import bibtexparser
import citeproc
import pytest

from annotations.models import Annotation, Citation, CitationSpec
from archive.cite import bibtex, csl_json
from archive.csl_processor import CSL_DIR, STYLES, formatted_reference
from archive.models import Source
from tests.conftest import REQUIRE_TOOLS, archive_text, program

pytestmark = [pytest.mark.django_db, pytest.mark.tools]

PERMALINK = "https://scholion.example/sources/x/"
# A DOI and a URL holding characters LaTeX escapes: they must reach the tools unchanged.
DOI = "10.1234/jaeh.1998.042_3"
URL = "https://example.org/a?x=1&y=2_z%5C#top"
NODE_DIR = Path(__file__).parent / "node"

# Source metadata as archive_text takes it: text fields, and lists of names.
Metadata = dict[str, str | list[str]]

COMMON: Metadata = {"creators": ["Okafor, Ada", "Per Lund"], "date_published": "1998-05-02"}
KINDS: dict[str, Metadata] = {
    "article-newspaper": {
        "title": "Dockers Walk Out",
        "container_title": "The Harbour Times",
        "url": URL,
    },
    "webpage": {"title": "Strike & Bread: 100% of $5_#", "publisher": "Port Review", "url": URL},
    "report": {"title": "Harbour Safety", "publisher": "Port Authority"},
    "article-journal": {
        "title": "Grain Prices in 1900",
        "container_title": "Journal of Ports",
        "volume": "12",
        "issue": "3",
        "pages": "45–67",
        "doi": DOI,
    },
    "book": {"title": "Harbours", "publisher": "Tide", "isbn": "978-0-306-40615-7"},
    "chapter": {
        "title": "The Strike",
        "container_title": "Ports of Europe",
        "editors": ["Ruiz, Ana"],
        "publisher": "Tide",
        "pages": "10–20",
    },
    "thesis": {"title": "Labour on the Docks", "publisher": "University of Lagos"},
    "interview": {"title": "Interview with a Docker"},
    "dataset": {"title": "Port Tonnage 1890–1910", "publisher": "Zenodo", "doi": DOI},
    "document": {"title": "Leaflet: Why Strike?"},
}


@pytest.fixture
def sources(owner, collection):
    """One source of every type with what its references need, dated and with creators."""
    return {
        kind: archive_text(
            f"A {kind}.",
            owner,
            collection,
            metadata={**COMMON, **metadata, "source_type": kind},
        )
        for kind, metadata in KINDS.items()
    }


@pytest.fixture
def undated(owner, collection):
    return archive_text(
        "Undated leaflet.",
        owner,
        collection,
        metadata={"title": "Undated Leaflet", "source_type": "webpage", "url": URL},
    )


def write_bib(tmp_path: Path, *sources: Source) -> Path:
    path = tmp_path / "refs.bib"
    path.write_text("\n".join(bibtex(s, PERMALINK) for s in sources), encoding="utf-8")
    return path


def biber_warnings(bib: Path) -> list[str]:
    biber = program("biber", "biber")
    result = subprocess.run(
        [biber, "--tool", "--validate-datamodel", f"--output-file={bib.name}.out", bib.name],
        capture_output=True,
        text=True,
        cwd=bib.parent,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [
        line.split(" - ", 1)[1]
        for line in (result.stdout + result.stderr).splitlines()
        if line.startswith(("WARN", "ERROR"))
    ]


# --- biber: biblatex's data model -------------------------------------------------------------


def test_biber_finds_every_field_of_every_type_valid(sources, tmp_path):
    assert biber_warnings(write_bib(tmp_path, *sources.values())) == []


def test_biber_reads_external_references_cited_in_notes_as_valid(demo_source, member, tmp_path):
    note = Annotation.create_anchored(author=member, source=demo_source, start=0, end=5)
    specs: list[CitationSpec] = [
        {
            "url": URL,
            "doi": DOI,
            "title": "Dockers out",
            "creators": ["Ruiz, Ana"],
            "date_published": "2001-02",
            "publisher": "The Harbour Times",
            "reference_type": kind,
        }
        for kind in Citation.ReferenceType.values
    ]
    note.replace_citations(Citation.build_all(specs, user=member, citing=note))
    from archive.cite import bibtex_from_csl

    bib = tmp_path / "external.bib"
    bib.write_text("\n".join(bibtex_from_csl(c.csl_json()) for c in note.citations.all()))
    assert biber_warnings(bib) == []


def test_biber_notes_only_the_missing_date_of_an_undated_source(undated, tmp_path):
    """biblatex requires a date, and biber accepts no value that says "undated"."""
    assert biber_warnings(write_bib(tmp_path, undated)) == [
        f"Datamodel: Entry '{undated.citation_key}' (refs.bib): Missing mandatory field"
        " - one of 'date, year' must be defined"
    ]


# --- LaTeX with biblatex: the year an entry is cited by --------------------------------------


def test_biblatex_cites_an_undated_source_as_n_d_not_by_the_day_it_was_archived(
    sources, undated, tmp_path
):
    pdflatex = program("pdflatex", "texlive-latex-recommended")
    biber = program("biber", "biber")
    write_bib(tmp_path, sources["webpage"], undated)
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage[style=authoryear,backend=biber]{biblatex}\n"
        "\\addbibresource{refs.bib}\n\\begin{document}\n\\nocite{*}\n\\printbibliography\n"
        "\\end{document}\n"
    )
    latex = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-draftmode", "doc.tex"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    if not (tmp_path / "doc.bcf").exists():
        message = f"LaTeX could not load biblatex: {latex.stdout[-500:]}"
        if REQUIRE_TOOLS:
            pytest.fail(message)
        pytest.skip(message + " (apt-get install -y texlive-latex-recommended)")
    subprocess.run([biber, "--quiet", "doc"], cwd=tmp_path, check=True, capture_output=True)
    bbl = (tmp_path / "doc.bbl").read_text()

    def label_date(source: Source) -> tuple[str, str]:
        entry = re.search(rf"\\entry\{{{source.citation_key}\}}(.*?)\\endentry", bbl, re.S)
        assert entry is not None
        fields = dict(re.findall(r"\\field\{(\w+)\}\{([^}]*)\}", entry.group(1)))
        return fields["labeldatesource"], fields.get("year", "")

    # "nodate": biblatex prints its n.d. string, never the archive date's year (urldate).
    assert label_date(undated) == ("nodate", "")
    assert label_date(sources["webpage"]) == ("", "1998")


# --- pandoc: BibLaTeX read as CSL-JSON --------------------------------------------------------


def pandoc_items(bib: Path) -> dict[str, dict]:
    pandoc = program("pandoc", "pandoc")
    result = subprocess.run(
        [pandoc, "-f", "biblatex", "-t", "csljson", str(bib)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {item["id"]: item for item in json.loads(result.stdout)}


def test_pandoc_reads_the_doi_url_and_type_of_each_source_unchanged(sources, tmp_path):
    items = pandoc_items(write_bib(tmp_path, *sources.values()))
    assert items[sources["article-journal"].citation_key]["DOI"] == DOI
    assert items[sources["dataset"].citation_key]["DOI"] == DOI
    assert items[sources["webpage"].citation_key]["URL"] == URL
    assert items[sources["article-newspaper"].citation_key]["URL"] == URL
    for kind in ("article-newspaper", "webpage", "report", "article-journal", "book", "chapter"):
        assert items[sources[kind].citation_key]["type"] == kind
    assert items[sources["thesis"].citation_key]["type"] == "thesis"
    assert items[sources["dataset"].citation_key]["type"] == "dataset"
    journal = items[sources["article-journal"].citation_key]
    assert (journal["container-title"], journal["volume"], journal["issue"]) == (
        "Journal of Ports",
        "12",
        "3",
    )
    chapter = items[sources["chapter"].citation_key]
    assert chapter["editor"] == [{"family": "Ruiz", "given": "Ana"}]
    assert chapter["page"] == "10-20"  # pandoc writes the en dash of a range as a hyphen


def test_pandoc_reads_an_undated_source_as_undated(undated, tmp_path):
    item = pandoc_items(write_bib(tmp_path, undated))[undated.citation_key]
    assert "issued" not in item
    assert item["URL"] == URL


# --- bibtexparser --------------------------------------------------------------------------


def test_bibtexparser_reads_the_doi_and_url_verbatim(sources):
    from bibtexparser.bparser import BibTexParser

    text = "\n".join(bibtex(s, PERMALINK) for s in sources.values())
    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False)
    entries = {e["ID"]: e for e in bibtexparser.loads(text, parser=parser).entries}
    journal = entries[sources["article-journal"].citation_key]
    assert journal["doi"] == DOI and "\\" not in journal["url"]
    assert entries[sources["webpage"].citation_key]["url"] == URL
    newspaper = entries[sources["article-newspaper"].citation_key]
    assert (newspaper["ENTRYTYPE"], newspaper["entrysubtype"]) == ("article", "newspaper")
    assert entries[sources["book"].citation_key]["isbn"] == "9780306406157"


def test_a_brace_in_a_url_cannot_end_the_field(owner, collection):
    source = archive_text(
        "x", owner, collection, metadata={"title": "Braces", "url": "https://example.org/{a}"}
    )
    from bibtexparser.bparser import BibTexParser

    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False)
    entry = bibtexparser.loads(bibtex(source, PERMALINK), parser=parser).entries[0]
    assert entry["url"] == "https://example.org/%7Ba%7D"


# --- citeproc-js: the formatted references ----------------------------------------------------


def citeproc_js(items: list[dict], style: str) -> list[str]:
    node = program("node", "nodejs")
    if not (NODE_DIR / "node_modules" / "citeproc").exists():
        npm = program("npm", "npm")
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
        if installed.returncode != 0:
            message = f"npm ci failed in tests/node: {installed.stderr[-500:]}"
            if REQUIRE_TOOLS:
                pytest.fail(message)
            pytest.skip(message)
    # citeproc-py's own en-US locale, so that the two processors are given the same terms.
    locale = Path(citeproc.__file__).parent / "data" / "locales" / "locales-en-US.xml"
    request = {
        "style": (CSL_DIR / STYLES[style]).read_text(encoding="utf-8"),
        "locale": locale.read_text(encoding="utf-8"),
        "items": items,
    }
    result = subprocess.run(
        [node, str(NODE_DIR / "render.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def as_text_with_markup(entry: str) -> str:
    """An entry without citeproc-js's wrapping div, its entities as characters."""
    entry = re.sub(r'^<div class="csl-entry">|</div>$', "", entry.strip())
    return html.unescape(entry)


@pytest.fixture
def every_kind_of_reference(sources, undated, owner, collection):
    """Each type with creators and a date; the same without either; an undated page."""
    anonymous = {
        kind: archive_text(
            f"An anonymous {kind}.",
            owner,
            collection,
            metadata={**metadata, "source_type": kind},
        )
        for kind, metadata in KINDS.items()
    }
    return [*sources.values(), *anonymous.values(), undated]


@pytest.mark.parametrize("style", ["chicago", "apa"])
def test_formatted_references_match_citeproc_js(every_kind_of_reference, style):
    items = [csl_json(s, PERMALINK) for s in every_kind_of_reference]
    expected = [as_text_with_markup(e) for e in citeproc_js(items, style)]
    ours = [html.unescape(formatted_reference(item, style)) for item in items]
    mismatches = [(o, e) for o, e in zip(ours, expected, strict=True) if o != e]
    assert not mismatches, "\n\n".join(f"ours:        {o}\nciteproc-js: {e}" for o, e in mismatches)


def test_chicago_puts_the_period_inside_the_closing_quotation_mark(sources):
    item = csl_json(sources["article-journal"], PERMALINK)
    reference = formatted_reference(item, "chicago")
    assert "“Grain Prices in 1900.” <i>Journal of Ports</i> 12 (3): 45–67." in reference
    assert "1900”." not in reference


def test_a_news_article_is_not_ahead_of_print_and_says_where_it_appeared(sources):
    reference = formatted_reference(csl_json(sources["article-newspaper"], PERMALINK), "chicago")
    assert "ahead of print" not in reference
    assert "“Dockers Walk Out.” <i>The Harbour Times</i>, May 2." in reference
