"""A rename, merge or delete of a code carried by more passages than a request can retag
(SCHOLION_CODEBOOK_INLINE_PASSAGES) is made by the worker (CodebookJob), in batches: the
request queues it and leads to its page, which follows it and ends with the message the change
gives when made at once. Its requester alone sees that page; the codebook's curators see that
it runs, and other changes to its codes wait for it."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape
from taggit.models import Tag

import annotations.models as annotation_models
from annotations.models import Annotation, AnnotationRevision, Code, CodebookJob, TagRedirect
from archive.models import CollectionEvent, Membership
from search.models import AnnotationEntry
from tests.conftest import archive_text, run_worker

pytestmark = pytest.mark.django_db(transaction=True)

TEXT = "Prices rose in spring. Wages fell in summer. Rents held in autumn. " * 4


@pytest.fixture(autouse=True)
def small_limits(settings):
    """Three passages are "many", and the worker changes two at a time."""
    settings.SCHOLION_CODEBOOK_INLINE_PASSAGES = 2
    settings.SCHOLION_CODEBOOK_BATCH_PASSAGES = 2


@pytest.fixture
def editor(django_user_model, collection):
    user = django_user_model.objects.create_user("eddie", "eddie@example.org", "pw-eddie-123")
    Membership.objects.create(collection=collection, user=user, role=Membership.Role.EDITOR)
    return user


@pytest.fixture
def source(owner, collection):
    return archive_text(TEXT, owner, collection)


def note(source, author, start: int, tags: list[str], visibility: str = "collection"):
    return Annotation.create_anchored(
        author=author, source=source, start=start, end=start + 6, tags=tags, visibility=visibility
    )


@pytest.fixture
def coded(owner, member, collection, source):
    """ "prices" on five passages (one a member's private one, which curators cannot read),
    "money" on two (one shared with prices), "rents" on one."""
    passages = [
        note(source, member, 0, ["prices"]),
        note(source, owner, 23, ["prices", "money"]),
        note(source, member, 45, ["prices"]),
        note(source, owner, 70, ["prices"]),
        note(source, member, 90, ["prices"], visibility="private"),
        note(source, owner, 110, ["money"]),
        note(source, owner, 130, ["rents"]),
    ]
    codes = {name: Code.add(collection, name, actor=owner) for name in ("prices", "money", "rents")}
    return {"passages": passages, **codes}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(name: str, *args) -> str:
    return reverse(f"annotations:{name}", args=["field-notes", *args])


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def tags_of(annotation: Annotation) -> list[str]:
    return sorted(Annotation.objects.get(pk=annotation.pk).tags.names())


def test_a_change_to_few_passages_is_made_at_once(owner, coded, settings):
    settings.SCHOLION_CODEBOOK_INLINE_PASSAGES = 4
    response = signed_in(owner).post(url("code_rename", "prices"), {"name": "costs"}, follow=True)
    assert response.redirect_chain[-1][0].startswith(url("codebook"))
    assert "Renamed “prices” to “costs” on 4 passages of this collection." in flash(response)
    assert not CodebookJob.objects.exists()
    assert tags_of(coded["passages"][0]) == ["costs"]


def test_a_change_that_cannot_be_made_is_refused_at_once_not_queued(owner, coded):
    client = signed_in(owner)
    response = client.post(url("code_rename", "prices"), {"name": "money"}, follow=True)
    assert (
        "“prices” was not renamed: “money” is already in this codebook: merge the two instead."
        in flash(response)
    )
    response = client.post(url("code_rename", "prices"), {"name": "a,b"}, follow=True)
    assert any(m.startswith("“prices” was not renamed:") for m in flash(response))
    assert not CodebookJob.objects.exists()
    assert Code.objects.get(pk=coded["prices"].pk).tag.name == "prices"


def test_a_rename_of_many_passages_is_queued_and_made_by_the_worker(owner, member, coded):
    client = signed_in(owner)
    response = client.post(url("code_rename", "prices"), {"name": "costs"})
    job = CodebookJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/codebook-jobs/{job.uuid}/"
    assert (job.action, job.user, job.state, job.total) == ("rename", owner, "queued", 4)
    # Nothing changed yet: the request only asked.
    assert tags_of(coded["passages"][0]) == ["prices"]
    page = client.get(response["Location"]).content.decode()
    assert "Renaming “prices” to “costs”" in page and "Queued" in page
    assert 'aria-live="polite"' in page and url("codebook") in page
    assert client.get(f"/codebook-jobs/{job.uuid}/status").json()["state"] == "queued"
    codebook = client.get(url("codebook")).content.decode()
    assert "Changes the worker is making" in codebook and job.get_absolute_url() in codebook

    run_worker()

    job.refresh_from_db()
    assert job.state == "done" and (job.done, job.total) == (4, 4)
    message = "Renamed “prices” to “costs” on 4 passages of this collection."
    assert client.get(f"/codebook-jobs/{job.uuid}/status").json() == {
        "state": "done",
        "label": "Done",
        "text": message,
        "finished": True,
    }
    assert message in client.get(job.get_absolute_url()).content.decode()
    readable, private = coded["passages"][:4], coded["passages"][4]
    assert [tags_of(a) for a in readable] == [["costs"], ["costs", "money"], ["costs"], ["costs"]]
    assert tags_of(private) == ["prices"]  # the member's private passage keeps its tag
    assert Code.objects.get(pk=coded["prices"].pk).tag.name == "costs"
    # Each retagged passage has one revision and a new version, and is indexed again.
    for passage in readable:
        assert AnnotationRevision.objects.filter(annotation=passage).count() == 1
        assert Annotation.objects.get(pk=passage.pk).version == passage.version + 1
    entries = AnnotationEntry.objects.filter(annotation__in=readable)
    assert all("costs" in tags.split() for tags in entries.values_list("tags", flat=True))
    event = CollectionEvent.objects.filter(kind="code_renamed").get()
    assert (event.actor, event.detail) == (owner, "renamed the code “prices” to “costs”")


def test_a_merge_and_a_delete_of_many_passages_end_as_they_do_at_once(owner, coded):
    client = signed_in(owner)
    page = client.get(url("code_merge", "prices"), {"with": "money"}).content.decode()
    assert "more than 2 passages is merged by the background worker" in page
    response = client.post(url("code_merge", "prices"), {"with": "money", "survivor": "money"})
    merge = CodebookJob.objects.get()
    assert response["Location"] == merge.get_absolute_url() and merge.total == 4
    run_worker()
    merge.refresh_from_db()
    assert merge.state == "done"
    assert merge.summary == "Merged “prices” into “money”: 4 passages moved."
    assert not Code.objects.filter(pk=coded["prices"].pk).exists()
    assert tags_of(coded["passages"][1]) == ["money"]  # carried both: keeps one
    assert tags_of(coded["passages"][4]) == ["prices"]  # private: not the curator's to change

    page = client.get(url("code_delete", "money")).content.decode()
    assert "from 5 passages" in page and "the background worker makes the change" in page
    response = client.post(url("code_delete", "money"), {"confirmed": "5"})
    delete = CodebookJob.objects.exclude(pk=merge.pk).get()
    assert response["Location"] == delete.get_absolute_url()
    run_worker()
    delete.refresh_from_db()
    assert delete.summary == "Deleted the code “money” and removed it from 5 passages."
    assert not Code.objects.filter(pk=coded["money"].pk).exists()
    assert [tags_of(a) for a in coded["passages"][:4]] == [[], [], [], []]
    assert [e.kind for e in CollectionEvent.objects.order_by("pk")][-2:] == [
        "codes_merged",
        "code_deleted",
    ]


def test_a_change_of_case_is_made_by_the_worker_and_indexed_again(owner, coded):
    signed_in(owner).post(url("code_rename", "prices"), {"name": "Prices"})
    carrying = coded["passages"][:5]
    AnnotationEntry.objects.filter(annotation__in=carrying).delete()
    run_worker()
    job = CodebookJob.objects.get()
    assert job.state == "done"
    assert job.summary == "Renamed “prices” to “Prices” on 4 passages of this collection."
    tag = Code.objects.get(pk=coded["prices"].pk).tag
    assert (tag.pk, tag.name, tag.slug) == (coded["prices"].tag.pk, "Prices", "prices")
    # Every passage is indexed again, the private one too (its tag's name changed for it).
    entries = AnnotationEntry.objects.filter(annotation__in=carrying)
    assert sorted(entries.values_list("annotation_id", flat=True)) == [a.pk for a in carrying]
    assert set(entries.values_list("tags", flat=True)) >= {"prices"}


def test_while_the_worker_changes_a_code_other_changes_to_it_wait(owner, editor, coded):
    signed_in(owner).post(url("code_rename", "prices"), {"name": "costs"})
    client = signed_in(editor)
    before = Tag.objects.count(), CollectionEvent.objects.count()
    refused = "“prices” is being changed in the background (renaming “prices” to “costs”)"
    attempts = [
        (url("code_rename", "prices"), {"name": "other"}),
        (url("code_edit", "prices"), {"description": "x", "colour": "", "parent": ""}),
        (url("code_merge", "rents"), {"with": "prices", "survivor": "rents"}),
        (url("code_merge", "money"), {"with": "prices", "survivor": "prices"}),
        (url("code_delete", "prices"), {"confirmed": "4"}),
    ]
    for path, data in attempts:
        response = client.post(path, data, follow=True)
        assert response.status_code == 200
        assert any(refused in m for m in flash(response)), (path, flash(response))
    assert (Tag.objects.count(), CollectionEvent.objects.count()) == before
    assert CodebookJob.objects.count() == 1
    # Other codes are changed as usual, and the editor sees the change under way, unlinked.
    response = signed_in(editor).post(url("code_rename", "rents"), {"name": "rent"}, follow=True)
    assert "Renamed “rents” to “rent” on 1 passage of this collection." in flash(response)
    codebook = client.get(url("codebook")).content.decode()
    job = CodebookJob.objects.get()
    assert "Renaming “prices” to “costs”" in codebook and "asked by olive" in codebook
    assert job.get_absolute_url() not in codebook
    # The code's tools make way for a note until it is done; the others keep theirs.
    assert "Change “prices”" not in codebook and "Being changed in the background" in codebook
    assert "Change “money”" in codebook
    run_worker()
    codebook = client.get(url("codebook")).content.decode()
    assert "Change “costs”" in codebook and "Being changed in the background" not in codebook
    assert signed_in(editor).post(url("code_rename", "costs"), {"name": "c"}).status_code == 302
    assert CodebookJob.objects.count() == 2


def test_a_job_whose_requester_lost_the_role_fails_and_changes_nothing(editor, coded):
    client = signed_in(editor)
    client.post(url("code_rename", "prices"), {"name": "costs"})
    job = CodebookJob.objects.get()
    Membership.objects.filter(user=editor).update(role=Membership.Role.VIEWER)
    tags_before = [tags_of(a) for a in coded["passages"]]

    run_worker()

    job.refresh_from_db()
    assert job.state == "failed"
    assert job.error == "Nothing was changed: you may no longer change this collection's codebook."
    assert [tags_of(a) for a in coded["passages"]] == tags_before
    assert Code.objects.get(pk=coded["prices"].pk).tag.name == "prices"
    assert not Tag.objects.filter(name="costs").exists()
    assert not AnnotationRevision.objects.exists()
    assert escape(job.error) in client.get(job.get_absolute_url()).content.decode()
    # Failed, it no longer holds the code.
    owner_client = signed_in(coded["prices"].collection.owner)
    assert owner_client.post(url("code_rename", "prices"), {"name": "c"}).status_code == 302
    assert CodebookJob.objects.filter(state="queued").count() == 1


def test_only_its_requester_sees_the_jobs_page(owner, member, editor, stranger, curator, coded):
    signed_in(owner).post(url("code_rename", "prices"), {"name": "costs"})
    job = CodebookJob.objects.get()
    for other in (stranger, member, editor, curator):
        client = signed_in(other)
        for suffix in ("", "status"):
            response = client.get(f"/codebook-jobs/{job.uuid}/{suffix}")
            assert response.status_code == 404
            assert b"prices" not in response.content and b"costs" not in response.content
        assert client.post(f"/codebook-jobs/{job.uuid}/retry").status_code == 404
    anonymous = Client().get(job.get_absolute_url())
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert signed_in(owner).get(f"/codebook-jobs/{job.uuid}/retry").status_code == 405
    # A stranger cannot queue one either, nor learn the code exists.
    response = signed_in(stranger).post(url("code_rename", "money"), {"name": "x"})
    assert response.status_code == 404 and CodebookJob.objects.count() == 1
    # Members who do not curate see no changes under way on the codebook page.
    assert (
        "Changes the worker is making"
        not in signed_in(member).get(url("codebook")).content.decode()
    )


def test_a_requester_who_loses_the_role_midway_is_stopped_after_the_batches_made(
    owner, editor, coded
):
    signed_in(editor).post(url("code_merge", "prices"), {"with": "money", "survivor": "money"})
    job = CodebookJob.objects.get()
    real_move = annotation_models._move_passages

    def move_then_demote(rows, to, actor=None):
        moved = real_move(rows, to, actor)
        Membership.objects.filter(user=editor).update(role=Membership.Role.VIEWER)
        return moved

    with mock.patch.object(annotation_models, "_move_passages", move_then_demote):
        run_worker()
    job.refresh_from_db()
    assert job.state == "failed" and job.done == 2
    assert job.error == (
        "Stopped after 2 of 4 passages: you may no longer change this collection's codebook. "
        "The passages changed so far keep their new tags."
    )
    # The merge itself was not made: both codes stay, and the codebook is free again.
    assert Code.objects.filter(pk__in=[coded["prices"].pk, coded["money"].pk]).count() == 2
    assert not CollectionEvent.objects.filter(kind="codes_merged").exists()
    assert not CodebookJob.objects.active().exists()


class WorkerKilled(BaseException):
    """Stands in for the worker's process being killed in the middle of a batch."""


def test_a_run_killed_mid_batch_is_finished_by_a_retry_changing_each_passage_once(owner, coded):
    signed_in(owner).post(url("code_merge", "prices"), {"with": "money", "survivor": "money"})
    job = CodebookJob.objects.get()
    real_move = annotation_models._move_passages
    calls = []

    def move_then_die(rows, to, actor=None):
        calls.append(1)
        moved = real_move(rows, to, actor)
        if len(calls) == 2:
            raise WorkerKilled  # after the second batch's changes, before it commits
        return moved

    with mock.patch.object(annotation_models, "_move_passages", move_then_die):
        assert job.claim()
        with pytest.raises(WorkerKilled):
            job.run()
    job.interrupted()
    job.refresh_from_db()
    assert job.stalled and job.done == 2  # the first batch is kept, the second undone
    assert CodebookJob.objects.get().status_text.startswith("The change stopped")
    page = signed_in(owner).get(job.get_absolute_url()).content.decode()
    assert "Try again" in page

    response = signed_in(owner).post(f"/codebook-jobs/{job.uuid}/retry")
    assert response["Location"] == job.get_absolute_url()
    run_worker()

    job.refresh_from_db()
    assert (job.state, job.attempt, job.done) == ("done", 2, 4)
    assert job.summary == "Merged “prices” into “money”: 4 passages moved."
    for passage in coded["passages"][:4]:
        assert AnnotationRevision.objects.filter(annotation=passage).count() == 1
        assert Annotation.objects.get(pk=passage.pk).version == passage.version + 1
        assert tags_of(passage) == ["money"]
    assert CollectionEvent.objects.filter(kind="codes_merged").count() == 1
    assert not TagRedirect.objects.filter(old_slug="prices").exists()  # private passage keeps it


def test_a_finished_or_running_job_is_not_run_again(owner, coded):
    signed_in(owner).post(url("code_delete", "money"), {"confirmed": "2"})
    assert not CodebookJob.objects.exists()  # two passages: at once
    signed_in(owner).post(url("code_delete", "prices"), {"confirmed": "4"})
    job = CodebookJob.objects.get()
    run_worker()
    job.refresh_from_db()
    assert job.state == "done"
    response = signed_in(owner).post(f"/codebook-jobs/{job.uuid}/retry", follow=True)
    assert "nothing to try again" in " ".join(flash(response))
    job.enqueue()  # a duplicate task finds it already run
    run_worker()
    assert CollectionEvent.objects.filter(kind="code_deleted").count() == 2


@pytest.mark.parametrize("batch", [2, 6])
def test_a_batch_reads_a_fixed_number_of_queries_however_many_it_holds(
    owner, member, coded, source, settings, batch, django_assert_max_num_queries
):
    settings.SCHOLION_CODEBOOK_BATCH_PASSAGES = batch
    for start in range(150, 150 + 6 * 12, 12):
        note(source, member, start, ["prices"])
    job = CodebookJob.submit_rename(
        Code.objects.with_counts(owner).get(pk=coded["prices"].pk), "costs", actor=owner
    )
    assert job.claim()
    job._begin()
    # The batch, the revisions, the retag, the search index and the job's own record: the
    # same statements for two passages as for six.
    with django_assert_max_num_queries(17):
        assert job._next_batch()
    # Of the first passages, those the curator reads: six hold the member's private one.
    readable = {2: 2, 6: 5}[batch]
    assert job.done == Annotation.objects.filter(tags__name="costs").count() == readable


def test_the_codebook_page_reads_as_many_queries_for_five_jobs_as_for_one(
    owner, editor, coded, collection
):
    def add_job(user, code) -> None:
        CodebookJob.objects.create(
            user=user, collection=collection, action="delete", code=code, old_name=code.name
        )

    client = signed_in(owner)
    add_job(owner, coded["prices"])
    with CaptureQueriesContext(connection) as one:
        client.get(url("codebook"))
    for user, code in ((editor, "money"), (owner, "rents"), (editor, "prices"), (editor, "money")):
        add_job(user, coded[code])
    with CaptureQueriesContext(connection) as five:
        page = client.get(url("codebook")).content.decode()
    assert page.count("Deleting “") == 5 and "asked by eddie" in page
    assert len(five) == len(one)
