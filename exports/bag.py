"""A collection as a BagIt package (RFC 8493) in a zip, written as a stream.

The zip is written to a sink that cannot seek, so zipfile puts each member's sizes and CRC in
a data descriptor after its bytes, and every compressed piece can be sent on at once: the
originals are read from storage in chunks and hashed as they are written, never held whole.

Layout (everything under data/ is listed in manifest-sha256.txt):

    bagit.txt, bag-info.txt, manifest-sha256.txt, tagmanifest-sha256.txt
    data/scholion.json            what an import needs: collection, people, sources, paths
    data/originals/<uuid>-<name>  the archived bytes, exactly
    data/provenance/<uuid>.json   who archived it, when and how; the fixity history
    data/annotations.jsonld, data/annotations.csv, data/report.md
    data/sources.bib, data/sources.json (CSL-JSON)
    data/project.qdpx             the same as a REFI-QDA project, for QDA tools (undated)
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Generator, Iterable, Iterator
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from archive.blobstore import read_chunks
from archive.models import FixityCheck, Source
from exports import formats
from exports.scope import ExportScope

PACKAGE_FORMAT = "scholion-collection"
PACKAGE_VERSION = 1
MANIFEST_PATH = "data/scholion.json"
ANNOTATIONS_PATH = "data/annotations.jsonld"
SOFTWARE = "Scholion 0.1.0 (exports.bag)"
SEND_BYTES = 256 * 1024
# What the archive recorded about the bytes and how they came in: every immutable column but
# the text layer (derived, and rebuilt on import) and the storage name; then fixity.
PROVENANCE_FIELDS = (
    *(f for f in Source.IMMUTABLE_FIELDS if f not in ("blob_name", "text", "blocks", "divisions")),
    "fixity_status",
    "fixity_checked_at",
)


class ExportError(Exception):
    """The export cannot be completed (an original is missing or damaged)."""


class _Sink:
    """A write-only, unseekable file: zipfile writes into it, the generator drains it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        # Part of the file protocol ZipFile takes; it never closes a file it was handed.
        pass

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts, self.size = [], 0
        return data


def safe_name(name: str) -> str:
    """A file name fit for any file system and for a manifest line."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned[:80] or "original"


def original_path(source: Source) -> str:
    return f"data/originals/{source.uuid}-{safe_name(source.original_filename)}"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _encoded(chunks: Iterable[str]) -> Iterator[bytes]:
    for chunk in formats.buffered(chunks):
        yield chunk.encode("utf-8")


def _json_bytes(value: object) -> Iterator[bytes]:
    yield (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


class _BagWriter:
    def __init__(self) -> None:
        self.sink = _Sink()
        self.zip = zipfile.ZipFile(self.sink, "w", compression=zipfile.ZIP_DEFLATED)
        self.now = timezone.now()
        self.payload: list[tuple[str, str, int]] = []  # (path, sha256, bytes)
        self.tags: list[tuple[str, str, int]] = []

    def member(
        self, path: str, chunks: Iterable[bytes], size: int | None = None, *, tag: bool = False
    ) -> Generator[bytes, None, str]:
        """Write one member, yielding zip bytes as they pile up; return its SHA-256."""
        info = zipfile.ZipInfo(path, date_time=self.now.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        if size is not None:
            info.file_size = size  # lets zipfile choose zip64 only when needed
        digest, written = hashlib.sha256(), 0
        with self.zip.open(info, "w", force_zip64=size is None) as out:
            for chunk in chunks:
                digest.update(chunk)
                written += len(chunk)
                out.write(chunk)
                if self.sink.size >= SEND_BYTES:
                    yield self.sink.drain()
        if self.sink.size:
            yield self.sink.drain()
        (self.tags if tag else self.payload).append((path, digest.hexdigest(), written))
        return digest.hexdigest()

    def close(self) -> bytes:
        self.zip.close()
        return self.sink.drain()


def _original_chunks(source: Source) -> Iterator[bytes]:
    return read_chunks(source.blob_name)


def _manifest(entries: list[tuple[str, str, int]]) -> Iterator[bytes]:
    # RFC 8493 2.1.3: a line is the checksum, whitespace, the path (CR, LF and % encoded).
    lines = []
    for path, digest, _ in sorted(entries):
        encoded = path.replace("%", "%25").replace("\n", "%0A").replace("\r", "%0D")
        lines.append(f"{digest}  {encoded}\n")
    yield "".join(lines).encode("utf-8")


def _one_line(value: str) -> str:
    return " ".join(value.split())


def bag_chunks(scope: ExportScope) -> Iterator[bytes]:
    """The zipped bag as a stream of bytes."""
    from exports.qdpx import qdpx_chunks  # here: it uses this module's _Sink

    bag = _BagWriter()
    sources = scope.source_list()
    details = {
        row["uuid"]: row
        for row in Source.objects.filter(pk__in=[s.pk for s in sources]).values(
            *PROVENANCE_FIELDS, "archived_by__username"
        )
    }
    checks: dict[int, list[dict]] = {}
    for check in FixityCheck.objects.filter(source__in=[s.pk for s in sources]).order_by(
        "source_id", "checked_at", "pk"
    ):
        checks.setdefault(check.source_id, []).append(
            {
                "checked_at": _iso(check.checked_at),
                "ok": check.ok,
                "observed_sha256": check.observed_sha256,
                "error": check.error,
            }
        )

    entries = []
    for source in sources:
        path = original_path(source)
        digest = yield from bag.member(path, _original_chunks(source), size=source.size)
        if digest != source.sha256:
            raise ExportError(
                f"The stored bytes of “{source.title}” ({source.uuid}) no longer match their"
                f" SHA-256 ({source.sha256}): run verify_fixity; nothing was exported."
            )
        row = details[source.uuid]
        provenance = {
            **{k: row[k] for k in PROVENANCE_FIELDS},
            "uuid": str(row["uuid"]),
            "archived_at": _iso(row["archived_at"]),
            "fixity_checked_at": _iso(row["fixity_checked_at"]),
            "archived_by": row["archived_by__username"],
            "fixity_checks": checks.get(source.pk, []),
        }
        provenance_path = f"data/provenance/{source.uuid}.json"
        yield from bag.member(provenance_path, _json_bytes(provenance))
        entries.append(
            {
                "uuid": str(source.uuid),
                "sha256": source.sha256,
                "size": source.size,
                "original": path,
                "provenance": provenance_path,
                "metadata": {f: getattr(source, f) for f in Source.METADATA_FIELDS},
            }
        )

    yield from bag.member(ANNOTATIONS_PATH, _encoded(formats.jsonld(scope)))
    yield from bag.member("data/annotations.csv", _encoded(formats.csv_export(scope)))
    yield from bag.member("data/report.md", _encoded(formats.markdown(scope)))
    yield from bag.member("data/sources.bib", _encoded(formats.bibtex(scope)))
    yield from bag.member("data/sources.json", _encoded(formats.csl_json(scope)))
    yield from bag.member("data/project.qdpx", qdpx_chunks(scope, dated=False))

    collection = scope.collection
    usernames = {u.get_username() for u in scope.authors().values()}
    usernames.add(collection.owner.get_username())
    usernames.update(
        r["archived_by__username"] for r in details.values() if r["archived_by__username"]
    )
    people = get_user_model().objects.filter(username__in=usernames).order_by("username")
    manifest = {
        "format": PACKAGE_FORMAT,
        "version": PACKAGE_VERSION,
        "exported_at": _iso(bag.now),
        "exported_by": scope.user.get_username() if scope.user.is_authenticated else None,
        "base_url": scope.base_url,
        "filters": scope.query,
        "collection": {
            "slug": collection.slug,
            "title": collection.title,
            "description": collection.description,
            "is_public": collection.is_public,
            "owner": collection.owner.get_username(),
            "created_at": _iso(collection.created_at),
        },
        "people": [
            {"username": p.get_username(), "first_name": p.first_name, "last_name": p.last_name}
            for p in people
        ],
        "sources": entries,
        "annotations": ANNOTATIONS_PATH,
    }
    yield from bag.member(MANIFEST_PATH, _json_bytes(manifest))

    octets = sum(size for _, _, size in bag.payload)
    bag_info = (
        f"Source-Organization: {_one_line(settings.SCHOLION_ORGANIZATION)}\n"
        f"Bagging-Date: {bag.now.date().isoformat()}\n"
        f"Payload-Oxum: {octets}.{len(bag.payload)}\n"
        f"External-Identifier: {scope.collection_iri()}\n"
        f"External-Description: {_one_line(collection.title)}: {scope.count()} annotations"
        f" on {len(sources)} sources, exported from Scholion with their original bytes.\n"
        f"Bag-Software-Agent: {SOFTWARE}\n"
    )
    yield from bag.member(
        "bagit.txt", iter([b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"]), tag=True
    )
    yield from bag.member("bag-info.txt", iter([bag_info.encode("utf-8")]), tag=True)
    yield from bag.member("manifest-sha256.txt", _manifest(bag.payload), tag=True)
    tag_entries = list(bag.tags)
    yield from bag.member("tagmanifest-sha256.txt", _manifest(tag_entries), tag=True)
    yield bag.close()
