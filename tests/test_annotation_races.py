"""An edit and a delete of one annotation sent together: If-Match decides, never a 500.

Each round sends a PUT and a DELETE through the real views, from two threads with their own
database connections and their own logged-in clients, released together.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from functools import partial

import pytest
from django.db import connections
from django.test import Client

from annotations.models import Annotation, AnnotationRevision, TaggedAnnotation
from search.models import AnnotationEntry

API = "/api/annotations/"
ROUNDS = 30


def content(note: str, tags: list[str]) -> str:
    """A PUT body: a new note and tags, no target (the anchor never changes)."""
    bodies = [{"type": "TextualBody", "value": note, "purpose": "commenting"}]
    bodies += [{"type": "TextualBody", "value": t, "purpose": "tagging"} for t in tags]
    return json.dumps(
        {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation", "body": bodies}
    )


def logged_in(user) -> Client:
    # A 500 must come back as a response the round can count, not as an exception.
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def run_together(*requests: Callable[[], object]) -> list:
    """Send ``requests`` from one thread each, released together; return their answers."""
    barrier = threading.Barrier(len(requests))
    answers: list = [None] * len(requests)

    def send(i: int) -> None:
        try:
            barrier.wait()
            answers[i] = requests[i]()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            answers[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def annotate(member, source, round_: int) -> Annotation:
    return Annotation.create_anchored(
        author=member,
        source=source,
        start=round_,
        end=round_ + 2,
        note=f"original {round_}",
        tags=["before"],
    )


def status(answer) -> int | str:
    return answer.status_code if hasattr(answer, "status_code") else repr(answer)


@pytest.mark.django_db(transaction=True)
def test_a_put_and_a_delete_with_the_same_if_match_never_both_succeed(member, demo_source):
    editor, deleter = logged_in(member), logged_in(member)
    failures = []
    for round_ in range(ROUNDS):
        annotation = annotate(member, demo_source, round_)
        url, etag = f"{API}{annotation.uuid}", annotation.etag
        note = f"confirmed edit {round_}"
        put, delete = run_together(
            partial(
                editor.put,
                url,
                content(note, ["after"]),
                content_type="application/ld+json",
                HTTP_IF_MATCH=etag,
            ),
            partial(deleter.delete, url, HTTP_IF_MATCH=etag),
        )
        statuses = (status(put), status(delete))
        succeeded = [s for s in statuses if isinstance(s, int) and 200 <= s < 300]
        stored = Annotation.objects.filter(pk=annotation.pk).first()
        problems = []
        if any(not isinstance(s, int) or s >= 500 for s in statuses):
            problems.append("an error")
        if len(succeeded) != 1:
            problems.append(f"{len(succeeded)} succeeded")
        if statuses[0] == 200 and (stored is None or stored.note != note):
            problems.append("the confirmed edit was lost")
        if statuses[1] == 204 and stored is not None:
            problems.append("the deleted annotation is still there")
        if statuses[1] != 204 and statuses[1] not in (404, 412):
            problems.append("the DELETE was refused for another reason")
        if statuses[0] != 200 and statuses[0] not in (404, 412):
            problems.append("the PUT was refused for another reason")
        if stored is None:
            later = editor.put(
                url,
                content("too late", []),
                content_type="application/ld+json",
                HTTP_IF_MATCH=etag,
            )
            if later.status_code != 404 or "error" not in later.json():
                problems.append(f"a later PUT answered {later.status_code}")
        if problems:
            failures.append((round_, statuses, problems))
    assert failures == [], f"{len(failures)} of {ROUNDS} rounds went wrong: {failures}"


@pytest.mark.django_db(transaction=True)
def test_a_put_racing_an_unconditional_delete_answers_the_edit_or_404_never_500(
    member, demo_source
):
    # Without If-Match the DELETE always wins, before the edit or just after it (then the
    # edit's own answer finds the annotation gone).
    editor, deleter = logged_in(member), logged_in(member)
    failures = []
    for round_ in range(ROUNDS):
        annotation = annotate(member, demo_source, round_)
        url, etag = f"{API}{annotation.uuid}", annotation.etag
        put, delete = run_together(
            partial(
                editor.put,
                url,
                content("edited", ["after"]),
                content_type="application/ld+json",
                HTTP_IF_MATCH=etag,
            ),
            partial(deleter.delete, url),
        )
        statuses = (status(put), status(delete))
        if statuses[0] not in (200, 404) or statuses[1] != 204:
            failures.append((round_, statuses))
        elif statuses[0] == 404:
            assert put.json() == {"error": "No annotation you can see has that id."}
    assert failures == [], f"{len(failures)} of {ROUNDS} rounds went wrong: {failures}"
    assert not Annotation.objects.exists()
    assert not AnnotationEntry.objects.exists()
    assert not AnnotationRevision.objects.exists()
    assert not TaggedAnnotation.objects.exists()
