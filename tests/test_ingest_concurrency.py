"""Archiving under contention and failure: simultaneous uploads, a disk write failing halfway."""

from __future__ import annotations

import errno
import hashlib
import uuid
from pathlib import Path

import pytest
from django.db import connection

from archive.blobstore import ContentAddressedFileSystemStorage, archive_storage, blob_name
from archive.ingest import Archived, ArchiveError, archive_chunks
from archive.models import Source
from tests.helpers import archive_location, run_at_once

THREADS = 8


@pytest.mark.django_db(transaction=True)
def test_the_same_bytes_uploaded_at_once_make_exactly_one_source(owner):
    data = f"Breaking news\n\nEveryone uploads this at once. {uuid.uuid4()}\n".encode()
    # Several chunks, so the threads overlap while spooling and hashing too.
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)]

    results, errors = run_at_once(lambda i: archive_chunks(iter(chunks), user=owner))

    assert errors == []
    assert Source.objects.count() == 1
    source = Source.objects.get()
    assert {r.source.pk for r in results} == {source.pk}
    assert sum(r.created for r in results) == 1
    assert all("already archived" in r.message for r in results if not r.created)
    with source.open_original() as fh:
        assert fh.read() == data
    assert source.verify_fixity().ok


@pytest.mark.django_db(transaction=True)
def test_different_bytes_uploaded_at_once_all_succeed(owner, collection):
    if connection.vendor == "sqlite":
        # What lets SQLite writers queue instead of failing with "database is locked".
        with connection.cursor() as cursor:
            assert cursor.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    tag = uuid.uuid4()

    def work(i: int) -> Archived:
        return archive_chunks(
            iter([f"Report {i}\n\nBody of report {i}. {tag}\n".encode()]),
            user=owner,
            collection=collection,
        )

    results, errors = run_at_once(work)

    assert errors == []
    assert all(r.created for r in results)
    assert Source.objects.count() == THREADS
    assert collection.sources.count() == THREADS


@pytest.mark.django_db(transaction=True)
def test_different_bytes_with_the_same_citation_key_uploaded_at_once_all_succeed(owner):
    # Same title, author and year give the same citation key base: each must still get one.
    tag = uuid.uuid4()
    metadata = {"title": "Resistance operations", "creators": ["Smith, Jane"]}

    def work(i: int) -> Archived:
        return archive_chunks(
            iter([f"Version {i} of the report. {tag}\n".encode()]),
            user=owner,
            metadata={**metadata, "date_published": "2024"},
        )

    results, errors = run_at_once(work)

    assert errors == []
    keys = sorted(Source.objects.values_list("citation_key", flat=True))
    assert len(keys) == THREADS == len(set(keys))
    assert all(key.startswith("smith2024resistance") for key in keys)


# --- The disk write failing halfway ------------------------------------------------------


class HalfwayFailingStorage(ContentAddressedFileSystemStorage):
    """The real storage, whose disk fills up after ``fail_after`` bytes of a blob."""

    fail_after = 4096

    def _save(self, name, content):
        whole_chunks = content.chunks

        def chunks(chunk_size=None):
            written = 0
            for chunk in whole_chunks(chunk_size):
                room = self.fail_after - written
                if len(chunk) > room:
                    yield chunk[:room]
                    raise OSError(errno.ENOSPC, "No space left on device")
                written += len(chunk)
                yield chunk

        content.chunks = chunks
        return super()._save(name, content)


@pytest.fixture
def failing_storage(settings):
    location = archive_location()
    # The settings fixture sends setting_changed, whose handler empties Django's storage cache.
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": f"{__name__}.HalfwayFailingStorage",
            "OPTIONS": {"location": location},
        },
    }
    storage = archive_storage()
    assert isinstance(storage, HalfwayFailingStorage)
    return storage


def leftovers(storage) -> list[Path]:
    return [p for p in Path(storage.location).rglob(".partial-*")]


@pytest.mark.django_db
def test_a_disk_write_failing_halfway_leaves_nothing_behind(failing_storage, owner):
    data = (f"A long report {uuid.uuid4()}\n\n" + "Paragraph of text. " * 2000).encode()
    assert len(data) > failing_storage.fail_after
    name = blob_name(hashlib.sha256(data).hexdigest())

    with pytest.raises(ArchiveError) as excinfo:
        archive_chunks(iter([data]), user=owner, filename="report.txt")

    message = str(excinfo.value)
    assert "could not be stored" in message and "No space left on device" in message
    assert "nothing was archived" in message
    assert Source.objects.count() == 0
    assert not failing_storage.exists(name)
    assert leftovers(failing_storage) == []


@pytest.mark.django_db
def test_after_a_failed_write_the_same_bytes_archive_normally(settings, owner):
    data = (f"Retried report {uuid.uuid4()}\n\n" + "Words. " * 2000).encode()
    original = settings.STORAGES
    location = archive_location()
    settings.STORAGES = {
        **original,
        "archive": {
            "BACKEND": f"{__name__}.HalfwayFailingStorage",
            "OPTIONS": {"location": location},
        },
    }
    with pytest.raises(ArchiveError):
        archive_chunks(iter([data]), user=owner)
    settings.STORAGES = original
    assert not isinstance(archive_storage(), HalfwayFailingStorage)

    archived = archive_chunks(iter([data]), user=owner)
    assert archived.created
    with archived.source.open_original() as fh:
        assert fh.read() == data
    assert archived.source.verify_fixity().ok


@pytest.mark.django_db
def test_a_failed_write_through_the_web_form_shows_an_error_not_a_500(
    failing_storage, client, owner
):
    client.force_login(owner)
    text = f"Pasted report {uuid.uuid4()}\n\n" + "Sentence. " * 1000
    response = client.post("/sources/new/", {"text": text})
    assert response.status_code == 200
    assert "could not be stored" in response.text
    assert Source.objects.count() == 0
    assert leftovers(failing_storage) == []
