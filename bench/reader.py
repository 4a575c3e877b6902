"""Reader benchmark: the reading page and the annotation API under a realistic load.

    DEBUG=1 .venv/bin/python bench/reader.py [--words 50000] [--annotations 2000] [--profile]

Builds a 50,000-word source with 2,000 annotations by 5 authors using 50 tags, then prints a
table: the reading page's server time (p50/p95, Django test Client) and query count, made and
served from its cache,
annotation create time through the API, and the time of the annotation list's first page.
Sets Django up itself with a throwaway database: SQLite in a temporary data directory, or,
when DATABASE_URL is set, a fresh PostgreSQL database beside the one it names, created,
migrated and dropped here (see bench/ingest.py). Asserts nothing about time.

Aims (SQLite): reading page p50 under 100 ms, create p50 under 10 ms.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import paragraph, setup_django, teardown_django  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=50_000)
    parser.add_argument("--annotations", type=int, default=2_000)
    parser.add_argument("--page-requests", type=int, default=30)
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument(
        "--profile", action="store_true", help="also print where the reading page's time goes"
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="scholion-bench-reader-"))
    original = setup_django(data_dir, 50 * 1024 * 1024)
    try:
        run(args)
    finally:
        teardown_django(original)
        shutil.rmtree(data_dir, ignore_errors=True)


class Row:
    def __init__(self, label: str, samples: list[float], queries: int, size: int = 0) -> None:
        ordered = sorted(samples)
        self.label = label
        self.n = len(ordered)
        self.p50 = statistics.median(ordered) * 1000
        self.p95 = ordered[min(len(ordered) - 1, round(len(ordered) * 0.95) - 1)] * 1000
        self.queries = queries
        self.size = size

    def line(self) -> str:
        size = f"{self.size / 1024:8.0f} KB" if self.size else " " * 11
        return (
            f"{self.label:<34}{self.n:>5}{self.p50:>10.1f}{self.p95:>10.1f}{self.queries:>9}{size}"
        )


Result = TypeVar("Result")


def timed(request: Callable[[], Result], times: int) -> tuple[list[float], Result]:
    """The seconds each of ``times`` (at least one) calls took, and what the last returned."""
    samples = []
    for _ in range(times):
        t0 = time.perf_counter()
        result = request()
        samples.append(time.perf_counter() - t0)
    return samples, result


def count_queries(request: Callable[[], object]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        request()
    return len(queries.captured_queries)


def run(args: argparse.Namespace) -> None:
    import django
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from annotations.models import Annotation
    from archive.ingest import archive_chunks
    from archive.models import Collection, Membership

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    rng = random.Random(4)
    User = get_user_model()
    authors = [User.objects.create_user(f"author{i}", password="x") for i in range(5)]
    collection = Collection.objects.create(slug="bench", title="Bench", owner=authors[0])
    for user in authors:
        Membership.objects.create(collection=collection, user=user, role="annotator")
    words = 0
    paragraphs = []
    while words < args.words:
        paragraphs.append(paragraph(rng))
        words += len(paragraphs[-1].split())
    source = archive_chunks(
        iter(["\n\n".join(paragraphs).encode()]), user=authors[0], collection=collection
    ).source
    text = source.text
    tags = [f"code-{i:02d}" for i in range(50)]
    t0 = time.perf_counter()
    for i in range(args.annotations):
        start = rng.randrange(0, len(text) - 400)
        Annotation.create_anchored(
            author=authors[i % 5],
            source=source,
            start=start,
            end=start + rng.randint(5, 300),
            note=f"Note {i} with **markdown** and a [link](https://example.org/{i})."
            if i % 3
            else "",
            tags=rng.sample(tags, rng.randint(0, 3)),
        )
    built = time.perf_counter() - t0
    print(
        f"Scholion reader benchmark: Python {sys.version.split()[0]}, Django "
        f"{django.get_version()}, {connection.vendor}\n"
        f"A {len(text.split()):,}-word source ({len(text):,} code points) with "
        f"{args.annotations:,} annotations by 5 authors using 50 tags (built in {built:.1f} s).\n"
    )

    client = Client()
    client.force_login(authors[1])
    url = f"/sources/{source.uuid}/"

    def read() -> bytes:
        response = client.get(url)
        assert response.status_code == 200
        return response.content

    from django.core.cache import caches

    def read_anew() -> bytes:
        """The page as the first reader after a write gets it: made, not from the cache."""
        caches["reading"].clear()
        return read()

    read_anew()  # warm caches (templates, URL resolver, Markdown renderer)
    samples, content = timed(read_anew, args.page_requests)
    rows = [Row("reading page, made", samples, count_queries(read_anew), len(content))]
    read()
    samples, content = timed(read, args.page_requests)
    rows.append(Row("reading page, from the cache", samples, count_queries(read), len(content)))

    def create() -> None:
        start = rng.randrange(0, len(text) - 100)
        doc = {
            "@context": "http://www.w3.org/ns/anno.jsonld",
            "type": "Annotation",
            "target": {
                "source": f"http://testserver{url}",
                "selector": [{"type": "TextPositionSelector", "start": start, "end": start + 40}],
            },
            "body": [
                {"type": "TextualBody", "value": "A note.", "purpose": "commenting"},
                {"type": "TextualBody", "value": rng.choice(tags), "purpose": "tagging"},
            ],
        }
        response = client.post(
            "/api/annotations/", json.dumps(doc), content_type="application/json"
        )
        assert response.status_code == 201, response.content

    samples, _ = timed(create, args.creates)
    rows.append(Row("annotation create (API POST)", samples, count_queries(create)))

    def first_page() -> bytes:
        response = client.get("/api/annotations/", {"source": str(source.uuid)})
        assert response.status_code == 200
        return response.content

    samples, content = timed(first_page, args.page_requests)
    total = json.loads(content)["total"]
    rows.append(
        Row(
            f"annotation list, page 1 of {total:,}",
            samples,
            count_queries(first_page),
            len(content),
        )
    )

    print(f"{'':<34}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'queries':>9}{'size':>11}")
    for row in rows:
        print(row.line())
    if connection.vendor == "sqlite":
        print(
            f"\nAims on SQLite: reading page p50 < 100 ms ({rows[0].p50:.0f}), "
            f"create p50 < 10 ms ({rows[2].p50:.1f})."
        )

    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(read_anew)
        print("\nWhere one reading page's time goes (made, not from the cache):")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
