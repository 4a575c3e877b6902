"""Helpers several test modules share: running work in threads at once, and taking apart
and rebuilding BagIt packages."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import threading
import zipfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connections
from taggit.models import Tag

from annotations.models import Annotation
from archive.blobstore import archive_storage
from archive.models import Collection, FixityCheck, Source
from exports.importer import import_package
from exports.package import open_package


def run_at_once(work, count: int = 8) -> tuple[list, list[BaseException]]:
    """Run ``work(i)`` in ``count`` threads released together; return results and errors."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rebuild(data: bytes, changes: dict[str, bytes | None], *, fix_manifests: bool = True) -> bytes:
    """The package with some files replaced (None removes one), its manifests recomputed
    unless ``fix_manifests`` is off (then the checksums no longer match)."""
    files = members(data)
    for name, content in changes.items():
        if content is None:
            files.pop(name, None)
        else:
            files[name] = content
    if fix_manifests:
        payload = {n: c for n, c in files.items() if n.startswith("data/")}
        files["manifest-sha256.txt"] = "".join(
            f"{hashlib.sha256(c).hexdigest()}  {n}\n" for n, c in sorted(payload.items())
        ).encode()
        oxum = f"{sum(map(len, payload.values()))}.{len(payload)}"
        files["bag-info.txt"] = re.sub(
            rb"Payload-Oxum: \S+", f"Payload-Oxum: {oxum}".encode(), files["bag-info.txt"]
        )
        tags = {n: c for n, c in files.items() if n not in payload and n.count("/") == 0}
        tags.pop("tagmanifest-sha256.txt", None)
        files["tagmanifest-sha256.txt"] = "".join(
            f"{hashlib.sha256(c).hexdigest()}  {n}\n" for n, c in sorted(tags.items())
        ).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return out.getvalue()


def import_bytes(data: bytes, importer=None):
    with open_package(io.BytesIO(data)) as package:
        return import_package(package, importer=importer)


def export_bag(path: Path, user: str = "olive") -> bytes:
    call_command(
        "export_collection", "field-notes", "--format=bagit", "-o", str(path), f"--user={user}"
    )
    return path.read_bytes()


def blob_files() -> set[str]:
    root = Path(archive_storage().path(""))
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def empty_everything() -> None:
    """An empty archive and an empty blob store, as on a fresh installation.

    (Not ``flush``: PostgreSQL refuses to TRUNCATE, inside the test's transaction, tables
    whose search-index triggers have pending events.)
    """
    Annotation.objects.all().delete()  # with their tags, revisions and search entries
    Collection.objects.all().delete()
    Source.objects.all().delete()  # with fixity checks and search segments
    Tag.objects.all().delete()
    get_user_model().objects.all().delete()
    shutil.rmtree(archive_storage().path(""), ignore_errors=True)


def counts() -> tuple[int, int, int, int, int]:
    return (
        Collection.objects.count(),
        Source.objects.count(),
        Annotation.objects.count(),
        get_user_model().objects.count(),
        FixityCheck.objects.count(),
    )
