"""Content-addressed storage of original bytes through Django's storage API.

Bytes are hashed while they stream to a local spool file (constant memory), then saved
once under ``sha256/ab/cd/<sha256>``. The filesystem backend writes to a temporary name in
the target directory and renames it into place, so a content address never holds a
partial blob; object stores such as S3 publish an object only once it is whole.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils.http import content_disposition_header

CHUNK_SIZE = 1024 * 1024


class TooLarge(Exception):
    """The input is larger than SCHOLION_MAX_UPLOAD_BYTES."""


class ContentAddressedFileSystemStorage(FileSystemStorage):
    """A FileSystemStorage whose writes are atomic and never renamed on collision.

    The name of a blob is its hash, so an existing file with that name already holds the
    same bytes; Django's default of appending a random suffix would store it twice.
    """

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return name

    def _save(self, name: str, content: File) -> str:
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        os.makedirs(directory, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out:
                if hasattr(content, "seek"):
                    content.seek(0)
                for chunk in content.chunks(CHUNK_SIZE):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp_path, 0o444)
            os.replace(tmp_path, full_path)
        except BaseException:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
            raise
        return name


def archive_storage() -> Storage:
    return storages["archive"]


def signed_download_url(
    name: str, *, filename: str, content_type: str, storage: Storage | None = None
) -> str | None:
    """A short-lived signed URL at which the storage (the archive's unless given) itself
    serves the file as a download named ``filename``, or None for a storage that does not
    sign its URLs (the filesystem, or a bucket configured for unsigned URLs, which must never
    be handed out)."""
    storage = storage or archive_storage()
    if not getattr(storage, "querystring_auth", False):
        return None
    # django-storages' S3Storage.url, which takes the response headers to sign in.
    return storage.url(  # type: ignore[call-arg]
        name,
        parameters={
            "ResponseContentDisposition": content_disposition_header(True, filename),
            "ResponseContentType": content_type,
        },
    )


def blob_name(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


@dataclass
class Spooled:
    """Bytes hashed and spooled to a local temporary file, ready to store."""

    file: IO[bytes]
    sha256: str
    size: int
    head: bytes  # the first bytes, for sniffing without rereading

    def close(self) -> None:
        self.file.close()

    def chunks(self) -> Iterator[bytes]:
        self.file.seek(0)
        while chunk := self.file.read(CHUNK_SIZE):
            yield chunk


HEAD_BYTES = 64 * 1024


def spool(chunks: Iterator[bytes], max_bytes: int | None = None) -> Spooled:
    """Hash ``chunks`` into a temporary file; raise TooLarge past ``max_bytes``."""
    limit = settings.SCHOLION_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    digest = hashlib.sha256()
    size = 0
    head = bytearray()
    settings.SCHOLION_TMP_DIR.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryFile(dir=settings.SCHOLION_TMP_DIR)  # noqa: SIM115 - returned open
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise TooLarge(size)
            digest.update(chunk)
            if len(head) < HEAD_BYTES:
                head.extend(chunk[: HEAD_BYTES - len(head)])
            tmp.write(chunk)
        tmp.flush()
        tmp.seek(0)
    except BaseException:
        tmp.close()
        raise
    return Spooled(file=tmp, sha256=digest.hexdigest(), size=size, head=bytes(head))


def file_chunks(fileobj: IO[bytes]) -> Iterator[bytes]:
    while chunk := fileobj.read(CHUNK_SIZE):
        yield chunk


def store(spooled: Spooled) -> tuple[str, bool]:
    """Save spooled bytes at their content address. Returns (name, newly_written)."""
    storage = archive_storage()
    name = blob_name(spooled.sha256)
    if storage.exists(name) and _holds(name, spooled.sha256):
        return name, False
    # Absent, or a damaged orphan (its source was deleted): write the good bytes over it.
    spooled.file.seek(0)
    saved = storage.save(name, File(spooled.file, name=name))
    if saved != name:  # a storage that renamed on collision would break content addressing
        raise RuntimeError(f"storage saved {name} as {saved}")
    return name, True


def _holds(name: str, sha256: str) -> bool:
    try:
        return hash_stored(name)[0] == sha256
    except OSError:
        return False


def hash_stored(name: str) -> tuple[str, int]:
    """Re-read a stored blob and return (sha256, size), streaming."""
    digest = hashlib.sha256()
    size = 0
    for chunk in read_chunks(name):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def read_chunks(name: str, storage: Storage | None = None) -> Iterator[bytes]:
    """A stored file's bytes, in chunks as they arrive; FileNotFoundError if it is absent.

    django-storages' S3File downloads the whole object to a temporary file before its first
    byte is read (a 2 GB original: 2 GB of disk and minutes before a fixity check or an
    export starts). From S3 this reads the object's body as the store sends it instead."""
    storage = storage or archive_storage()
    bucket = getattr(storage, "bucket", None)
    if bucket is None or not hasattr(storage, "_normalize_name"):
        with storage.open(name, "rb") as fh:
            yield from file_chunks(fh)
        return
    from botocore.exceptions import ClientError
    from storages.utils import clean_name

    key = storage._normalize_name(clean_name(name))  # type: ignore[attr-defined]
    try:
        body = bucket.Object(key).get()["Body"]
    except ClientError as err:
        if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            raise FileNotFoundError(f"The stored file {name} does not exist.") from None
        raise OSError(f"The store did not send {name}: {err}") from err
    try:
        yield from body.iter_chunks(CHUNK_SIZE)
    finally:
        body.close()
