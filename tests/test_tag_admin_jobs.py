"""The admin's merge and rename of tags touch every collection; on more passages than
SCHOLION_CODEBOOK_INLINE_PASSAGES they are made by the worker (a CodebookJob without a
collection), in batches, as long as the requester stays on the staff. Listed with the codebook
jobs in the admin, where a stopped one is tried again; while one runs, the codes carrying its
tags wait for it."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from taggit.models import Tag

import annotations.models as annotation_models
from annotations.models import Annotation, AnnotationRevision, Code, CodebookJob, TagRedirect
from search.models import AnnotationEntry
from tests.conftest import archive_text, run_worker

pytestmark = pytest.mark.django_db(transaction=True)

TAGS = "/admin/taggit/tag/"
JOBS = "/admin/annotations/codebookjob/"
TEXT = "Prices rose in spring. Wages fell in summer. Rents held in autumn. " * 4


@pytest.fixture(autouse=True)
def small_limits(settings):
    """Three passages are "many", and the worker changes two at a time."""
    settings.SCHOLION_CODEBOOK_INLINE_PASSAGES = 2
    settings.SCHOLION_CODEBOOK_BATCH_PASSAGES = 2


@pytest.fixture
def source(owner, collection):
    return archive_text(TEXT, owner, collection)


@pytest.fixture
def tagged(owner, member, source, collection):
    """ "Costs" on four passages (one a member's private one, one also "prices"), "prices" on
    two; both codes of the collection's codebook."""
    passages = [
        note(source, member, 0, ["Costs"]),
        note(source, owner, 23, ["Costs", "prices"]),
        note(source, member, 45, ["Costs"], visibility="private"),
        note(source, owner, 70, ["Costs"]),
        note(source, owner, 110, ["prices"]),
    ]
    codes = {name: Code.add(collection, name, actor=owner) for name in ("Costs", "prices")}
    return {"passages": passages, **codes}


def note(source, author, start: int, tags: list[str], visibility: str = "collection"):
    return Annotation.create_anchored(
        author=author, source=source, start=start, end=start + 6, tags=tags, visibility=visibility
    )


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def tags_of(annotation: Annotation) -> list[str]:
    return sorted(Annotation.objects.get(pk=annotation.pk).tags.names())


def merge(client: Client, survivor: str, *others: str):
    ids = [Tag.objects.get(name=name).pk for name in (survivor, *others)]
    return client.post(
        TAGS,
        {
            "action": "merge_tags",
            "_selected_action": ids,
            "confirmed": "yes",
            "survivor": ids[0],
        },
        follow=True,
    )


def rename(client: Client, old: str, new: str):
    tag = Tag.objects.get(name=old)
    return client.post(f"{TAGS}{tag.pk}/change/", {"name": new, "slug": new.lower()}, follow=True)


def test_a_merge_of_few_passages_is_made_at_once(curator, tagged):
    response = merge(signed_in(curator), "Costs", "prices")
    assert any(m.startswith("Merged “prices” into “Costs”") for m in flash(response))
    assert not CodebookJob.objects.exists()
    assert tags_of(tagged["passages"][4]) == ["Costs"]


def test_a_merge_of_many_passages_is_queued_then_made_by_the_worker(curator, member, tagged):
    client = signed_in(curator)
    response = merge(client, "prices", "Costs")
    assert (
        "“Costs” is being merged into “prices” in the background; it is listed under Codebook "
        "jobs in the admin." in flash(response)
    )
    job = CodebookJob.objects.get()
    assert (job.collection, job.action, job.user, job.state, job.total) == (
        None,
        "merge",
        curator,
        "queued",
        4,
    )
    assert tags_of(tagged["passages"][0]) == ["Costs"]  # nothing yet: the request only asked
    assert "merging the tag “Costs” into “prices” everywhere" in client.get(JOBS).content.decode()

    run_worker()

    job.refresh_from_db()
    assert job.state == "done" and job.done == 4
    assert job.summary == "Merged the tag “Costs” into “prices” everywhere: 4 passages moved."
    # Every passage, the private one too, as the merge made at once does.
    for passage in tagged["passages"]:
        assert tags_of(passage) == ["prices"]
    for passage in tagged["passages"][:4]:
        assert AnnotationRevision.objects.filter(annotation=passage).count() == 1
        assert Annotation.objects.get(pk=passage.pk).version == passage.version + 1
        assert "Costs" in AnnotationRevision.objects.get(annotation=passage).tags
    entry = AnnotationEntry.objects.get(annotation=tagged["passages"][0])
    assert "prices" in entry.tags and "costs" not in entry.tags.lower()
    assert not Tag.objects.filter(name="Costs").exists()
    assert client.get("/tags/costs/")["Location"] == "/tags/prices/"
    # The codebook had both: it keeps one code.
    assert list(Code.objects.values_list("tag__name", flat=True)) == ["prices"]


def test_a_rename_of_few_passages_is_indexed_at_once(curator, tagged):
    rename(signed_in(curator), "prices", "outlays")
    assert not CodebookJob.objects.exists()
    assert "outlays" in AnnotationEntry.objects.get(annotation=tagged["passages"][4]).tags


def test_a_rename_of_many_passages_is_indexed_again_by_the_worker(curator, tagged):
    client = signed_in(curator)
    response = rename(client, "Costs", "Outlays")
    assert (
        "“Outlays” is being indexed under its new name in the background; it is listed under "
        "Codebook jobs in the admin." in flash(response)
    )
    job = CodebookJob.objects.get()
    assert (job.collection, job.action, job.old_name, job.new_name) == (
        None,
        "rename",
        "Costs",
        "Outlays",
    )
    # The name changes at once; the old address leads to the new one.
    assert tags_of(tagged["passages"][0]) == ["Outlays"]
    assert client.get("/tags/costs/")["Location"] == "/tags/outlays/"
    assert "outlays" not in AnnotationEntry.objects.get(annotation=tagged["passages"][0]).tags

    run_worker()

    job.refresh_from_db()
    assert job.state == "done" and job.done == 4
    assert job.summary == "Renamed the tag “Costs” to “Outlays”: 4 passages indexed again."
    for passage in tagged["passages"][:4]:
        assert "outlays" in AnnotationEntry.objects.get(annotation=passage).tags.lower()
        assert not AnnotationRevision.objects.filter(annotation=passage).exists()


def test_while_the_worker_merges_a_tag_its_codes_and_the_tag_wait(curator, owner, tagged):
    admin = signed_in(curator)
    merge(admin, "prices", "Costs")
    response = signed_in(owner).post(
        reverse("annotations:code_rename", args=["field-notes", "prices"]),
        {"name": "charges"},
        follow=True,
    )
    assert (
        "“prices” was not renamed: “prices” is being changed in the background (by an "
        "administrator, in every collection); change it again once that is done." in flash(response)
    )
    response = rename(admin, "prices", "charges")
    assert "is being changed in the background" in response.content.decode()
    response = merge(admin, "Costs", "prices")
    assert any(m.startswith("Nothing was merged: A tag involved") for m in flash(response))
    assert CodebookJob.objects.count() == 1
    assert set(Tag.objects.values_list("name", flat=True)) == {"Costs", "prices"}


def test_a_requester_who_leaves_the_staff_midway_is_stopped_after_the_batches_made(curator, tagged):
    merge(signed_in(curator), "prices", "Costs")
    job = CodebookJob.objects.get()
    real_move = annotation_models._move_passages

    def move_then_demote(rows, to, actor=None):
        moved = real_move(rows, to, actor)
        type(curator).objects.filter(pk=curator.pk).update(is_staff=False)
        return moved

    with mock.patch.object(annotation_models, "_move_passages", move_then_demote):
        run_worker()
    job.refresh_from_db()
    assert job.state == "failed" and job.done == 2
    assert job.error == (
        "Stopped after 2 of 4 passages: you may no longer change tags in the admin. "
        "The passages changed so far keep their new tags."
    )
    assert Tag.objects.filter(name="Costs").exists()  # still on two passages
    assert not CodebookJob.objects.active().exists()


def test_a_requester_no_longer_staff_changes_nothing(curator, tagged):
    merge(signed_in(curator), "prices", "Costs")
    type(curator).objects.filter(pk=curator.pk).update(is_staff=False)
    run_worker()
    job = CodebookJob.objects.get()
    assert (job.state, job.done) == ("failed", 0)
    assert job.error == "Nothing was changed: you may no longer change tags in the admin."
    assert tags_of(tagged["passages"][0]) == ["Costs"]


class WorkerKilled(BaseException):
    """Stands in for the worker's process being killed in the middle of a batch."""


def test_a_run_killed_mid_batch_is_retried_from_the_admin_changing_each_passage_once(
    curator, tagged
):
    client = signed_in(curator)
    merge(client, "prices", "Costs")
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
    assert job.stalled and job.done == 2

    response = client.post(
        JOBS, {"action": "retry_stopped_jobs", "_selected_action": [job.pk]}, follow=True
    )
    assert "1 job queued to run again." in flash(response)
    run_worker()
    job.refresh_from_db()
    assert (job.state, job.attempt, job.done) == ("done", 2, 4)
    for passage in tagged["passages"][:4]:
        assert AnnotationRevision.objects.filter(annotation=passage).count() == 1
        assert tags_of(passage) == ["prices"]
    assert TagRedirect.objects.filter(old_slug="costs").count() == 1
    job.enqueue()  # a duplicate task finds it already run
    run_worker()
    assert AnnotationRevision.objects.count() == 4


def test_a_passage_given_the_merged_tag_behind_the_worker_is_merged_too(curator, tagged):
    merge(signed_in(curator), "prices", "Costs")
    job = CodebookJob.objects.get()
    real_move = annotation_models._move_passages
    calls = []

    def move_then_tag_the_first(rows, to, actor=None):
        moved = real_move(rows, to, actor)
        calls.append(1)
        if len(calls) == 1:  # once the worker has passed it, someone tags it again
            Annotation.objects.get(pk=tagged["passages"][0].pk).tags.add("Costs")
        return moved

    with mock.patch.object(annotation_models, "_move_passages", move_then_tag_the_first):
        assert job.claim()
        job.run()
    job.refresh_from_db()
    assert job.state == "done"
    assert tags_of(tagged["passages"][0]) == ["prices"]
    assert not Tag.objects.filter(name="Costs").exists()


@pytest.mark.parametrize("batch", [2, 6])
def test_a_batch_reads_a_fixed_number_of_queries_however_many_it_holds(
    curator, member, tagged, source, settings, batch, django_assert_max_num_queries
):
    settings.SCHOLION_CODEBOOK_BATCH_PASSAGES = batch
    for start in range(150, 150 + 6 * 12, 12):
        note(source, member, start, ["Costs"])
    survivor, merged = Tag.objects.get(name="prices"), Tag.objects.get(name="Costs")
    [job] = CodebookJob.submit_tag_merge(survivor, [merged], actor=curator)
    assert job.claim()
    # The staff check, the lock, the batch, the revisions, the retag, the search index and
    # the job's own record: the same statements for two passages as for six.
    with django_assert_max_num_queries(18):
        assert job._next_batch()
        job._check_permission()
    assert job.done == batch == Annotation.objects.filter(tags__name="prices").count() - 1
