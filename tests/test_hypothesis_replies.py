"""Replies imported from Hypothesis (exports.hypothesis): real replies by their own authors in
the thread they answer, a private one kept as its author's private note (and read by nobody
else: not on the reading page, the API, the search or an export), orphaned replies reported
with the reason, a second import adding nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from annotations.models import Annotation, Comment
from annotations.w3c import MEDIA_TYPE
from exports.hypothesis import import_hypothesis
from exports.models import ImportJob
from tests.conftest import archive_text, run_worker
from tests.helpers import download, members, search
from tests.test_hypothesis_import import PAGE, TEXT, api_file, client_export, hid_uuid, row

pytestmark = pytest.mark.django_db

OLIVE, MAYA, RAVI = "acct:olive@hypothes.is", "acct:maya@hypothes.is", "acct:ravi@hypothes.is"
SECRET = "MY-PRIVATE-DOUBT about the ledgers"


@pytest.fixture
def source(owner, collection):
    return archive_text(
        TEXT, user=owner, collection=collection, original_url=PAGE, declared_type="text/plain"
    )


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def reply(hid: str, to: tuple[str, ...], text: str, *, user: str = RAVI, day: int = 1, **kw):
    return row(
        hid,
        None,
        user=user,
        text=text,
        references=to,
        created=f"2023-05-{day:02d}T10:00:00+00:00",
        **kw,
    )


def thread_of(annotation: Annotation) -> list[tuple[str, str]]:
    return [(c.author.username, c.note) for c in annotation.replies.order_by("created", "pk")]


# --- Replies become replies -------------------------------------------------------------------


def test_replies_become_replies_by_their_own_authors_in_time_order_with_their_dates(
    source, collection, owner
):
    data = api_file(
        row("root", "The banks held.", text="Did they?"),
        # A reply to a reply, earlier in the file than the reply it answers.
        reply("r2", ("root", "r1"), "Source?", user=OLIVE, day=3),
        reply("r1", ("root",), "Until 1911.", user=RAVI, day=2),
    )
    result = import_hypothesis(data, collection)

    annotation = Annotation.objects.get()
    assert annotation.note == "Did they?"
    assert thread_of(annotation) == [("ravi", "Until 1911."), ("olive", "Source?")]
    first = Comment.objects.get(uuid=hid_uuid(collection, "r1"))
    assert (first.reply_to_annotation, first.source, first.is_reply) == (annotation, source, True)
    # row() makes "updated" a day after "created" only for April; these are May's.
    assert first.created.isoformat() == "2023-05-02T10:00:00+00:00"
    assert first.modified == first.created
    assert not get_user_model().objects.get(username="ravi").is_active
    assert Comment.objects.get(uuid=hid_uuid(collection, "r2")).author == owner
    assert (result.replies_added, result.replies_private, result.replies_orphaned) == (2, 0, 0)
    assert (
        "Replies: 2 imported as replies, 0 private ones kept as their authors' private notes,"
        " 0 orphaned, 0 already here." in result.summary()
    )


def test_the_reading_page_shows_the_imported_thread_to_a_member(source, collection, member):
    data = api_file(
        row("root", "The banks held.", text="Did they?"),
        reply("r1", ("root",), "Until *1911*.", day=2),
        reply("r2", ("root", "r1"), "Source?", user=OLIVE, day=3),
    )
    import_hypothesis(data, collection)

    page = client_for(member).get(source.get_absolute_url()).content.decode()
    assert "Until <em>1911</em>." in page
    assert page.index("Until <em>1911</em>.") < page.index("Source?")
    assert 'aria-label="2 replies"' in page


def test_a_reply_to_a_page_note_answers_that_note(source, collection):
    data = api_file(
        row("pn", None, text="About the whole page"),
        reply("r1", ("pn",), "Agreed.", day=2),
    )
    result = import_hypothesis(data, collection)

    note = Comment.objects.source_notes().get()
    answer = Comment.objects.replies().get()
    assert (answer.reply_to_note, answer.note, answer.author.username) == (note, "Agreed.", "ravi")
    assert result.page_notes == 1 and result.replies_added == 1


def test_reply_tags_are_kept_in_its_text(source, collection):
    data = api_file(
        row("root", "The banks held."), reply("r1", ("root",), "See this.", tags=("flood",))
    )
    import_hypothesis(data, collection)

    assert Comment.objects.get().note == "See this.\n\nTags on Hypothesis: flood"


# --- Importing again --------------------------------------------------------------------------


def test_importing_again_adds_no_reply_twice_in_either_shape(source, collection):
    rows = [
        row("root", "The banks held."),
        reply("r1", ("root",), "Until 1911.", day=2),
        reply("r2", ("root",), SECRET, user=OLIVE, read=[OLIVE], day=3),
    ]
    import_hypothesis(api_file(*rows), collection)
    before = list(Comment.objects.values_list("uuid", "note", "modified").order_by("pk"))

    again = import_hypothesis(client_export(*rows), collection)

    assert list(Comment.objects.values_list("uuid", "note", "modified").order_by("pk")) == before
    assert (again.replies_added, again.replies_private, again.replies_existing) == (0, 0, 2)


def test_a_new_reply_in_a_later_file_joins_the_thread_once(source, collection):
    root = row("root", "The banks held.", text="First.")
    import_hypothesis(api_file(root), collection)
    later = api_file(root, reply("r9", ("root",), "Later.", day=9))

    first = import_hypothesis(later, collection)
    second = import_hypothesis(later, collection)

    assert thread_of(Annotation.objects.get()) == [("ravi", "Later.")]
    assert (first.replies_added, second.replies_added, second.replies_existing) == (1, 0, 1)


def test_a_reply_an_earlier_import_appended_to_the_note_is_not_added_again(
    source, collection, owner
):
    import_hypothesis(api_file(row("root", "The banks held.", text="Did they?")), collection)
    annotation = Annotation.objects.get()
    appended = "Did they?\n\n---\n\n**Reply from ravi** ([on Hypothesis](https://hypothes.is/a/r1))"
    annotation.update_content(editor=owner, note=appended, tags=[], visibility="collection")

    result = import_hypothesis(
        api_file(row("root", "The banks held."), reply("r1", ("root",), "Until 1911.")),
        collection,
    )

    assert not Comment.objects.exists()
    assert result.replies_existing == 1


# --- A private reply stays private -------------------------------------------------------------


@pytest.fixture
def private_reply(source, collection, owner, member):
    """maya's shared annotation, ravi's public reply, olive's private one ("only me")."""
    data = api_file(
        row("root", "The banks held.", user=MAYA, text="Did they?"),
        reply("pub", ("root",), "PUBLIC-ANSWER from ravi", day=2),
        reply("mine", ("root",), SECRET, user=OLIVE, read=[OLIVE], day=3),
    )
    result = import_hypothesis(data, collection)
    return result, Comment.objects.get(uuid=hid_uuid(collection, "mine"))


def test_a_private_reply_becomes_its_authors_private_note_saying_what_it_answered(
    private_reply, source, owner
):
    result, kept = private_reply
    assert not kept.is_reply
    assert (kept.author, kept.source, kept.visibility) == (owner, source, "private")
    assert kept.note.startswith("**Private reply** to the annotation on “The banks held.”")
    assert "https://hypothes.is/a/root" in kept.note and kept.note.endswith(SECRET)
    assert kept.created.day == 3
    assert (result.replies_added, result.replies_private) == (1, 1)
    assert "1 private ones kept as their authors' private notes" in result.summary()


def test_only_its_author_and_curators_read_a_private_reply(
    private_reply, owner, member, stranger, curator
):
    _result, kept = private_reply
    readers = {
        user.username
        for user in (owner, member, stranger, curator)
        if Comment.objects.visible_to(user).filter(pk=kept.pk).exists()
    }
    assert readers == {"olive", "cora"}


def test_the_reading_page_shows_the_public_thread_and_hides_the_private_reply(
    private_reply, source, owner, member, stranger
):
    page = client_for(member).get(source.get_absolute_url()).content.decode()
    assert "PUBLIC-ANSWER from ravi" in page
    assert "MY-PRIVATE-DOUBT" not in page
    assert 'aria-label="1 reply"' in page
    mine = client_for(owner).get(source.get_absolute_url()).content.decode()
    assert "MY-PRIVATE-DOUBT" in mine and "PUBLIC-ANSWER from ravi" in mine
    assert client_for(stranger).get(source.get_absolute_url()).status_code == 404
    assert client_for(None).get(source.get_absolute_url()).status_code in (302, 404)


def test_the_api_answers_a_private_reply_to_its_author_only(private_reply, owner, member, stranger):
    _result, kept = private_reply
    address = f"/api/annotations/{kept.uuid}"
    assert client_for(owner).get(address, HTTP_ACCEPT=MEDIA_TYPE).status_code == 200
    for reader in (member, stranger, None):
        assert client_for(reader).get(address, HTTP_ACCEPT=MEDIA_TYPE).status_code == 404
    listing = client_for(member).get("/api/annotations/", HTTP_ACCEPT=MEDIA_TYPE)
    assert listing.status_code == 200 and b"MY-PRIVATE-DOUBT" not in listing.content


def test_search_and_exports_leave_out_a_private_reply_for_anyone_else(
    private_reply, owner, member, stranger
):
    for reader in (member, stranger):
        assert b"MY-PRIVATE-DOUBT" not in search(client_for(reader), q="ledgers").content
    for fmt in ("jsonld", "markdown", "csv", "bagit"):
        response, body = download(client_for(member), fmt)
        if fmt == "bagit":
            body = b"".join(members(body).values())
            assert b"PUBLIC-ANSWER" in body
        assert response.status_code == 200 and b"MY-PRIVATE-DOUBT" not in body
        if fmt in ("jsonld", "markdown"):  # the formats that hold replies
            assert b"PUBLIC-ANSWER" in body
        assert download(client_for(stranger), fmt)[0].status_code == 404
    _response, own = download(client_for(owner), "jsonld")
    assert b"MY-PRIVATE-DOUBT" in own


def test_a_private_reply_does_not_quote_a_private_annotation_its_author_cannot_read(
    source, collection, owner
):
    data = api_file(
        row("root", "The banks held.", user=MAYA, read=[MAYA]),
        reply("mine", ("root",), SECRET, user=OLIVE, read=[OLIVE], day=3),
    )
    import_hypothesis(data, collection)

    kept = Comment.objects.get(author=owner)
    assert kept.note.startswith("**Private reply** to an annotation ([on Hypothesis]")
    assert "The banks held." not in kept.note


# --- Orphaned replies ---------------------------------------------------------------------------


def test_orphaned_replies_are_counted_and_each_thread_says_why(source, collection):
    data = api_file(
        reply("a1", ("gone",), "One.", day=1),
        reply("a2", ("gone", "a1"), "Two.", day=2),
        row("lost", "Words that are nowhere in the text."),
        reply("b1", ("lost",), "Three.", day=3),
        row("away", "The banks held.", uri="urn:x-pdf:0123"),
        reply("c1", ("away",), "Four.", day=4),
        row("root", "The banks held."),
        reply("empty", ("root",), "  ", day=5),
    )
    result = import_hypothesis(data, collection)

    assert not Comment.objects.exists()
    assert result.replies_orphaned == 5
    summary = result.summary()
    assert "Replies: 0 imported as replies, 0 private" in summary
    assert "5 orphaned, 0 already here." in summary
    assert (
        "2 replies (https://hypothes.is/a/a1, https://hypothes.is/a/a2) answer"
        " https://hypothes.is/a/gone, which is not in this file and was not imported from an"
        " earlier one." in summary
    )
    assert (
        "1 reply (https://hypothes.is/a/b1) answers https://hypothes.is/a/lost, which was not"
        " imported: its quote is not in the text, and it records no position to look near."
        in summary
    )
    assert (
        "1 reply (https://hypothes.is/a/c1) answers https://hypothes.is/a/away, which was not"
        " imported: no source in the collection was archived from its page." in summary
    )
    assert "https://hypothes.is/a/empty: it has no text, and a reply cannot be empty." in summary


def test_an_editor_imports_their_own_replies_and_not_other_peoples(
    source, collection, django_user_model
):
    from archive.models import Membership

    eddie = django_user_model.objects.create_user("eddie", "e@example.org", "pw-eddie-123")
    Membership.objects.create(collection=collection, user=eddie, role=Membership.Role.EDITOR)
    data = client_export(
        row("root", "The banks held.", user="acct:eddie@hypothes.is"),
        reply("own", ("root",), "Mine.", user="acct:eddie@hypothes.is", day=2),
        reply("theirs", ("root",), "Ravi's.", day=3),
        reply("lone", ("gone",), "Ravi's too.", day=4),
        exporter="acct:eddie@hypothes.is",
    )
    result = import_hypothesis(data, collection, eddie)

    assert thread_of(Annotation.objects.get()) == [("eddie", "Mine.")]
    assert result.others_skipped == 2 and result.replies_orphaned == 0
    assert "2 annotations and replies by other Hypothesis users were left out" in (result.summary())
    assert not django_user_model.objects.filter(username="ravi").exists()


# --- Through the upload and the worker; the job's one collection ------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_import_page_reports_the_replies_of_an_uploaded_file(
    client, curator, source, collection, settings, tmp_path
):
    """By a curator, who may import other people's replies under their names."""
    settings.SCHOLION_IMPORTS_DIR = tmp_path / "imports"
    client.force_login(curator)
    data = api_file(
        row("root", "The banks held."),
        reply("pub", ("root",), "PUBLIC-ANSWER from ravi", day=2),
        reply("mine", ("root",), SECRET, user=OLIVE, read=[OLIVE], day=3),
        reply("lone", ("gone",), "Nobody asked.", day=4),
    )
    file = SimpleUploadedFile("hypothesis.json", data, content_type="application/json")

    response = client.post("/collections/field-notes/import/hypothesis", {"file": file})
    run_worker()

    job = ImportJob.objects.get()
    assert response.status_code == 302 and (job.state, job.collection) == ("done", collection)
    page = client.get(job.get_absolute_url()).content.decode()
    assert (
        "Replies: 1 imported as replies, 1 private ones kept as their authors&#x27; private"
        " notes, 1 orphaned, 0 already here." in page
    )
    assert "1 reply (https://hypothes.is/a/lone) answers https://hypothes.is/a/gone" in page


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_a_requested_collection_as_the_jobs_one_collection(owner, collection):
    executor = MigrationExecutor(connection)
    before, latest = (
        ("exports", "0005_long_work_export_jobs"),
        executor.loader.graph.leaf_nodes("exports"),
    )
    executor.migrate([before])
    try:
        old = MigrationExecutor(connection).loader.project_state([before]).apps
        Job = old.get_model("exports", "ImportJob")
        common = {"user_id": owner.pk, "size": 1, "kind": "package"}
        queued = Job.objects.create(filename="queued.qdpx", into_id=collection.pk, **common)
        done = Job.objects.create(
            filename="done.qdpx", into_id=collection.pk, collection_id=collection.pk, **common
        )
        bag = Job.objects.create(filename="bag.zip", **common)
    finally:
        MigrationExecutor(connection).migrate(latest)
    jobs = {job.pk: job.collection_id for job in ImportJob.objects.all()}
    assert jobs == {queued.pk: collection.pk, done.pk: collection.pk, bag.pk: None}
