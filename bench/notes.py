"""Notes benchmark: a page of pathological notes, rendered when written, not when read.

    DEBUG=1 .venv/bin/python bench/notes.py [--notes 50] [--page-requests 10]

A collaborator writes ``--notes`` notes of 100,000 characters each, of the four kinds that
take Markdown longest to parse (``[`` alone, ``[@a `` repeated, ``*a``, ``|a`` lines), on one
source. Prints the time to write one (it is parsed then, once), the reading page's server
time made anew for another reader (no Markdown parsed: the stored HTML, citations filled in),
and what parsing those notes at read time, as pages did before, costs per page. Sets Django up
as bench/reader.py does. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import setup_django, teardown_django  # noqa: E402

PATHOLOGICAL = [
    "[" * 100_000,
    "[@a " * 25_000,
    "*a" * 50_000,
    "|a\n" * 30_000,
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=50)
    parser.add_argument("--page-requests", type=int, default=10)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="scholion-bench-notes-"))
    original = setup_django(data_dir, 50 * 1024 * 1024)
    try:
        run(args)
    finally:
        teardown_django(original)
        shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import caches
    from django.db import connection
    from django.test import Client

    from annotations.markdown import render_markdown, render_note
    from annotations.models import Annotation
    from archive.ingest import archive_chunks
    from archive.models import Collection, Membership

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    User = get_user_model()
    reader, writer = (User.objects.create_user(name, password="x") for name in ("reader", "writer"))
    collection = Collection.objects.create(slug="bench", title="Bench", owner=reader)
    Membership.objects.create(collection=collection, user=writer, role="annotator")
    text = " ".join(f"word{i}" for i in range(5_000))
    source = archive_chunks(iter([text.encode()]), user=reader, collection=collection).source

    writes = []
    for i in range(args.notes):
        note = PATHOLOGICAL[i % len(PATHOLOGICAL)]
        render_note.cache_clear()  # each write parses, as a new note would
        t0 = time.perf_counter()
        Annotation.create_anchored(
            author=writer, source=source, start=i * 10, end=i * 10 + 5, note=note
        )
        writes.append(time.perf_counter() - t0)

    client = Client()
    client.force_login(reader)

    def read_anew() -> float:
        caches["reading"].clear()
        t0 = time.perf_counter()
        response = client.get(f"/sources/{source.uuid}/")
        assert response.status_code == 200
        return time.perf_counter() - t0

    read_anew()  # warm templates and the URL resolver
    reads = [read_anew() for _ in range(args.page_requests)]

    render_note.cache_clear()
    notes = list(Annotation.objects.filter(source=source).values_list("note", flat=True))
    t0 = time.perf_counter()
    for note in notes:
        render_note.cache_clear()
        render_markdown(note, {})
    parsing = time.perf_counter() - t0

    print(
        f"Scholion notes benchmark ({connection.vendor}): {args.notes} notes of 100,000"
        " characters by one collaborator on one source.\n"
        f"  writing one note (parsed once)         p50 {statistics.median(writes) * 1000:8.0f} ms"
        f"   max {max(writes) * 1000:8.0f} ms\n"
        f"  reading page made anew (stored HTML)   p50 {statistics.median(reads) * 1000:8.0f} ms"
        f"   max {max(reads) * 1000:8.0f} ms\n"
        f"  parsing them at read time, as before       {parsing * 1000:8.0f} ms per page"
    )


if __name__ == "__main__":
    main()
