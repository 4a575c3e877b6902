"""Reading archived bytes back from S3 (fixity, exports, backups) streams the object's body:
django-storages' S3File would first download the whole object to a temporary file."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from archive.blobstore import archive_storage, read_chunks
from archive.models import Source
from exports.bag import bag_chunks
from exports.forms import export_scope
from tests.conftest import archive_text

# Larger than the storage's max_memory_size (1 MiB in tests/s3.py), so S3File would spill
# it to a temporary file, and several read chunks long.
LARGE = (b"The harbour master's ledger for 1843 lists forty-one ferry crossings.\n" * 50_000)[
    : 3 * 1024 * 1024 + 17
]


@pytest.fixture
def nowhere_to_spill(settings, tmp_path):
    """Temporary files go to a directory that does not exist: any read that spills fails."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "absent")
    return settings


def test_the_storage_own_read_would_spill_to_disk(s3, owner, collection, nowhere_to_spill):
    # What read_chunks avoids: without this the test below could not fail.
    name = archive_text(LARGE, user=owner, collection=collection).blob_name
    with pytest.raises(FileNotFoundError), archive_storage().open(name, "rb") as fh:
        fh.read(1)


def test_a_large_object_is_read_in_chunks_without_a_temporary_file(
    s3, owner, collection, nowhere_to_spill
):
    source = archive_text(LARGE, user=owner, collection=collection)
    chunks = list(read_chunks(source.blob_name))
    assert len(chunks) > 1
    assert b"".join(chunks) == LARGE
    assert source.verify_fixity().ok


def test_fixity_of_a_lost_object_says_it_is_missing(s3, owner, collection):
    source = archive_text(LARGE, user=owner, collection=collection)
    s3.client().delete_object(Bucket="scholion-archive", Key=source.blob_name)
    with pytest.raises(FileNotFoundError):
        next(read_chunks(source.blob_name))
    check = source.verify_fixity()
    assert check.error == f"The stored bytes are missing ({source.blob_name})."
    source.refresh_from_db()
    assert source.fixity_status == Source.Fixity.FAILED


def test_the_bag_export_streams_the_original_from_the_bucket(
    s3, owner, collection, nowhere_to_spill
):
    source = archive_text(LARGE, user=owner, collection=collection, filename="ledger.txt")
    scope = export_scope(collection, owner, "http://testserver")
    with zipfile.ZipFile(io.BytesIO(b"".join(bag_chunks(scope)))) as bag:
        digests = {hashlib.sha256(bag.read(name)).hexdigest() for name in bag.namelist()}
    assert source.sha256 in digests
