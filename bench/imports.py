"""Import benchmark: a large package imported while other people write.

    DEBUG=1 .venv/bin/python bench/imports.py [--annotations 40000] [--sources 200]
        [--compare-with ../other-checkout]

Builds (with bulk_create) a collection of --annotations annotations over --sources sources in
a throwaway database (see bench/ingest.py), exports it as a BagIt package, empties the
archive, then runs `manage.py import_collection` on the package in a process of its own
while this process writes annotations one by one, each in its own transaction, as people
annotating at the same time would. Prints the import's time and peak memory, and how long
the other writes waited. With --compare-with, the same import also runs with another
checkout's manage.py (an older Scholion, say) against the same database, emptied again,
for figures side by side. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.export import build  # noqa: E402
from bench.ingest import MB, setup_django, teardown_django, word  # noqa: E402

# Runs manage.py, then prints the process's own peak resident size on standard error.
WITH_PEAK = (
    "import atexit, resource, runpy, sys;"
    "atexit.register(lambda: print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF)"
    ".ru_maxrss, file=sys.stderr));"
    "sys.argv = ['manage.py', *sys.argv[1:]];"
    "runpy.run_path('manage.py', run_name='__main__')"
)


def export_package(collection, path: Path) -> int:
    from exports.bag import bag_chunks
    from exports.scope import ExportScope

    scope = ExportScope(collection=collection, user=collection.owner, base_url="https://b.example")
    with path.open("wb") as fh:
        for chunk in bag_chunks(scope):
            fh.write(chunk)
    return scope.count()


def empty_archive() -> None:
    from django.conf import settings

    from annotations.models import Annotation
    from archive.models import Collection, Source

    Annotation.objects.all().delete()
    Collection.objects.exclude(slug="writers").delete()
    Source.objects.exclude(collections__slug="writers").delete()
    shutil.rmtree(Path(settings.DATA_DIR) / "blobs" / "sha256", ignore_errors=True)


def command_env() -> dict[str, str]:
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{db['NAME']}"
    else:
        host = db["HOST"] or "127.0.0.1"
        url = f"postgres://{db['USER']}@{host}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": url,
        "SCHOLION_DATA_DIR": str(settings.DATA_DIR),
    }


def import_while_writing(checkout: Path, package: Path, writer, source) -> dict:
    """Run the import in a process of its own; write annotations here until it ends."""
    from django.db import OperationalError

    from annotations.models import Annotation

    waits: list[float] = []
    failures = 0
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", WITH_PEAK, "import_collection", str(package)],
        cwd=checkout,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    while process.poll() is None:
        t0 = time.perf_counter()
        try:
            Annotation.create_anchored(author=writer, source=source, start=0, end=7, note="w")
        except OperationalError:  # "database is locked": waited past the busy timeout
            failures += 1
        waits.append(time.perf_counter() - t0)
        time.sleep(0.02)  # a person's pace, many people: about 40 writes a second
    elapsed = time.perf_counter() - started
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"the import failed:\n{err.decode()}")
    peak = int(err.decode().rsplit("PEAK_KB", 1)[1].split()[0]) / 1024
    return {
        "seconds": elapsed,
        "peak_mb": peak,
        "summary": out.decode().strip(),
        "writes": len(waits),
        "failures": failures,
        "p50": statistics.median(waits) * 1000,
        "p99": sorted(waits)[int(len(waits) * 0.99)] * 1000,
        "max": max(waits) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotations", type=int, default=40_000)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument(
        "--compare-with", type=Path, help="another checkout whose import to run the same way"
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="scholion-bench-"))
    original_db = setup_django(data_dir, max_upload=10 * MB)
    try:
        import django
        from django.contrib.auth import get_user_model
        from django.db import connection

        from archive.ingest import archive_chunks
        from archive.models import Collection

        print(
            f"Scholion import benchmark: Python {sys.version.split()[0]}, Django"
            f" {django.get_version()}, {connection.vendor}"
        )
        rng = random.Random(7)
        users = [
            get_user_model().objects.create_user(f"{word(rng)}{n}", password=None)
            for n in range(20)
        ]
        t0 = time.perf_counter()
        collection = build("bench-import", args.sources, args.annotations, users, rng, 0)
        package = data_dir / "package.zip"
        count = export_package(collection, package)
        print(
            f"  built and exported {count:,} annotations on {args.sources} sources"
            f" ({package.stat().st_size / MB:.1f} MB zipped) in {time.perf_counter() - t0:.1f} s"
        )
        writer = users[1]
        writers = Collection.objects.create(slug="writers", title="Writers", owner=writer)
        source = archive_chunks(
            iter([b"A text others annotate during the import."]), user=writer, collection=writers
        ).source

        checkouts = [("this checkout", ROOT)]
        if args.compare_with:
            checkouts.append((str(args.compare_with), args.compare_with.resolve()))
        print(
            f"\n  {'import by':<28} {'seconds':>8} {'peak MB':>8}   other writes: {'count':>6}"
            f" {'failed':>6} {'p50 ms':>7} {'p99 ms':>8} {'max ms':>8}"
        )
        for label, checkout in checkouts:
            empty_archive()
            result = import_while_writing(checkout, package, writer, source)
            print(
                f"  {label[-28:]:<28} {result['seconds']:>8.1f} {result['peak_mb']:>8.0f}  "
                f" {'':>13} {result['writes']:>6} {result['failures']:>6}"
                f" {result['p50']:>7.1f} {result['p99']:>8.1f} {result['max']:>8.1f}"
            )
        connection.close()
    finally:
        teardown_django(original_db)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
