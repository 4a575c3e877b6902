"""Notes are rendered once, when written: every page reads the stored form, and each reader's
citation links are filled in without parsing any Markdown."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import nh3
import pytest
from django.test import Client
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

from annotations.citekeys import GROUP_RE, KeyTarget, parse_group
from annotations.markdown import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    link_citations,
    render_markdown,
    render_note,
)
from annotations.models import Annotation, Comment, DeletedAnnotation
from archive.models import Collection, Membership, Source
from tests.conftest import archive_text, stale_rendered_notes

# --- The renderer as it was before notes were stored: the reference ------------------------


def _reference_citation_rule(state, silent: bool) -> bool:
    if state.src[state.pos] != "[":
        return False
    match = GROUP_RE.match(state.src, state.pos)
    if match is None or match.end() > state.posMax:
        return False
    items = parse_group(match.group(1))
    if not items:
        return False
    if not silent:
        token = state.push("citation", "", 0)
        token.meta = {"items": items}
        token.content = match.group(0)
    state.pos = match.end()
    return True


def _reference_render_citation(self, tokens, idx, options, env) -> str:
    targets = env.get("cite")
    parts = []
    for item in tokens[idx].meta["items"]:
        target = targets.get(item.key) if targets is not None else None
        if targets is None:
            inner = f'<span class="cite-key">@{escapeHtml(item.key)}</span>'
        elif target is None:
            why = escapeHtml(f"No source you can see has the citation key {item.key}")
            inner = f'<span class="cite-unresolved" title="{why}">@{escapeHtml(item.key)}</span>'
        else:
            label = target.label
            if item.suppress_author:
                label = label.rsplit(" ", 1)[-1]
            title = escapeHtml(f"{target.title} [@{item.key}]")
            inner = (
                f'<a class="cite" href="{escapeHtml(target.href)}" title="{title}">'
                f"{escapeHtml(label)}</a>"
            )
        parts.append(f"{escapeHtml(item.prefix)}{inner}{escapeHtml(item.suffix)}")
    return "(" + "; ".join(parts) + ")"


_reference_md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_reference_md.inline.ruler.before("link", "citation", _reference_citation_rule)
_reference_md.add_render_rule("citation", _reference_render_citation)


def reference_render(text: str, keys: Mapping[str, KeyTarget] | None) -> str:
    html = _reference_md.render(text, {"cite": None if keys is None else dict(keys)})
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener",
    )


KEYS = {
    "smith2024": KeyTarget("/sources/1/", "Smith 2024", 'On "bread" & <prices>'),
    "a<b&c": KeyTarget('/sources/"2/', "O'Neil & Co 1999", "T\xa0<i>itle</i>"),
    "x:y.z": KeyTarget("/sources/3/", "Kay 1900", "Plain"),
}
NOTES = [
    "",
    "Plain words.",
    "x [see @smith2024, p. 4] y",
    "[-@smith2024] and [@smith2024; @missing, ch. 2]",
    "[@a<b&c] [see -@a<b&c, p. 5 & 6]",
    "[@x:y.z.] ends with a full stop",
    "# A heading [@smith2024]\n\n> a quote [@missing]\n\n- item [@x:y.z]\n- *em* **strong**",
    "| a | b |\n|---|---|\n| [@smith2024] | [@missing; -@a<b&c] |",
    "```\n[@smith2024] in code\n```\n\n`[@smith2024]` inline code",
    "[a link](https://example.org/) and [@smith2024](https://example.org/) (a link, not a cite)",
    "[see [@smith2024]](http://x) nested",
    "<script>alert(1)</script> <b>bold</b> [x](javascript:alert(1)) ![img [@smith2024]](x.png)",
    'A forged placeholder: <span class="cite-key">@smith2024</span> and &lt;span&gt;',
    """[in a title](https://example.org/ '<span class="cite-key">@smith2024</span>')""",
    "mail@example.org [not a cite@smith2024] ~~gone~~",
    "Line one\nLine two  \nhard break [@smith2024]",
]


@pytest.mark.parametrize("note", NOTES)
@pytest.mark.parametrize("keys", ["resolved", "none-visible", "not-looked-up"])
def test_the_stored_form_reads_exactly_as_the_note_rendered_before(note, keys):
    resolved = {"resolved": KEYS, "none-visible": {}, "not-looked-up": None}[keys]
    expected = reference_render(note, resolved)
    assert link_citations(render_note(note).html, resolved) == expected
    assert render_markdown(note, resolved) == expected  # the preview's path, a draft


def test_a_forged_placeholder_in_a_notes_text_stays_text():
    html = link_citations(render_note('<span class="cite-key">@smith2024</span>').html, KEYS)
    assert "<span" not in html.replace("&lt;span", "")
    assert 'class="cite"' not in html


# --- Stored when written, by every way of writing -------------------------------------------


pytestmark = pytest.mark.django_db


@pytest.fixture
def cited(owner, member, stranger, collection):
    """A source in field-notes with the key ``ada1843``; one only its archiver (the stranger)
    may see, keyed ``secret1``."""
    seen = archive_text(
        "Alpha text to annotate, long enough for a few passages and notes on them.",
        owner,
        collection,
        metadata={"title": "Alpha report", "creators": ["Ada Lovelace"], "date_published": "1843"},
    )
    Source.objects.filter(pk=seen.pk).update(citation_key="ada1843")
    hidden_collection = Collection.objects.create(slug="hidden", title="Hidden", owner=stranger)
    Membership.objects.create(
        collection=hidden_collection, user=stranger, role=Membership.Role.OWNER
    )
    hidden = archive_text(
        "A private text.",
        stranger,
        hidden_collection,
        metadata={"title": "Secret Diary Title", "creators": ["Zed Hidden"]},
    )
    Source.objects.filter(pk=hidden.pk).update(citation_key="secret1")
    seen.refresh_from_db()
    return seen


NOTE = "As *shown* [see @ada1843, p. 4]; compare [@secret1] and [@nobody]."


def annotate(source, author, note=NOTE, start=0, **kwargs) -> Annotation:
    return Annotation.create_anchored(
        author=author, source=source, start=start, end=start + 5, note=note, **kwargs
    )


def test_creating_and_editing_an_annotation_stores_its_rendering(cited, member):
    annotation = annotate(cited, member)
    annotation.refresh_from_db()
    assert annotation.note_rendered == render_note(NOTE).html
    assert (
        annotation.note_plain == "As shown [see @ada1843, p. 4]; compare [@secret1] and [@nobody]."
    )
    annotation.update_content(
        editor=member, note="**New** [@ada1843]", tags=[], visibility="private"
    )
    assert annotation.note_rendered == render_note("**New** [@ada1843]").html
    annotation.refresh_from_db()
    assert annotation.note_rendered == render_note("**New** [@ada1843]").html
    assert annotation.note_plain == "New [@ada1843]"
    assert stale_rendered_notes() == []


def test_an_undone_delete_comes_back_rendered(cited, member):
    annotation = annotate(cited, member)
    annotation.delete_if_current()
    deleted = DeletedAnnotation.objects.get(uuid=annotation.uuid)
    assert "note_rendered" not in deleted.data["annotation"]  # not kept twice
    back = deleted.restore(member)
    back.refresh_from_db()
    assert back.note_rendered == render_note(NOTE).html
    assert stale_rendered_notes() == []


def test_replies_and_notes_on_a_source_store_their_rendering(cited, member, owner):
    annotation = annotate(cited, member)
    reply = Comment.reply(author=owner, to=annotation, note="*Yes* [@ada1843]")
    note = Comment.note_on(author=member, source=cited, note="On the whole: **good**")
    reply.change(note="*No*")
    reply.refresh_from_db()
    note.refresh_from_db()
    assert reply.note_rendered == render_note("*No*").html
    assert note.note_rendered == render_note("On the whole: **good**").html
    assert stale_rendered_notes() == []


def test_a_save_that_leaves_the_note_alone_does_not_render_it(cited, member, monkeypatch):
    annotation = annotate(cited, member)
    monkeypatch.setattr(
        "annotations.models.render_note", lambda text: pytest.fail("rendered again")
    )
    annotation.visibility = "private"
    annotation.save(update_fields=["visibility"])


def test_the_migration_fills_every_row_in_batches(cited, member, owner, monkeypatch):
    fill = importlib.import_module("annotations.migrations.0015_fill_rendered_notes")
    for i in range(5):
        annotate(cited, member, note=f"Note {i} [@ada1843]", start=i)
    Comment.note_on(author=owner, source=cited, note="A *note*")
    Annotation.objects.update(note_rendered=None, note_plain=None)
    Comment.objects.update(note_rendered=None)
    assert len(stale_rendered_notes()) == 6
    monkeypatch.setattr(fill, "BATCH", 2)
    fill.fill(Annotation, plain=True)
    fill.fill(Comment, plain=False)
    assert stale_rendered_notes() == []


def test_render_notes_renders_again_only_what_is_out_of_date(cited, member, owner):
    from io import StringIO

    from django.core.management import call_command

    fresh = annotate(cited, member, note="*fresh*")
    stale = annotate(cited, member, note="*stale*", start=10)
    Comment.note_on(author=owner, source=cited, note="A *note*")
    Annotation.objects.filter(pk=stale.pk).update(note_rendered="<p>old</p>", note_plain="old")
    Comment.objects.update(note_rendered=None)
    out = StringIO()
    call_command("render_notes", stdout=out)
    assert out.getvalue().startswith("1 annotation note(s) and 1 reply or source note(s)")
    assert stale_rendered_notes() == []
    fresh.refresh_from_db()
    assert fresh.note_rendered == "<p><em>fresh</em></p>\n"


# --- Pages read the stored form: no Markdown is parsed when they are shown ------------------


@pytest.fixture
def refuse_parsing(monkeypatch):
    """Call it once the notes are written: any Markdown parse after that fails the test (the
    memo of recent notes is emptied, so that a page calling the renderer would parse)."""

    def refuse() -> None:
        render_note.cache_clear()
        monkeypatch.setattr(
            MarkdownIt, "parse", lambda *args, **kwargs: pytest.fail("a page parsed Markdown")
        )

    return refuse


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_reading_page_parses_no_markdown_and_links_only_what_the_reader_sees(
    cited, member, owner, refuse_parsing
):
    annotate(cited, member)
    refuse_parsing()
    page = client_for(owner).get(f"/sources/{cited.uuid}/").content.decode()
    assert "<em>shown</em>" in page
    assert f'href="/sources/{cited.uuid}/"' in page and ">Lovelace 1843</a>" in page
    # The source the owner may not see reads as a key nobody has: nothing of it shows.
    assert "No source you can see has the citation key secret1" in page
    assert "No source you can see has the citation key nobody" in page
    hidden = Source.objects.get(citation_key="secret1")
    assert "Secret Diary" not in page and "Hidden n.d." not in page
    assert str(hidden.uuid) not in page


def test_a_collaborators_pathological_note_is_parsed_once_when_written(
    cited, member, owner, refuse_parsing
):
    note = "[" * 100_000  # among the slowest notes to parse (bench/notes.py)
    annotation = annotate(cited, member, note=note)
    assert annotation.note_rendered == f"<p>{note}</p>\n"
    refuse_parsing()
    page = client_for(owner).get(f"/sources/{cited.uuid}/").content.decode()
    assert f'<div class="note"><p>{note}</p>\n</div>' in page


def test_replies_and_source_notes_on_the_reading_page_parse_no_markdown(
    cited, member, owner, refuse_parsing
):
    annotation = annotate(cited, member)
    Comment.reply(author=owner, to=annotation, note="*A reply* [@ada1843]")
    Comment.note_on(author=member, source=cited, note="**A note** on the whole")
    refuse_parsing()
    page = client_for(owner).get(f"/sources/{cited.uuid}/").content.decode()
    assert "<em>A reply</em> (" in page
    assert '<span class="cite-key">@ada1843</span>' in page  # replies' keys are not looked up
    assert "<strong>A note</strong> on the whole" in page


def test_search_results_parse_no_markdown(cited, member, owner, refuse_parsing):
    annotate(cited, member, note="The *zeppelin* passage [see @ada1843]")
    refuse_parsing()
    page = client_for(owner).get("/search/", {"q": "zeppelin"}).content.decode()
    assert "passage" in page and "*zeppelin*" not in page
    assert f'href="/sources/{cited.uuid}/"' in page


def test_lists_of_passages_parse_no_markdown(cited, member, refuse_parsing):
    annotate(cited, member, note="My *list* note [@ada1843]", tags=["bread"])
    refuse_parsing()
    client = client_for(member)
    for url in ("/me/annotations/", "/tags/bread/"):
        page = client.get(url).content.decode()
        assert "My <em>list</em> note" in page, url
        assert ">Lovelace 1843</a>" in page, url


def test_the_history_page_parses_no_markdown_and_shows_25_earlier_versions_a_page(
    cited, member, stranger, refuse_parsing
):
    annotation = annotate(cited, member, note="v1")
    for version in range(2, 31):
        annotation.update_content(
            editor=member, note=f"*v{version}* [@ada1843]", tags=[], visibility="collection"
        )
    refuse_parsing()
    client = client_for(member)
    url = f"/annotations/{annotation.uuid}/history/"
    first = client.get(url)
    assert first.status_code == 200
    page = first.content.decode()
    assert "<em>v30</em>" in page and ">Lovelace 1843</a>" in page  # the current note
    assert page.count('<li><p class="ann-meta">Version') == 25
    assert "Version 29," in page and "Version 5," in page and "Version 4," not in page
    assert 'href="?page=2"' in page
    second = client.get(url, {"page": 2}).content.decode()
    assert second.count('<li><p class="ann-meta">Version') == 4
    assert "Version 4," in second and "Version 1," in second
    assert 'href="?page=1"' in second
    # A stranger learns nothing of it, on any page.
    assert client_for(stranger).get(url, {"page": 2}).status_code == 404
