"""Reader benchmark: the reading page and the annotation API under a realistic load.

    DEBUG=1 .venv/bin/python bench/reader.py [--words 50000] [--annotations 2000]

Builds a 50,000-word source with 2,000 annotations by 5 authors using 50 tags, then prints the
reading page's server time (p50/p95) and query count, annotation create time through the API,
and annotation list time. Uses a throwaway database (see bench/ingest.py). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import paragraph, setup_django, teardown_django  # noqa: E402


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000
    return f"p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   (n={len(ordered)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=50_000)
    parser.add_argument("--annotations", type=int, default=2_000)
    parser.add_argument("--page-requests", type=int, default=30)
    parser.add_argument("--creates", type=int, default=200)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="scholion-bench-reader-"))
    original = setup_django(data_dir, 50 * 1024 * 1024)
    try:
        run(args)
    finally:
        teardown_django(original)


def run(args) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

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
    words: list[str] = []
    paragraphs = []
    while len(words) < args.words:
        para = paragraph(rng)
        paragraphs.append(para)
        words.extend(para.split())
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
            note=f"Note {i} with **markdown**." if i % 3 else "",
            tags=rng.sample(tags, rng.randint(0, 3)),
        )
    print(
        f"Built a {len(text.split()):,}-word source ({len(text):,} code points) with "
        f"{args.annotations:,} annotations by 5 authors, 50 tags"
        f" in {time.perf_counter() - t0:.1f} s"
        f" on {connection.vendor}."
    )

    client = Client()
    client.force_login(authors[1])
    url = f"/sources/{source.uuid}/"
    client.get(url)  # warm caches
    samples = []
    for _ in range(args.page_requests):
        t = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - t)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    print(
        f"Reading page (server time)      {percentiles(samples)}   "
        f"{len(queries.captured_queries)} queries, {len(response.content) / 1024:.0f} KB"
    )

    creates = []
    for _ in range(args.creates):
        start = rng.randrange(0, len(text) - 100)
        doc = {
            "type": "Annotation",
            "target": {
                "source": url,
                "selector": [{"type": "TextPositionSelector", "start": start, "end": start + 40}],
            },
            "body": [
                {"type": "TextualBody", "value": rng.choice(tags), "purpose": "tagging"},
                {"type": "TextualBody", "value": "A note.", "purpose": "commenting"},
            ],
        }
        t = time.perf_counter()
        response = client.post(
            "/api/annotations/", json.dumps(doc), content_type="application/json"
        )
        creates.append(time.perf_counter() - t)
        assert response.status_code == 201, response.content
    print(f"Annotation create (API)         {percentiles(creates)}")

    lists = []
    for _ in range(args.page_requests):
        t = time.perf_counter()
        response = client.get("/api/annotations/", {"source": str(source.uuid)})
        lists.append(time.perf_counter() - t)
        assert response.status_code == 200
    print(
        f"Annotation list, first page     {percentiles(lists)}   "
        f"({json.loads(response.content)['total']:,} annotations, 100 a page)"
    )
    reset_queries()


if __name__ == "__main__":
    main()
