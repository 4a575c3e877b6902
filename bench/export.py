"""Export benchmark: annotations per second per format, and peak memory, at two sizes.

    DEBUG=1 .venv/bin/python bench/export.py [--annotations 100000] [--sources 500]

Builds (with bulk_create) a collection of --annotations annotations over --sources archived
sources, and a second one a fifth of that size, in a throwaway database (see bench/ingest.py),
then writes every format of both to a byte counter. Each export runs twice: once timed, once
under tracemalloc for its peak (tracemalloc slows Python down, so it never runs while timing).
If memory does not grow with the collection, the two peaks are about the same. Prints figures;
asserts nothing about time.
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ingest import (  # noqa: E402
    MB,
    max_rss_mb,
    paragraph,
    plain_article,
    setup_django,
    teardown_django,
    word,
)

TAGS = [f"theme-{n}" for n in range(40)] + ["dates", "claims", "prices", "people", "places"]


def build(slug: str, n_sources: int, n_annotations: int, users, rng: random.Random, offset: int):
    from django.db import transaction
    from taggit.models import Tag

    from annotations.models import Annotation, TaggedAnnotation
    from archive.ingest import archive_chunks
    from archive.models import Collection

    owner = users[0]
    collection = Collection.objects.create(slug=slug, title=f"Bench {slug}", owner=owner)
    sources = []
    for i in range(n_sources):
        data = plain_article(offset + i, rng, size=rng.randint(3000, 9000))
        archived = archive_chunks(
            iter([data]),
            user=owner,
            collection=collection,
            filename=f"{slug}-{i}.txt",
            declared_type="text/plain",
            via="cli",
            metadata={"title": f"Report {offset + i}"},
        )
        sources.append(archived.source)
    tags = {name: Tag.objects.get_or_create(name=name, slug=name)[0] for name in TAGS}
    visibilities = ["collection"] * 6 + ["public"] * 3 + ["private"]
    per_source = n_annotations // n_sources
    with transaction.atomic():
        batch = []
        for source in sources:
            text = source.text
            for _ in range(per_source):
                start = rng.randrange(0, len(text) - 200)
                end = start + rng.randint(12, 180)
                note = "" if rng.random() < 0.4 else paragraph(rng)[: rng.randint(20, 400)]
                if rng.random() < 0.05:
                    note = "=cmd|' /C calc'!A0 " + note  # a cell to neutralise
                batch.append(
                    Annotation(
                        source=source,
                        collection=collection,
                        author=rng.choice(users),
                        start=start,
                        end=end,
                        exact=text[start:end],
                        prefix=text[max(0, start - 32) : start],
                        suffix=text[end : end + 32],
                        note=note,
                        visibility=rng.choice(visibilities),
                    )
                )
        Annotation.objects.bulk_create(batch, batch_size=2000)
        created = Annotation.objects.filter(collection=collection).values_list("pk", flat=True)
        through = []
        for pk in created:
            for name in rng.sample(TAGS, rng.choice([0, 1, 1, 2, 3])):
                through.append(TaggedAnnotation(content_object_id=pk, tag=tags[name]))
        TaggedAnnotation.objects.bulk_create(through, batch_size=5000)
    return collection


def consume(scope, fmt: str) -> tuple[int, float]:
    """Bytes written, and the moment (perf_counter) the first of them was ready to send."""
    from exports.formats import FORMATS, binary_writer, buffered, text_writer

    written, first = 0, 0.0
    if FORMATS[fmt].text is None:
        chunks = binary_writer(fmt)(scope)
    else:
        chunks = (chunk.encode("utf-8") for chunk in buffered(text_writer(fmt)(scope)))
    for chunk in chunks:
        first = first or time.perf_counter()
        written += len(chunk)
    return written, first


def run(collection, user, fmt: str) -> tuple[int, float, float, int, float]:
    from exports.scope import ExportScope

    def scope():
        return ExportScope(collection=collection, user=user, base_url="https://scholion.example")

    count = scope().count()
    gc.collect()
    t0 = time.perf_counter()
    size, first = consume(scope(), fmt)
    elapsed = time.perf_counter() - t0
    gc.collect()
    tracemalloc.start()
    consume(scope(), fmt)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return count, elapsed, first - t0, size, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotations", type=int, default=100_000)
    parser.add_argument("--sources", type=int, default=500)
    parser.add_argument(
        "--formats",
        default="csv,xlsx,jsonld,markdown,bibtex,csljson,bagit",
        help="comma-separated",
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="scholion-bench-"))
    original_db = setup_django(data_dir, max_upload=10 * MB)
    try:
        import django
        from django.contrib.auth import get_user_model
        from django.db import connection

        print(
            f"Scholion export benchmark: Python {sys.version.split()[0]}, Django"
            f" {django.get_version()}, {connection.vendor}"
        )
        rng = random.Random(7)
        users = [
            get_user_model().objects.create_user(f"{word(rng)}{n}", password=None)
            for n in range(20)
        ]
        sizes = [
            ("small", args.sources // 5, args.annotations // 5),
            ("large", args.sources, args.annotations),
        ]
        collections = []
        offset = 0
        for slug, n_sources, n_annotations in sizes:
            t0 = time.perf_counter()
            collections.append(build(slug, n_sources, n_annotations, users, rng, offset))
            offset += n_sources
            print(
                f"  built {slug}: {n_annotations:,} annotations on {n_sources} sources"
                f" in {time.perf_counter() - t0:.1f} s"
            )
        owner = users[0]
        print(
            f"\nExports as the owner (everything but other people's private annotations):\n"
            f"  {'collection':<10} {'format':<9} {'annotations':>11} {'seconds':>8}"
            f" {'annot./s':>9} {'1st byte s':>10} {'output MB':>10} {'peak MB':>8}"
        )
        for fmt in args.formats.split(","):
            for collection in collections:
                count, elapsed, first, size, peak = run(collection, owner, fmt)
                print(
                    f"  {collection.slug:<10} {fmt:<9} {count:>11,} {elapsed:>8.2f}"
                    f" {count / elapsed:>9,.0f} {first:>10.2f} {size / MB:>10.1f}"
                    f" {peak / MB:>8.1f}"
                )
        print(f"\n  process ru_maxrss {max_rss_mb():.0f} MB")
        connection.close()
    finally:
        teardown_django(original_db)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
