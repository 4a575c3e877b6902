"""Requests at their limits: how long the slowest input a person can send takes to answer.

    DEBUG=1 .venv/bin/python bench/request_limits.py [--only NAME ...]

Each case is one request through the Django test Client (no gunicorn) against a throwaway
SQLite database, at the limit its view enforces, with the pathological input for that limit:
an upload of SCHOLION_MAX_TEXT_BYTES of HTML made of a million tiny elements, list items or
table cells, or a plain text of millions of one-letter paragraphs; the reading page of a text
of SCHOLION_MAX_TEXT_BLOCKS one-letter paragraphs (archived in-process, as the worker would);
a codebook rename of ``--passages`` passages; a Hypothesis file of
SCHOLION_HYPOTHESIS_MAX_BYTES checked; a search of MAX_QUERY_LENGTH characters. Prints the
seconds and what the request answered (a source, or the upload job the worker reads);
asserts nothing. Compare with GUNICORN_TIMEOUT (30 s); bench/NOTES.md, "Issue 32: requests
within the timeout", has the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import setup_django, teardown_django  # noqa: E402

MIB = 1024 * 1024


def filled(unit: str, size: int, head: str = "<html><body>", tail: str = "</body></html>"):
    return (head + unit * ((size - len(head) - len(tail)) // len(unit)) + tail).encode()


def uploads(limit: int) -> dict[str, tuple[str, bytes]]:
    return {
        "html-tiny-elements": ("page.html", filled("<b>x</b>", limit)),
        "html-list-items": ("page.html", filled("<ul><li>a<li>b</ul>", limit)),
        "html-table": (
            "page.html",
            filled("<tr><td>a</td><td>b</td></tr>", limit, "<html><body><table>", "</table>"),
        ),
        "text-one-letter-paragraphs": ("notes.txt", b"a\n\n" * (limit // 3)),
    }


def hypothesis_file(limit: int) -> bytes:
    row = {
        "id": "",
        "created": "2024-01-01T00:00:00.000000+00:00",
        "updated": "2024-01-01T00:00:00.000000+00:00",
        "user": "acct:someone@hypothes.is",
        "uri": "https://example.org/page",
        "text": "A note.",
        "tags": ["one", "two"],
        "target": [
            {
                "source": "https://example.org/page",
                "selector": [{"type": "TextQuoteSelector", "exact": "words", "prefix": "some "}],
            }
        ],
        "permissions": {"read": ["group:__world__"]},
        "group": "__world__",
    }
    rows: list[dict] = []
    size = 0
    while size < limit - 1000:
        rows.append({**row, "id": f"id{len(rows):012d}"})
        size += len(json.dumps(rows[-1])) + 2
    return json.dumps({"total": len(rows), "rows": rows}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--passages", type=int, default=2000, help="for codebook-rename")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="scholion-bench-limits-"))
    original = setup_django(data_dir, 50 * MIB)
    try:
        run(set(args.only), args.passages)
    finally:
        teardown_django(original)
        shutil.rmtree(data_dir, ignore_errors=True)


def run(only: set[str], passages: int) -> None:
    import os

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from archive.models import Collection, Membership
    from exports.hypothesis import HypothesisError, max_bytes, read_file
    from search.query.parsing import MAX_QUERY_LENGTH

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user = get_user_model().objects.create_user("reader", password="x")
    collection = Collection.objects.create(slug="limits", title="Limits", owner=user)
    Membership.objects.create(collection=collection, user=user, role="owner")
    client = Client()
    client.force_login(user)
    print(
        f"load average {os.getloadavg()[0]:.1f}; read budget"
        f" {settings.SCHOLION_READ_REQUEST_SECONDS} s; text limit"
        f" {settings.SCHOLION_MAX_TEXT_BYTES / MIB:.0f} MiB"
    )

    def report(name: str, seconds: float, outcome: str) -> None:
        print(f"{name:<32}{seconds:>8.1f} s  {outcome}", flush=True)

    for name, (filename, data) in uploads(settings.SCHOLION_MAX_TEXT_BYTES).items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        response = client.post(
            "/sources/new/", {"file": SimpleUploadedFile(filename, data), "whole_page": "on"}
        )
        seconds = time.perf_counter() - start
        where = response.get("Location", f"status {response.status_code}")
        report(name, seconds, f"{len(data) / MIB:.1f} MiB -> {where}")

    if not only or "reading-page-many-blocks" in only:
        from archive.ingest import archive_chunks

        # As many paragraphs as a text layer may have (a longer text gets none).
        data = b"a\n\n" * settings.SCHOLION_MAX_TEXT_BLOCKS
        source = archive_chunks(iter([data]), user=user, collection=collection).source
        for made in ("made", "from the cache"):
            start = time.perf_counter()
            response = client.get(f"/sources/{source.uuid}/")
            report(
                f"reading-page-many-blocks, {made}",
                time.perf_counter() - start,
                f"{len(source.blocks):,} paragraphs, {len(response.content) / MIB:.0f} MiB",
            )

    if not only or "codebook-rename" in only:
        from annotations.models import Annotation, Code
        from archive.ingest import archive_chunks

        text = "\n\n".join(f"Paragraph {i} of the interview." for i in range(passages))
        source = archive_chunks(
            iter([text.encode()]), user=user, collection=collection, filename="interview.txt"
        ).source
        Code.add(collection, "harbour", actor=user)
        for i in range(passages):
            start = source.text.index(f"Paragraph {i} ")
            Annotation.create_anchored(
                author=user, source=source, start=start, end=start + 9, tags=["harbour"]
            )
        for name in ("port", "haven"):
            slug = "harbour" if name == "port" else "port"
            start = time.perf_counter()
            response = client.post(f"/collections/limits/codebook/{slug}/rename", {"name": name})
            where = response.get("Location", f"status {response.status_code}")
            report(
                f"codebook-rename to {name}",
                time.perf_counter() - start,
                f"{passages:,} passages -> {where}",
            )
            work_on_the_worker(report, name)

    if not only or "hypothesis-check" in only:
        data = hypothesis_file(max_bytes())
        start = time.perf_counter()
        try:
            outcome = f"{len(read_file(data).annotations):,} annotations"
        except HypothesisError as exc:
            outcome = f"refused: {exc}"
        report(
            "hypothesis-check", time.perf_counter() - start, f"{len(data) / MIB:.1f} MiB, {outcome}"
        )

    if not only or "search-long-query" in only:
        query = " ".join(f"w{i}*" for i in range(MAX_QUERY_LENGTH // 4))[:MAX_QUERY_LENGTH]
        start = time.perf_counter()
        response = client.get("/search/", {"q": query})
        report(
            "search-long-query",
            time.perf_counter() - start,
            f"{len(query)} characters, status {response.status_code}",
        )


def work_on_the_worker(report, name: str) -> None:
    """A change queued for the worker (CodebookJob), made here as the worker makes it: its
    time in all, and its longest batch (how long one transaction holds the database)."""
    from annotations.models import CodebookJob

    job = CodebookJob.objects.filter(state=CodebookJob.State.QUEUED).first()
    if job is None or not job.claim():
        return
    batches: list[float] = []
    next_batch = job._next_batch

    def timed() -> bool:
        start = time.perf_counter()
        more = next_batch()
        batches.append(time.perf_counter() - start)
        return more

    job._next_batch = timed
    start = time.perf_counter()
    job.run()
    report(
        f"  on the worker, to {name}",
        time.perf_counter() - start,
        f"{job.state}, {len(batches) - 1} batches, the longest {max(batches):.2f} s",
    )


if __name__ == "__main__":
    main()
