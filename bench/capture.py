"""Capture benchmark: web pages captured per minute from a local server, one after another as
one background worker runs them, with the time each step takes and the peak memory.

    DEBUG=1 .venv/bin/python bench/capture.py [--pages 20] [--kb 40] [--browser /usr/bin/chromium]

Each page is a distinct article of about --kb kilobytes (with, for the browser, a stylesheet
and two images). A capture fetches it through the guarded fetcher, writes its WARC, packages
and checks the WACZ (py-wacz, in a child process), and archives the page as a source with its
text layer and search index. With --browser, each capture also loads the page in that Chromium
and keeps a screenshot (when the browser capture is built in). Sets Django up with a throwaway
data directory and database as bench/ingest.py does. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import paragraph, setup_django, teardown_django, word  # noqa: E402

# A small PNG (one pixel) for the pages' images.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a1e1"
    "b2e10000000049454e44ae426082"
)


def article(i: int, kb: int, rng: random.Random) -> bytes:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Report {i}: {word(rng)} {word(rng)} - Bench Wire</title>",
        "<link rel='stylesheet' href='/style.css'></head><body>",
        "<nav><a href='/'>Home</a> <a href='/world'>World</a></nav><article>",
        f"<h1>Report {i}</h1><p class='byline'>By {word(rng).title()} {word(rng).title()}</p>",
        "<img src='/a.png' alt=''>",
    ]
    while sum(map(len, parts)) < kb * 1024:
        parts.append(f"<p>{paragraph(rng)}</p>")
    parts.append("<img src='/b.png' alt=''></article><footer>© Bench Wire</footer></body></html>")
    return "".join(parts).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20, help="pages to capture (default 20)")
    parser.add_argument("--kb", type=int, default=40, help="size of each page in KB (default 40)")
    parser.add_argument(
        "--browser", default="", help="a Chromium to load each page in too (default: none)"
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="scholion-bench-capture-"))
    os.environ["SCHOLION_CAPTURE_ALLOWED_NETWORKS"] = "127.0.0.1/32"
    os.environ["SCHOLION_CAPTURE_BROWSER"] = args.browser
    original_name = setup_django(data_dir, 50 * 1024 * 1024)
    try:
        run(args)
    finally:
        teardown_django(original_name)
        shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    from django.db import connection

    from archive.capture.run import run as run_capture
    from archive.models import Capture
    from tests.websites import Answer, website

    rng = random.Random(27)
    with website() as site:
        site.pages["/style.css"] = Answer(
            b"body { font-family: serif; }", headers=[("Content-Type", "text/css")]
        )
        for name in ("/a.png", "/b.png"):
            site.pages[name] = Answer(PIXEL, headers=[("Content-Type", "image/png")])
        for i in range(args.pages + 1):
            site.pages[f"/story/{i}"] = Answer(article(i, args.kb, rng))

        steps: dict[str, list[float]] = {}

        def timed(job: Capture) -> float:
            marks: list[tuple[str, float]] = []
            started = time.perf_counter()
            job.claim()
            run_capture(job, progress=lambda text: marks.append((text, time.perf_counter())))
            finished = time.perf_counter()
            assert job.state == Capture.State.DONE, job.error
            for (text, at), (_, until) in zip(marks, [*marks[1:], ("", finished)], strict=True):
                steps.setdefault(text, []).append(until - at)
            return finished - started

        warm = Capture.objects.create(url=site.url("/story/0"))
        timed(warm)  # imports, the first connection, the child's first start
        steps.clear()
        durations = []
        began = time.perf_counter()
        for i in range(1, args.pages + 1):
            durations.append(timed(Capture.objects.create(url=site.url(f"/story/{i}"))))
        elapsed = time.perf_counter() - began

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"Capture benchmark on {connection.vendor}: {args.pages} distinct pages of ~{args.kb} KB"
        f" from 127.0.0.1, one after another, browser: {args.browser or 'none'}"
    )
    print(f"  {args.pages / elapsed * 60:.1f} captures per minute")
    durations.sort()
    print(
        f"  per capture: p50 {statistics.median(durations) * 1000:.0f} ms,"
        f" max {durations[-1] * 1000:.0f} ms"
    )
    for text, times in steps.items():
        print(f"    {text:<40} p50 {statistics.median(times) * 1000:7.0f} ms")
    print(f"  peak memory: {own:.0f} MiB this process, {children:.0f} MiB its largest child")


if __name__ == "__main__":
    main()
