"""Helpers several test modules share: running work in threads at once, and taking apart
and rebuilding BagIt packages."""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile

from django.db import connections

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
