"""The report for pandoc: downloaded beside the CSL-JSON references, ``pandoc --citeproc``
resolves every citation and writes one reference list; the ready-to-read report stays as it
was. The real pandoc is the oracle."""

from __future__ import annotations

import html
import json
import re
import subprocess

import pytest

from annotations.models import Annotation
from tests.conftest import archive_text, program
from tests.helpers import cite_everything

pytestmark = pytest.mark.django_db


def save_downloads(client, tmp_path, *formats: str, query: str = "") -> dict[str, str]:
    """Each format downloaded into tmp_path under the name the browser would give it."""
    names = {}
    for fmt in formats:
        response = client.get(
            f"/collections/field-notes/export/{fmt}" + (f"?{query}" if query else "")
        )
        assert response.status_code == 200
        found = re.search(r'filename="([^"]+)"', response["Content-Disposition"])
        assert found is not None
        name = found.group(1)
        (tmp_path / name).write_bytes(b"".join(response.streaming_content))
        names[fmt] = name
    return names


def pandoc(tmp_path, *args: str) -> tuple[str, str]:
    """Run pandoc in the folder holding the downloads, as a researcher would."""
    done = subprocess.run(
        [program("pandoc", "pandoc"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout, done.stderr


def annotate(author, source, quote: str, note: str = "", **kwargs) -> Annotation:
    start = source.text.index(quote)
    return Annotation.create_anchored(
        author=author, source=source, start=start, end=start + len(quote), note=note, **kwargs
    )


def test_download_names_the_sibling_references_file_in_its_yaml_block(client, owner, annotated):
    client.force_login(owner)
    response = client.get("/collections/field-notes/export/pandoc")
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="field-notes-report-pandoc.md"'
    text = b"".join(response.streaming_content).decode()
    block = text.split("---\n")[1]
    assert 'bibliography: "field-notes-sources.json"\n' in block
    assert 'title: "Field notes"\n' in block and "date: " in block
    assert "## Bibliography" not in text  # citeproc writes the reference list
    assert f"[@{annotated['alpha'].citation_key}]" in text


@pytest.mark.tools
def test_pandoc_citeproc_resolves_every_citation_and_writes_one_reference_list(
    client, owner, annotated, tmp_path
):
    alpha, beta = annotated["alpha"], annotated["beta"]
    cite_everything(owner, annotated)  # a passage, an annotation, a DOI, a source elsewhere
    annotate(
        owner,
        alpha,
        "other things",
        f"As [@{beta.citation_key}, p. 4] says, but not [see @nosuchkey];"
        " ask @harbour or bob@example.org. `@code` stays. <https://mastodon.social/@ledger>"
        " and https://mastodon.social/@ledger too.",
    )
    client.force_login(owner)
    names = save_downloads(client, tmp_path, "pandoc", "csljson")
    references = json.loads((tmp_path / names["csljson"]).read_text())

    # The command line, word for word.
    plain, warnings = pandoc(
        tmp_path,
        "--citeproc",
        "--bibliography",
        names["csljson"],
        names["pandoc"],
        "-t",
        "plain",
        "--wrap=none",
    )
    assert warnings == ""  # no "Citeproc: citation ... not found"
    assert "Bibliography" not in plain
    assert "As (“Beta Notes” n.d., 4) says" in plain  # the note's [@beta, p. 4], resolved
    assert "[see @nosuchkey]" in plain and "ask @harbour or bob@example.org" in plain
    assert "@code" in plain
    assert "https://mastodon.social/@ledger and https://mastodon.social/@ledger too" in plain

    # Without --bibliography: the YAML block names the file. HTML shows where things are.
    page, warnings = pandoc(
        tmp_path, "--citeproc", "-s", "-t", "html", "--wrap=none", names["pandoc"]
    )
    assert warnings == ""
    assert "<title>Field notes</title>" in page
    assert page.count('id="refs"') == 1 and page.count('class="references') == 1
    refs = page[page.index('id="refs"') :]
    entries = re.findall(r'<div id="ref-([^"]+)"', refs)
    assert sorted(entries) == sorted(item["id"] for item in references)
    assert len(entries) == 3  # alpha, beta, and the DOI the citations name
    assert "Winters of the North" in refs and "alpha report" in refs.lower()  # title case
    # link-citations: the note's citation links to its entry.
    assert f'href="#ref-{beta.citation_key}"' in page


@pytest.mark.tools
def test_pandoc_reads_titles_and_quotes_exactly_as_written(client, owner, collection, tmp_path):
    collection.title = "Field notes: \"one\" #1 'two' @x *y*\n--- and more"
    collection.save()
    text = 'Ledger 1709. *Stars* <b>bold</b> $x$ @harbour [link](x) _u_ -- "q" a\\b &amp; end.'
    source = archive_text(text, owner, collection, metadata={"title": "A *title* [@x]"})
    annotate(owner, source, text, "A note.")
    client.force_login(owner)
    names = save_downloads(client, tmp_path, "pandoc", "csljson")
    (tmp_path / "title.tpl").write_text("$title$\n")
    title, warnings = pandoc(
        tmp_path, "--citeproc", "--template", "title.tpl", "-t", "plain", names["pandoc"]
    )
    assert warnings == ""
    assert title == "Field notes: \"one\" #1 'two' @x *y* --- and more\n"  # the line break: a space
    plain, warnings = pandoc(tmp_path, "--citeproc", "-t", "plain", "--wrap=none", names["pandoc"])
    assert warnings == ""
    assert f"  {text}\n" in plain  # the quote, indented as plain text shows a block quote
    assert "A *title* [@x]\n" in plain  # the heading


@pytest.mark.tools
def test_ready_to_read_report_still_prints_its_references_for_pandoc_without_citeproc(
    client, owner, annotated, tmp_path
):
    client.force_login(owner)
    names = save_downloads(client, tmp_path, "markdown")
    text = (tmp_path / names["markdown"]).read_text()
    assert text.startswith("# Field notes\n")  # no YAML block: it reads as it did
    page, warnings = pandoc(tmp_path, "-t", "html", names["markdown"])
    assert warnings == ""
    assert page.count('id="bibliography"') == 1
    bibliography = page[page.index('id="bibliography"') :]
    for source in (annotated["alpha"], annotated["beta"]):
        assert html.escape(source.title) in bibliography and source.sha256 in bibliography


def test_command_writes_the_pandoc_report(owner, annotated, tmp_path):
    from django.core.management import call_command

    out = tmp_path / "report.md"
    call_command("export_collection", "field-notes", "--format=pandoc", "-o", str(out))
    text = out.read_text()
    assert text.startswith('---\ntitle: "Field notes"\n')
    assert "MAYAPRIVATE" not in text and "# References" in text
