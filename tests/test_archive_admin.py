"""Curators in the Django admin: metadata, withdrawal, fixity, deletion rules, collections."""

from __future__ import annotations

import os
import re
import uuid

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotations.models import Annotation
from archive.blobstore import archive_storage
from archive.models import Collection, FixityCheck, Membership, Source
from search.models import SourceSegment
from tests.conftest import archive_text

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/archive/source/"


def change_url(source: Source) -> str:
    return reverse("admin:archive_source_change", args=[source.pk])


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def form_data(response) -> dict:
    """What a browser would post back from an admin change page, unchanged."""
    data: dict = {}

    def add(form) -> None:
        for name, field in form.fields.items():
            value = form[name].value()
            key = form.add_prefix(name)
            if isinstance(value, bool):
                if value:
                    data[key] = "on"
            elif isinstance(value, list | tuple):
                data[key] = [str(v) for v in value]
            elif value is not None:
                data[key] = str(value)
            del field

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def corrupt(source: Source, data: bytes = b"tampered") -> None:
    path = archive_storage().path(source.blob_name)
    os.chmod(path, 0o644)
    with open(path, "wb") as fh:
        fh.write(data)


def annotate(source: Source, author) -> Annotation:
    return Annotation.objects.create(
        source=source, author=author, start=0, end=5, exact=source.text[:5]
    )


def action(client, name: str, sources, **extra):
    data = {"action": name, "_selected_action": [s.pk for s in sources], "index": 0, **extra}
    return client.post(CHANGELIST, data, follow=True)


@pytest.fixture
def admin_client_(client, curator):
    client.force_login(curator)
    return client


# --- Access ----------------------------------------------------------------------------


def test_researcher_without_staff_status_is_sent_to_the_admin_login(client, owner, demo_source):
    client.force_login(owner)
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_curator_sees_every_source_including_withdrawn(admin_client_, owner, demo_source):
    other = archive_text("A withdrawn report\n\nIts body.", owner)
    other.withdraw("Duplicate of another report.")
    response = admin_client_.get(CHANGELIST)
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [other, demo_source]
    assert "A withdrawn report" in response.text


# --- The change page -------------------------------------------------------------------


def test_change_page_shows_bytes_and_text_layer_read_only(admin_client_, demo_source):
    response = admin_client_.get(change_url(demo_source))
    assert response.status_code == 200
    form = response.context["adminform"].form
    editable = set(form.fields)
    assert editable == {
        "title",
        "source_type",
        "creators",
        "editors",
        "container_title",
        "volume",
        "issue",
        "pages",
        "publisher",
        "date_published",
        "language",
        "description",
        "doi",
        "isbn",
        "url",
        "rights",
        "citation_key",
    }
    assert not editable & set(Source.IMMUTABLE_FIELDS)
    assert not editable & {"archived_by", "archived_at", "archived_via"}
    page = response.text
    assert demo_source.sha256 in page
    assert 'name="sha256"' not in page and 'name="text"' not in page
    # A short preview of the text layer, not the whole thing.
    assert demo_source.text[:40] in page
    assert demo_source.text[-200:] not in page
    assert f"{len(demo_source.text):,} characters" in page
    assert "demo" not in editable


def test_curator_edits_metadata_and_the_bytes_stay(admin_client_, demo_source):
    response = admin_client_.get(change_url(demo_source))
    data = form_data(response)
    data.update(
        title="Edited by a curator",
        creators="Smith, Jane\nDoe, John",
        doi="https://doi.org/10.1234/abc.def",
        # A forged post of read-only fields is ignored.
        sha256="0" * 64,
        text="rewritten",
    )
    response = admin_client_.post(change_url(demo_source), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    demo_source.refresh_from_db()
    assert demo_source.title == "Edited by a curator"
    assert demo_source.creators == ["Smith, Jane", "Doe, John"]
    assert demo_source.doi == "10.1234/abc.def"
    assert demo_source.sha256.startswith("e8ce57c5")
    assert demo_source.text.startswith("On March 31")
    # Search finds the source by its new metadata.
    metadata = SourceSegment.objects.get(source=demo_source, kind=SourceSegment.Kind.METADATA)
    assert "curator" in metadata.words.split() and "smith" in metadata.words.split()


def test_invalid_metadata_is_refused_with_field_errors(admin_client_, demo_source):
    data = form_data(admin_client_.get(change_url(demo_source)))
    data.update(date_published="31/03/2024", doi="not a doi")
    response = admin_client_.post(change_url(demo_source), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "YYYY" in str(errors["date_published"])
    assert "10.1234" in str(errors["doi"])
    demo_source.refresh_from_db()
    assert demo_source.date_published == ""


def test_change_page_shows_fixity_history_and_last_check(admin_client_, owner):
    source = archive_text(f"To be damaged\n\n{uuid.uuid4()}", owner)
    response = admin_client_.get(change_url(source))
    assert "Not yet verified" in response.text
    source.verify_fixity()
    corrupt(source)
    source.verify_fixity()
    response = admin_client_.get(change_url(source))
    inline = response.context["inline_admin_formsets"][0]
    assert [form.instance.ok for form in inline.formset.forms] == [False, True]
    assert not inline.has_add_permission and not inline.has_delete_permission
    assert "FAILED" in response.text
    assert "Hash differs" in response.text
    # Saving metadata with the read-only history on the page works.
    data = form_data(response)
    source.verify_fixity()  # a check recorded while the curator had the page open
    data["title"] = "Still editable"
    assert admin_client_.post(change_url(source), data).status_code == 302
    source.refresh_from_db()
    assert source.title == "Still editable"
    assert FixityCheck.objects.filter(source=source).count() == 3


def test_adding_a_source_in_the_admin_leads_to_the_archive_page(admin_client_):
    response = admin_client_.get(reverse("admin:archive_source_add"))
    assert response.status_code == 302
    assert response["Location"] == reverse("archive:source_archive")
    changelist = admin_client_.get(CHANGELIST)
    assert reverse("admin:archive_source_add") in changelist.text


# --- Filters and search ----------------------------------------------------------------


@pytest.fixture
def varied_sources(owner, collection):
    # Distinct bytes per test: blobs outlive each test's rolled-back rows.
    tag = uuid.uuid4()
    plain = archive_text(
        f"Plain report\n\n{tag}",
        owner,
        collection=collection,
        metadata={"creators": ["Müller, Anna"], "title": "Plain report"},
    )
    checked = archive_text(f"Checked report\n\n{tag}", owner)
    withdrawn = archive_text(f"Withdrawn memo\n\n{tag}", owner)
    withdrawn.withdraw("Not a real memo.")
    checked.verify_fixity()
    return plain, checked, withdrawn


def results(client, query: str) -> set[str]:
    response = client.get(CHANGELIST + query)
    assert response.status_code == 200
    return {s.title for s in response.context["cl"].result_list}


def test_curator_filters_by_collection_fixity_and_withdrawal(
    admin_client_, varied_sources, collection
):
    assert results(admin_client_, f"?collections__id__exact={collection.pk}") == {"Plain report"}
    assert results(admin_client_, "?fixity_status__exact=ok") == {"Checked report"}
    assert results(admin_client_, "?fixity_status__exact=unchecked") == {
        "Plain report",
        "Withdrawn memo",
    }
    assert results(admin_client_, "?withdrawn=yes") == {"Withdrawn memo"}
    assert results(admin_client_, "?withdrawn=no") == {"Plain report", "Checked report"}


def test_curator_filters_by_media_type(admin_client_, owner, varied_sources):
    page = f"<html><head><title>Web page</title></head><body><p>{uuid.uuid4()}</p></body></html>"
    archive_text(page, owner, filename="page.html")
    assert results(admin_client_, "?media_type=text/html") == {"Web page"}
    assert "Web page" not in results(admin_client_, "?media_type=text/plain")


def test_curator_searches_by_title_creator_hash_prefix_citation_key_and_uuid(
    admin_client_, varied_sources
):
    plain, checked, _ = varied_sources
    assert results(admin_client_, "?q=memo") == {"Withdrawn memo"}
    assert results(admin_client_, "?q=Müller") == {"Plain report"}
    assert results(admin_client_, "?q=Anna") == {"Plain report"}
    assert results(admin_client_, "?q=Schmidt") == set()
    assert results(admin_client_, f"?q={checked.sha256[:10]}") == {"Checked report"}
    # A prefix of the hash, not any substring of it.
    assert results(admin_client_, f"?q={checked.sha256[4:14]}") == set()
    assert results(admin_client_, f"?q={plain.citation_key}") == {"Plain report"}
    assert results(admin_client_, f"?q={checked.uuid}") == {"Checked report"}


def test_changelist_query_count_does_not_grow_with_sources(admin_client_, owner, collection):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client_.get(CHANGELIST)
        assert response.status_code == 200
        return len(ctx)

    for i in range(5):
        archive_text(f"Source number {i}\n\nBody {i}.", owner, collection=collection)
    five = count_queries()
    for i in range(5, 30):
        archive_text(f"Source number {i}\n\nBody {i}.", owner, collection=collection)
    assert count_queries() == five


def test_changelist_does_not_load_text_layers(admin_client_, owner):
    archive_text("Short title\n\n" + "long body " * 50_000, owner)
    with CaptureQueriesContext(connection) as ctx:
        admin_client_.get(CHANGELIST)
    listing = [q["sql"] for q in ctx.captured_queries if 'FROM "archive_source"' in q["sql"]]
    assert listing
    assert not any(re.search(r'"archive_source"\."text"', sql) for sql in listing)


# --- Withdraw, reinstate ---------------------------------------------------------------


def test_withdrawing_asks_for_a_reason_first(admin_client_, demo_source):
    response = action(admin_client_, "withdraw_selected", [demo_source])
    assert response.status_code == 200
    assert 'name="reason"' in response.text
    assert demo_source.title in response.text
    demo_source.refresh_from_db()
    assert not demo_source.is_withdrawn

    response = action(
        admin_client_, "withdraw_selected", [demo_source], confirm_withdraw="yes", reason="  "
    )
    assert response.status_code == 200
    assert "Give a reason" in response.text
    demo_source.refresh_from_db()
    assert not demo_source.is_withdrawn


def test_withdrawn_source_is_hidden_from_everyone_but_curators_and_can_be_reinstated(
    admin_client_, owner, demo_source
):
    response = action(
        admin_client_,
        "withdraw_selected",
        [demo_source],
        confirm_withdraw="yes",
        reason="Published by mistake.",
    )
    assert response.redirect_chain[-1][0].endswith(CHANGELIST)
    assert "Withdrew 1 source." in flash(response)
    demo_source.refresh_from_db()
    assert demo_source.withdrawn_reason == "Published by mistake."

    # The curator still reads it, with the reason shown.
    page = admin_client_.get(demo_source.get_absolute_url())
    assert page.status_code == 200
    assert "Published by mistake." in page.text
    client = Client()
    client.force_login(owner)
    assert client.get(demo_source.get_absolute_url()).status_code == 404
    assert demo_source.title not in client.get("/sources/").text

    response = action(admin_client_, "reinstate_selected", [demo_source])
    assert "Reinstated 1 source." in flash(response)
    demo_source.refresh_from_db()
    assert not demo_source.is_withdrawn and demo_source.withdrawn_reason == ""
    assert client.get(demo_source.get_absolute_url()).status_code == 200


# --- Fixity ----------------------------------------------------------------------------


def test_verify_fixity_action_reports_counts(admin_client_, varied_sources):
    response = action(admin_client_, "verify_fixity_selected", varied_sources)
    assert "Verified 3 sources: 3 intact, 0 failed." in flash(response)
    assert set(Source.objects.values_list("fixity_status", flat=True)) == {"ok"}


def test_verify_fixity_action_reports_each_failure_loudly(admin_client_, varied_sources):
    plain, checked, withdrawn = varied_sources
    corrupt(plain)
    os.remove(archive_storage().path(checked.blob_name))
    response = action(admin_client_, "verify_fixity_selected", varied_sources)
    messages = {str(m): m.level_tag for m in get_messages(response.wsgi_request)}
    failures = [text for text, level in messages.items() if text.startswith("FIXITY FAILED")]
    assert len(failures) == 2
    assert all(messages[text] == "error" for text in failures)
    assert any(str(plain.uuid) in text and "Hash differs" in text for text in failures)
    assert any(str(checked.uuid) in text and "missing" in text for text in failures)
    assert messages["Verified 3 sources: 1 intact, 2 failed."] == "error"
    assert results(admin_client_, "?fixity_status__exact=failed") == {
        "Plain report",
        "Checked report",
    }


# --- Deletion --------------------------------------------------------------------------


def test_source_with_annotations_cannot_be_deleted_and_the_admin_says_why(
    admin_client_, owner, demo_source
):
    annotate(demo_source, owner)
    url = reverse("admin:archive_source_delete", args=[demo_source.pk])
    response = admin_client_.get(url, follow=True)
    assert response.redirect_chain[-1][0] == change_url(demo_source)
    assert any("has annotations and cannot be deleted" in m for m in flash(response))
    response = admin_client_.post(url, {"post": "yes"}, follow=True)
    assert any("Withdraw it instead" in m for m in flash(response))
    assert Source.objects.filter(pk=demo_source.pk).exists()


def test_bulk_delete_refuses_when_any_selected_source_has_annotations(
    admin_client_, owner, demo_source
):
    plain = archive_text("Unannotated\n\nBody.", owner)
    annotate(demo_source, owner)
    response = action(admin_client_, "delete_selected", [demo_source, plain], post="yes")
    assert response.status_code == 200
    assert any(
        "Nothing was deleted" in m and demo_source.title in m and "Unannotated" not in m
        for m in flash(response)
    )
    assert Source.objects.count() == 2


def test_source_without_annotations_can_be_deleted(admin_client_, owner):
    plain = archive_text("Unannotated\n\nBody.", owner)
    plain.verify_fixity()
    url = reverse("admin:archive_source_delete", args=[plain.pk])
    assert admin_client_.get(url).status_code == 200
    response = admin_client_.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Source.objects.filter(pk=plain.pk).exists()
    assert not FixityCheck.objects.exists()


def test_bulk_delete_of_unannotated_sources_confirms_then_deletes(admin_client_, owner):
    a = archive_text("First\n\nBody.", owner)
    b = archive_text("Second\n\nBody.", owner)
    confirm = action(admin_client_, "delete_selected", [a, b])
    assert "Are you sure" in confirm.text
    action(admin_client_, "delete_selected", [a, b], post="yes")
    assert Source.objects.count() == 0


# --- Collections -----------------------------------------------------------------------


def test_curator_creates_a_collection_with_sources_and_members(
    admin_client_, owner, member, demo_source
):
    add = reverse("admin:archive_collection_add")
    assert admin_client_.get(add).status_code == 200
    response = admin_client_.post(
        add,
        {
            "slug": "press-2024",
            "title": "Press 2024",
            "description": "Articles from 2024.",
            "owner": owner.pk,
            "is_public": "on",
            "sources": [demo_source.pk],
            "created_at_0": "2024-04-01",
            "created_at_1": "10:00:00",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-user": member.pk,
            "memberships-0-role": "editor",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    created = Collection.objects.get(slug="press-2024")
    assert created.is_public and created.owner == owner
    assert list(created.sources.all()) == [demo_source]
    assert created.role_of(member) == Membership.Role.EDITOR


def test_collection_change_page_edits_sources_and_members(
    admin_client_, stranger, collection, demo_source
):
    other = archive_text("Second source\n\nBody.", stranger)
    url = reverse("admin:archive_collection_change", args=[collection.pk])
    response = admin_client_.get(url)
    assert response.status_code == 200
    data = form_data(response)
    data["sources"] = [str(other.pk)]
    data["is_public"] = "on"
    response = admin_client_.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    collection.refresh_from_db()
    assert collection.is_public
    assert list(collection.sources.all()) == [other]


def test_sources_autocomplete_finds_sources_by_title(admin_client_, demo_source):
    response = admin_client_.get(
        "/admin/autocomplete/",
        {
            "app_label": "archive",
            "model_name": "collection",
            "field_name": "sources",
            "term": "7ab34eae",
        },
    )
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [str(demo_source.pk)]


def test_collection_changelist_query_count_does_not_grow(admin_client_, owner, demo_source):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client_.get("/admin/archive/collection/")
        assert response.status_code == 200
        return len(ctx)

    for i in range(3):
        c = Collection.objects.create(slug=f"c{i}", title=f"C {i}", owner=owner)
        c.sources.add(demo_source)
    three = count_queries()
    for i in range(3, 20):
        Collection.objects.create(slug=f"c{i}", title=f"C {i}", owner=owner)
    response = admin_client_.get("/admin/archive/collection/")
    assert "C 19" in response.text
    assert count_queries() == three
