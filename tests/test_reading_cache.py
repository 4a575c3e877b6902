"""The reading page's cache: a reader is served a page made for them, never anyone else's,
and never one older than the last write to anything the page shows.

These tests commit (transactional_db), as a server does: inside a test's transaction the
cache stands aside (annotations.reading.reading_cache_key).
"""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.urls import reverse
from taggit.models import Tag

from annotations.models import Annotation, Citation, CodebookJob, ContentRevision
from archive.models import Collection, Membership, Source, UploadJob
from tests.conftest import archive_text

pytestmark = pytest.mark.django_db(transaction=True)

# Session, user, content revision: what a page served from the cache costs.
CACHED_PAGE_QUERIES = 3


@pytest.fixture(autouse=True)
def empty_cache():
    caches["reading"].clear()
    yield
    caches["reading"].clear()


def reader(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def page(client: Client, source, passage: str = "") -> str:
    response = client.get(f"/sources/{source.uuid}/{passage}")
    assert response.status_code == 200
    return response.content.decode()


def note(source, author, text: str, **kwargs) -> Annotation:
    return Annotation.create_anchored(
        author=author, source=source, start=10, end=30, note=text, **kwargs
    )


def test_a_second_visit_is_served_from_the_cache_in_three_queries(
    demo_source, member, django_assert_num_queries
):
    note(demo_source, member, "First reading", tags=["method"])
    client = reader(member)
    first = page(client, demo_source)
    with django_assert_num_queries(CACHED_PAGE_QUERIES):
        second = page(client, demo_source)
    content = slice(first.index('<div class="reader"'), first.index("</main>"))
    assert second[content] == first[content]
    # Each reader's own page: no shared cache in between may keep one for another.
    assert "Cookie" in client.get(f"/sources/{demo_source.uuid}/")["Vary"]
    assert "First reading" in second and "method" in second


def test_each_reader_gets_their_own_page_never_anothers(demo_source, member, owner):
    note(demo_source, member, "Maya's note")
    note(demo_source, member, "Maya's private thought", visibility="private")
    maya = page(reader(member), demo_source)
    olive = page(reader(owner), demo_source)
    # reader.js offers Edit and Delete on the entries of the page's own reader.
    assert 'data-user="maya"' in maya and 'data-user="olive"' in olive
    assert "Maya's note" in olive and "Maya's private thought" in maya
    assert "Maya's private thought" not in olive


def test_a_stranger_and_a_visitor_get_404_after_a_member_was_served_the_page(
    demo_source, member, stranger
):
    note(demo_source, member, "Members only")
    assert "Members only" in page(reader(member), demo_source)
    for client in (reader(stranger), reader()):
        response = client.get(f"/sources/{demo_source.uuid}/")
        assert response.status_code == 404
        assert b"Members only" not in response.content


def test_an_ex_member_is_refused_at_once(demo_source, member, collection):
    note(demo_source, member, "Shared note")
    client = reader(member)
    assert "Shared note" in page(client, demo_source)
    Membership.objects.filter(collection=collection, user=member).delete()
    response = client.get(f"/sources/{demo_source.uuid}/")
    assert response.status_code == 404
    assert b"Shared note" not in response.content


def test_a_role_change_changes_whether_the_page_offers_annotating(demo_source, member, collection):
    client = reader(member)
    assert 'data-can-annotate="true"' in page(client, demo_source)
    Membership.objects.filter(collection=collection, user=member).update(
        role=Membership.Role.VIEWER
    )
    assert 'data-can-annotate="false"' in page(client, demo_source)


def test_new_edited_and_deleted_annotations_show_at_once(demo_source, member, owner):
    client = reader(owner)
    assert "A new thought" not in page(client, demo_source)
    annotation = note(demo_source, member, "A new thought")
    assert "A new thought" in page(client, demo_source)
    annotation.update_content(
        editor=member, note="A second thought", tags=["revised"], visibility="collection"
    )
    shown = page(client, demo_source)
    assert "A second thought" in shown and "A new thought" not in shown and "revised" in shown
    annotation.delete_if_current()
    assert "A second thought" not in page(client, demo_source)


def test_an_annotation_made_private_leaves_the_other_members_page(demo_source, member, owner):
    annotation = note(demo_source, owner, "Olive thinks aloud")
    client = reader(member)
    assert "Olive thinks aloud" in page(client, demo_source)
    # QuerySet.update, as the admin's bulk actions write: no model method, no signal.
    Annotation.objects.filter(pk=annotation.pk).update(visibility="private")
    assert "Olive thinks aloud" not in page(client, demo_source)
    assert "Olive thinks aloud" in page(reader(owner), demo_source)


def test_a_tag_renamed_or_merged_by_a_curator_shows_its_new_name(demo_source, member):
    note(demo_source, member, "Tagged", tags=["draft-theme"])
    client = reader(member)
    assert "draft-theme" in page(client, demo_source)
    Tag.objects.filter(name="draft-theme").update(name="final-theme", slug="final-theme")
    shown = page(client, demo_source)
    assert "final-theme" in shown and "draft-theme" not in shown


def test_a_renamed_author_shows_under_the_new_name(demo_source, member, owner):
    note(demo_source, member, "Signed")
    client = reader(owner)
    assert 'data-author="maya"' in page(client, demo_source)
    get_user_model().objects.filter(pk=member.pk).update(username="maya-r")
    assert 'data-author="maya-r"' in page(client, demo_source)


def test_a_cited_sources_title_and_visibility_show_as_they_are_now(
    demo_source, member, owner, collection
):
    elsewhere = Collection.objects.create(slug="elsewhere", title="Elsewhere", owner=owner)
    cited = archive_text("A cited essay.", user=owner, collection=elsewhere)
    Source.objects.filter(pk=cited.pk).update(title="Old title")
    Membership.objects.create(collection=elsewhere, user=member, role=Membership.Role.VIEWER)
    citations = Citation.build_all([{"source": str(cited.uuid)}], user=member)
    note(demo_source, member, "See the essay", citations=citations)
    client = reader(member)
    assert "Old title" in page(client, demo_source)
    Source.objects.filter(pk=cited.pk).update(title="New title")
    shown = page(client, demo_source)
    assert "New title" in shown and "Old title" not in shown
    Membership.objects.filter(collection=elsewhere, user=member).delete()
    shown = page(client, demo_source)
    assert "New title" not in shown and "a source you do not have access to" in shown


def test_a_note_key_links_once_its_source_becomes_visible(demo_source, member, owner):
    elsewhere = Collection.objects.create(slug="elsewhere", title="Elsewhere", owner=owner)
    cited = archive_text("Keyed text.", user=owner, collection=elsewhere)
    note(demo_source, member, f"As argued [@{cited.citation_key}].")
    client = reader(member)
    assert f'href="/sources/{cited.uuid}/"' not in page(client, demo_source)
    Membership.objects.create(collection=elsewhere, user=member, role=Membership.Role.VIEWER)
    assert f'href="/sources/{cited.uuid}/"' in page(client, demo_source)


def test_a_collection_made_private_is_refused_to_visitors_at_once(demo_source, member, collection):
    note(demo_source, member, "Public remark", visibility="public")
    collection.is_public = True
    collection.save()
    visitor = reader()
    assert "Public remark" in page(visitor, demo_source)
    collection.is_public = False
    collection.save()
    assert visitor.get(f"/sources/{demo_source.uuid}/").status_code == 404


def test_a_passage_page_and_the_whole_page_are_kept_apart(demo_source, member):
    client = reader(member)
    whole = page(client, demo_source)
    passage = page(client, demo_source, "passages/3-40/")
    assert 'id="passage"' in passage and 'id="passage"' not in whole
    assert 'id="passage"' not in page(client, demo_source)
    outside = len(demo_source.text) + 5
    assert client.get(f"/sources/{demo_source.uuid}/passages/3-{outside}/").status_code == 404


def test_the_logout_form_works_on_a_page_served_from_the_cache(demo_source, member):
    """The page's frame (the logout form's CSRF token, one-time messages) is rendered for
    each request: a token cached from another browser's visit would be refused."""
    page(reader(member), demo_source)
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    shown = page(client, demo_source)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', shown)
    assert token is not None
    response = client.post(reverse("logout"), {"csrfmiddlewaretoken": token.group(1)})
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_a_message_waiting_for_the_reader_is_shown_once_on_a_page_from_the_cache(
    demo_source, member
):
    from django.contrib.messages import constants
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.http import HttpResponse
    from django.test import RequestFactory

    client = reader(member)
    assert "Saved elsewhere." not in page(client, demo_source)
    # A message another request left, in the cookie that carries it to this one.
    storage = CookieStorage(RequestFactory().get("/"))
    storage.add(constants.SUCCESS, "Saved elsewhere.")
    carrier = HttpResponse()
    storage.update(carrier)
    client.cookies["messages"] = carrier.cookies["messages"].value
    shown = page(client, demo_source)
    assert shown.count("Saved elsewhere.") == 1 and 'data-user="maya"' in shown
    assert "Saved elsewhere." not in page(client, demo_source)


def test_a_visitors_login_link_returns_to_the_page_they_asked_for(demo_source, member, collection):
    collection.is_public = True
    collection.save()
    page(reader(), demo_source)
    shown = page(reader(), demo_source, "?tag=method")
    assert f"?next=/sources/{demo_source.uuid}/%3Ftag%3Dmethod" in shown


def test_every_table_a_reading_page_shows_bumps_the_revision():
    """Each table of archive, annotations and taggit, and the user table, has the triggers
    of annotations migration 0008. A new table, or one Django rebuilt on SQLite (which drops
    its triggers), needs them made in its migration."""
    tables = {
        model._meta.db_table
        for label in ("archive", "annotations", "taggit")
        for model in apps.get_app_config(label).get_models(include_auto_created=True)
    } - {ContentRevision._meta.db_table, UploadJob._meta.db_table, CodebookJob._meta.db_table}
    # Not a job of the worker's (an upload waiting to be read, a codebook change): no cached
    # page shows one (its own page is not cached), and its heartbeat, every few seconds, would
    # empty every reader's cache. What a codebook job changes (tags) bumps the revision.
    tables.add(get_user_model()._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute("SELECT tgname FROM pg_trigger")
        triggers = {row[0] for row in cursor.fetchall()}
    missing = sorted(
        f"{table}_revision_{event}"
        for table in tables
        for event in ("insert", "update", "delete")
        if f"{table}_revision_{event}" not in triggers
    )
    assert missing == []


def test_a_login_does_not_move_the_revision(member):
    before = ContentRevision.current()
    reader(member)  # writes last_login
    assert ContentRevision.current() == before
