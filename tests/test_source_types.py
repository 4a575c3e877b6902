"""A source's type and the fields a journal article or a chapter needs: edited in the form and
the admin, checked (ISBN check digits), carried through export and import, and given to the
sources archived before types by a data migration."""

from __future__ import annotations

import importlib
import json

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection

from archive.models import Source, validate_isbn
from tests.conftest import archive_text
from tests.helpers import import_bytes, members, rebuild

pytestmark = pytest.mark.django_db

FORM = {
    "title": "Grain prices in the harbour",
    "source_type": "article-journal",
    "creators": "Okafor, Ada",
    "editors": "",
    "container_title": "Journal of Ports",
    "publisher": "",
    "date_published": "1998",
    "volume": "12",
    "issue": "3",
    "pages": "45–67",
    "language": "en",
    "description": "",
    "doi": "10.1234/jaeh.1998.042_3",
    "isbn": "",
    "url": "",
    "rights": "",
    "citation_key": "okafor1998grain",
}


def edit(client, source, **changes):
    return client.post(f"/sources/{source.uuid}/edit/", {**FORM, **changes})


def test_the_form_saves_the_type_and_where_an_article_was_published(client, owner):
    source = archive_text("An article.", owner)
    client.force_login(owner)
    page = client.get(f"/sources/{source.uuid}/edit/").content.decode()
    assert '<option value="article-newspaper">News article</option>' in page
    assert "Published in" in page

    response = edit(client, source)
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.source_type == Source.Type.JOURNAL_ARTICLE
    assert (source.container_title, source.volume, source.issue, source.pages) == (
        "Journal of Ports",
        "12",
        "3",
        "45–67",
    )


def test_the_form_keeps_the_editors_of_a_chapter_in_order(client, owner):
    source = archive_text("A chapter.", owner)
    client.force_login(owner)
    response = edit(
        client,
        source,
        source_type="chapter",
        editors="Ruiz, Ana\nPer Lund\n",
        container_title="Ports of Europe",
        doi="",
    )
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.source_type == "chapter" and source.editors == ["Ruiz, Ana", "Per Lund"]


def test_a_form_posted_without_a_type_keeps_the_type(client, owner):
    source = archive_text("A report.", owner, metadata={"source_type": "report"})
    client.force_login(owner)
    form = {k: v for k, v in FORM.items() if k != "source_type"}
    response = client.post(f"/sources/{source.uuid}/edit/", form)
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.source_type == "report" and source.container_title == "Journal of Ports"


def test_an_isbn_written_with_hyphens_is_stored_without_them(client, owner):
    source = archive_text("A book.", owner)
    client.force_login(owner)
    response = edit(client, source, source_type="book", doi="", isbn="978-0-306-40615-7")
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.isbn == "9780306406157"
    response = edit(client, source, source_type="book", doi="", isbn="0 8044 2957 x")
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.isbn == "080442957X"


@pytest.mark.parametrize(
    ("isbn", "message"),
    [
        ("978-0-306-40615-8", "978-0-306-40615-8 is not a valid ISBN: its check digit is wrong."),
        ("0-8044-2957-5", "0-8044-2957-5 is not a valid ISBN: its check digit is wrong."),
        ("12345", "An ISBN has 10 or 13 digits"),
        ("ISBN 9780306406157", "An ISBN has 10 or 13 digits"),
    ],
)
def test_an_isbn_with_a_wrong_check_digit_is_shown_back_with_the_reason(
    client, owner, isbn, message
):
    source = archive_text("A book.", owner)
    client.force_login(owner)
    response = edit(client, source, source_type="book", isbn=isbn)
    assert response.status_code == 200
    errors = response.context["form"].errors["isbn"]
    assert any(message in e for e in errors), errors
    source.refresh_from_db()
    assert source.isbn == ""


def test_a_doi_is_checked_on_input(client, owner):
    source = archive_text("An article.", owner)
    client.force_login(owner)
    response = edit(client, source, doi="jaeh.1998.042")
    assert response.status_code == 200
    assert "A DOI looks like 10.1234/abc.def" in response.context["form"].errors["doi"][0]


def test_isbn_check_digits_of_real_books():
    for isbn in (
        "9780306406157",
        "978-1-4028-9462-6",
        "0306406152",
        "097522980X",
        "979-10-90636-07-1",
    ):
        validate_isbn(isbn)


def test_the_admin_edits_the_type_and_the_new_fields(client, curator, owner):
    source = archive_text("A report.", owner)
    client.force_login(curator)
    url = f"/admin/archive/source/{source.pk}/change/"
    page = client.get(url).content.decode()
    for name in ("source_type", "container_title", "volume", "issue", "pages", "editors"):
        assert f'name="{name}"' in page
    response = client.post(
        url,
        {
            **FORM,
            "source_type": "report",
            "publisher": "Port Authority",
            "isbn": "978-0-306-40615-8",
            "fixity_checks-TOTAL_FORMS": "0",
            "fixity_checks-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "check digit is wrong" in response.content.decode()
    response = client.post(
        url,
        {
            **FORM,
            "source_type": "report",
            "publisher": "Port Authority",
            "fixity_checks-TOTAL_FORMS": "0",
            "fixity_checks-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    source.refresh_from_db()
    assert (source.source_type, source.publisher) == ("report", "Port Authority")


# --- Archiving -------------------------------------------------------------------------------


def test_archiving_a_page_takes_its_type_and_journal_from_its_metadata(owner):
    html = (
        b"<html><head><title>Grain</title>"
        b'<meta name="citation_journal_title" content="Journal of Ports">'
        b'<meta name="citation_volume" content="12">'
        b'<meta name="citation_isbn" content="978-0-306-40615-7">'
        b"</head><body><p>Text.</p></body></html>"
    )
    source = archive_text(html, owner)
    assert (source.source_type, source.container_title, source.volume) == (
        "article-journal",
        "Journal of Ports",
        "12",
    )
    assert source.isbn == "9780306406157"


def test_archiving_a_news_page_makes_a_news_article(owner):
    html = (
        b'<html><head><title>Dockers</title><script type="application/ld+json">'
        b'{"@type": "NewsArticle", "publisher": {"name": "The Harbour Times"}}</script>'
        b"</head><body><p>Text.</p></body></html>"
    )
    source = archive_text(html, owner)
    assert (source.source_type, source.publisher) == ("article-newspaper", "The Harbour Times")


def test_archiving_text_that_says_nothing_types_it_as_references_did(owner):
    assert archive_text("A leaflet.", owner).source_type == "document"
    page = archive_text(b"<html><title>Page</title><p>Text.</p></html>", owner)
    assert page.source_type == "webpage"
    bad_isbn = archive_text(
        b'<html><head><meta name="citation_isbn" content="978-0-306-40615-8"></head>'
        b"<p>Text.</p></html>",
        owner,
    )
    # An extracted ISBN with a wrong check digit is dropped, as a bad DOI is.
    assert bad_isbn.isbn == "" and bad_isbn.source_type == "webpage"


# --- Export and import ----------------------------------------------------------------------


def export(tmp_path) -> bytes:
    path = tmp_path / "bag.zip"
    call_command("export_collection", "field-notes", "--format=bagit", "-o", str(path))
    return path.read_bytes()


def empty_archive():
    from tests.helpers import empty_everything

    empty_everything()


def test_the_type_and_the_new_fields_survive_export_and_import(owner, collection, tmp_path):
    source = archive_text(
        "A chapter.",
        owner,
        collection,
        metadata={
            "title": "The Strike",
            "source_type": "chapter",
            "creators": ["Okafor, Ada"],
            "editors": ["Ruiz, Ana"],
            "container_title": "Ports of Europe",
            "volume": "2",
            "pages": "10–20",
            "isbn": "978-0-306-40615-7",
        },
    )
    assert source.isbn == "9780306406157"
    data = export(tmp_path)
    metadata = json.loads(members(data)["data/scholion.json"])["sources"][0]["metadata"]
    assert metadata["source_type"] == "chapter" and metadata["editors"] == ["Ruiz, Ana"]
    empty_archive()

    import_bytes(data)
    imported = Source.objects.get(uuid=source.uuid)
    assert (imported.source_type, imported.editors, imported.container_title) == (
        "chapter",
        ["Ruiz, Ana"],
        "Ports of Europe",
    )
    assert (imported.volume, imported.pages, imported.isbn) == ("2", "10–20", "9780306406157")


def without_new_fields(data: bytes, **metadata_changes) -> bytes:
    """The package as a Scholion from before source types exported it."""
    manifest = json.loads(members(data)["data/scholion.json"])
    for spec in manifest["sources"]:
        for name in ("source_type", "editors", "container_title", "volume", "issue", "pages"):
            del spec["metadata"][name]
        spec["metadata"].update(metadata_changes)
    return rebuild(data, {"data/scholion.json": json.dumps(manifest).encode()})


def test_a_package_from_before_types_imports_with_the_type_its_references_assumed(
    owner, collection, tmp_path
):
    source = archive_text(
        "An article.",
        owner,
        collection,
        metadata={"title": "Grain", "doi": "10.1000/grain.1", "source_type": "article-newspaper"},
    )
    old = without_new_fields(export(tmp_path), isbn="978-0-306-40615-7")
    empty_archive()

    import_bytes(old)
    imported = Source.objects.get(uuid=source.uuid)
    # An ISBN made a book before sources had a type; the hyphens go, as the form does.
    assert imported.source_type == "book" and imported.isbn == "9780306406157"
    assert (imported.editors, imported.container_title) == ([], "")


def test_a_package_with_an_invalid_isbn_is_refused_by_name(owner, collection, tmp_path):
    source = archive_text("A book.", owner, collection, metadata={"title": "Harbours"})
    bad = without_new_fields(export(tmp_path), isbn="978-0-306-40615-8")
    empty_archive()

    from exports.package import PackageError

    with pytest.raises(PackageError, match=f"Source {source.uuid} has invalid metadata.*isbn"):
        import_bytes(bad)
    assert not Source.objects.exists()


def test_a_package_with_an_unknown_type_is_refused_by_name(owner, collection, tmp_path):
    source = archive_text("A poem.", owner, collection, metadata={"title": "Harbours"})
    manifest = json.loads(members(data := export(tmp_path))["data/scholion.json"])
    manifest["sources"][0]["metadata"]["source_type"] = "poem"
    bad = rebuild(data, {"data/scholion.json": json.dumps(manifest).encode()})
    empty_archive()

    from exports.package import PackageError

    with pytest.raises(PackageError, match=f"Source {source.uuid} has invalid metadata.*type"):
        import_bytes(bad)


# --- The data migration ----------------------------------------------------------------------


def test_the_data_migration_types_existing_sources_as_their_references_did(owner):
    migration = importlib.import_module("archive.migrations.0010_source_types_from_metadata")
    book = archive_text("A book.", owner)
    article = archive_text("An article.", owner)
    page = archive_text(b"<html><title>Page</title><p>Text.</p></html>", owner)
    linked = archive_text("A note with a link.", owner)
    other = archive_text("A leaflet.", owner)
    # Sources as they were before types: everything "Other", an ISBN as someone typed it
    # (written in SQL: the ISBN field would normalise it).
    with connection.cursor() as cursor:
        for pk, isbn in ((book.pk, "978-0-306-40615-7"), (other.pk, "978-0-306-40615-8")):
            cursor.execute("UPDATE archive_source SET isbn = %s WHERE id = %s", [isbn, pk])
    Source.objects.filter(pk=article.pk).update(doi="10.1000/x")
    Source.objects.filter(pk=linked.pk).update(url="https://example.org/note")
    Source.objects.update(source_type="document")

    migration.forward(apps, schema_editor=None)

    types = dict(Source.objects.values_list("pk", "source_type"))
    assert types == {
        book.pk: "book",
        article.pk: "article-journal",
        page.pk: "webpage",
        linked.pk: "webpage",
        other.pk: "book",
    }
    assert Source.objects.get(pk=book.pk).isbn == "9780306406157"
    # Kept as it was: the curator's to correct, with the form saying why.
    assert Source.objects.get(pk=other.pk).isbn == "978-0-306-40615-8"
