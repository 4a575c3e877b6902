"""Helpers several test modules share: running work in threads at once, taking apart and
rebuilding BagIt packages, searching, downloading exports and checking what they hold."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from django.db import connection, connections
from jsonschema import Draft7Validator
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from taggit.models import Tag

from annotations.models import Annotation, Citation, CitationSpec, Comment
from archive.blobstore import archive_storage
from archive.models import Collection, FixityCheck, Source
from exports.importer import import_package
from exports.package import open_package
from search.index import index_annotation
from tests.conftest import archive_text

if TYPE_CHECKING:
    from django.test import Client
    from django.test.client import _MonkeyPatchedWSGIResponse


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


def rebuild(
    data: bytes, changes: Mapping[str, bytes | None], *, fix_manifests: bool = True
) -> bytes:
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
    Comment.objects.all().delete()  # notes on sources hold on to their sources
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


# --- Searching: two sources' texts, annotations indexed as the API indexes them -----------

ARCHIVE_TEXT = (
    "On Resistance in the Archive\n\n"
    "The archive keeps the records of colonial administration. Résistance appears in the"
    " margins, where clerks wrote what they were told to leave out.\n\n"
    "Workers organised a strike in 1911; the strike spread along the railway line.\n\n"
    "Nothing in this paragraph concerns the weather."
)
RIVER_TEXT = (
    "Notes on the River\n\n"
    "The river floods each spring. Ferrymen kept ledgers of crossings and tolls.\n\n"
    "A resistant strain of wheat was planted along the banks."
)


def make_source(text, user, collection=None, **metadata):
    return archive_text(text, user=user, collection=collection, metadata=metadata)


def annotate(source, author, needle, *, note="", tags=(), visibility="collection", collection=None):
    """An annotation made as the annotation API makes one, then indexed."""
    start = source.text.index(needle)
    end = start + len(needle)
    anchor = Annotation.anchor(source.text, start, end, needle)
    annotation = Annotation.objects.create(
        source=source,
        author=author,
        collection=collection or source.collections.first(),
        start=start,
        end=end,
        note=note,
        visibility=visibility,
        **anchor,
    )
    annotation.tags.set(list(tags))
    index_annotation(annotation)
    return annotation


def search(client, **params):
    response = client.get("/search/", params)
    assert response.status_code == 200
    return response


def found(client, **params):
    """(titles of the sources found, quotes of the passages found) for a search."""
    results = search(client, **params).context["results"]
    assert results is not None, "the search did not run"
    titles = [r.source.title for r in results.sources] if results.sources is not None else None
    return titles, [r.annotation.exact for r in results.passages]


# --- Exports and citations --------------------------------------------------------------


def export_url(fmt: str, query: str = "") -> str:
    """The field-notes collection's export in ``fmt``."""
    return f"/collections/field-notes/export/{fmt}" + (f"?{query}" if query else "")


def download(
    client: Client, fmt: str, query: str = "", **headers: Any
) -> tuple[_MonkeyPatchedWSGIResponse, bytes]:
    response = client.get(export_url(fmt, query), **headers)
    return response, response.getvalue()  # joins a streamed body too


def archive_location() -> str:
    """The directory of the archive storage, which the tests run on the file system."""
    storage = archive_storage()
    assert isinstance(storage, FileSystemStorage)
    return os.fspath(storage.location)  # a str; the stubs also allow a path object


def only_sheet(xlsx: bytes) -> Worksheet:
    """The active (in our exports, the only) worksheet of a workbook."""
    sheet = load_workbook(io.BytesIO(xlsx)).active
    assert isinstance(sheet, Worksheet)
    return sheet


CSL_SCHEMA = json.loads((Path(__file__).parent / "csl-data.json").read_text())


def assert_csl_json(items: list[dict]) -> None:
    errors = sorted(Draft7Validator(CSL_SCHEMA).iter_errors(items), key=str)
    assert not errors, [e.message for e in errors]


def cite_everything(owner, annotated):
    """olive's collection annotation cites a passage of beta, maya's annotation, a DOI, and
    a source outside the collection (so outside the package)."""
    elsewhere = Collection.objects.create(slug="elsewhere", title="Elsewhere", owner=owner)
    outside = archive_text("A source kept in another collection.", owner, elsewhere)
    beta = annotated["beta"]
    start = beta.text.index("the harbour froze")
    citing = annotated["a"]["olive-collection"]
    specs: list[CitationSpec] = [
        {"source": str(beta.uuid), "start": start, "end": start + 17, "locator": "4"},
        {"annotation": str(annotated["a"]["maya-collection"].uuid), "comment": "same winter"},
        {
            "doi": "10.1234/abc.def",
            "title": "Winters of the North",
            "creators": ["Jansen, Pieter"],
            "date_published": "1999",
            "reference_type": "article-journal",
            "publisher": "Journal of Cold",
        },
        {"source": str(outside.uuid)},
    ]
    citing.replace_citations(Citation.build_all(specs, user=owner, citing=citing))
    return citing, outside


def command_env() -> dict[str, str]:
    """The environment of a `manage.py` process using this test's database."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{db['NAME']}"
    else:
        url = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",  # not tests.settings: a data dir of its own
        "DATABASE_URL": url,
        "SCHOLION_DATA_DIR": str(settings.DATA_DIR),
    }
