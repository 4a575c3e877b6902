"""Search benchmark: index build time, p50/p95 for five kinds of query, and the browse pages.

    DEBUG=1 .venv/bin/python bench/search.py [--sources 10000] [--words 5000]
                                            [--annotations 200000] [--runs 30] [--keep DIR]
                                            [--browse-runs 10]

The defaults are the full specification (10,000 sources of 5,000 words, 200,000
annotations); on a small shared machine, run it smaller (--sources 1000 --annotations 20000).

Building the full-size data and its index takes minutes. With ``--keep DIR`` the built
database is kept and reused by the next run of the same size and seed: SQLite in a file in
DIR, or, when DATABASE_URL is set, a database named beside the one it names
(``<name>_bench_<size>``); a run that finds it populated skips straight to the queries
(applying any new migration first), which are drawn again from the same seed.

Sets Django up itself with a throwaway data directory and a throwaway database: SQLite in
that directory, or, when DATABASE_URL is set, a fresh database created beside the one it
names (``<name>_bench_<pid>``, dropped afterwards), so a real database is never touched.
Rows go in by bulk_create, without the index; the index is then built by
``search.index.rebuild_index`` (what ``manage.py rebuild_search_index`` runs), and timed.
Queries run as a collection member who sees most, not all, of the data, through
``search.query.search`` (the engine's work, snippets and result objects) and through the
whole page (form, filters, template); then the browse pages that count or list large sets
(the tag list, a tag's page, filter-only searches, co-occurrence). Prints figures; asserts
nothing about time.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import setup_django as ingest_setup_django  # noqa: E402
from bench.ingest import teardown_django  # noqa: E402

COMMON_WORDS = (  # noqa: SIM905
    "the of and to in a is that for it as was with be by on not he this are or his from at"
    " which but have an they you were her she there been one all we their has would when"
).split()
SYLLABLES = "ka ri to me sa lu no vi de pa ro ta ne zu mo li ga fe bo hu".split()  # noqa: SIM905


def setup_django(data_dir: Path) -> str:
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    return ingest_setup_django(data_dir, 50 * 1024 * 1024)


def setup_kept_django(keep_dir: Path, label: str) -> None:
    """Django on a database that outlives the run: created and migrated if need be."""
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    os.environ["SCHOLION_DATA_DIR"] = str(keep_dir)
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SCHOLION_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    settings.DEBUG = False  # DEBUG keeps every statement in memory
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql"):
        db["NAME"] = f"{db['NAME']}_bench_{label}"
        with connection._nodb_cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{db["NAME"]}"')
    else:
        db["NAME"] = str(keep_dir / f"search_{label}.sqlite3")
    print(f"Kept database: {db['NAME']}")
    call_command("migrate", verbosity=0)


def is_populated(n_sources: int, n_annotations: int) -> bool:
    """Whether the kept database holds a complete build of this size (index included)."""
    from annotations.models import Annotation
    from archive.models import Source
    from search.models import AnnotationEntry, SourceSegment

    if not Source.objects.exists():
        return False
    complete = (
        Source.objects.count() == n_sources
        and Annotation.objects.count() == n_annotations
        and SourceSegment.objects.filter(kind=SourceSegment.Kind.METADATA).count() == n_sources
        and AnnotationEntry.objects.count() == n_annotations
    )
    if not complete:
        raise SystemExit(
            "The kept database holds an incomplete or different build: delete it and run again."
        )
    return True


def reused(seed: int) -> dict:
    """What ``populate`` returns, for a database it populated from the same seed."""
    from django.contrib.auth import get_user_model
    from taggit.models import Tag

    return {
        "lang": Language(random.Random(seed)),  # populate draws the vocabulary first
        "reader": get_user_model().objects.get(username="user0"),
        "tags": list(Tag.objects.order_by("pk")[:5]),
    }


class Language:
    """A Zipf-distributed vocabulary: function words first, then made-up content words."""

    def __init__(self, rng: random.Random, size: int = 30_000) -> None:
        words = list(COMMON_WORDS)
        seen = set(words)
        while len(words) < size:
            w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
            if w not in seen:
                seen.add(w)
                words.append(w)
        self.words = words
        self.cum_weights = list(itertools.accumulate(1 / rank for rank in range(1, size + 1)))
        self.rng = rng

    def sample(self, n: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum_weights, k=n)

    def text(self, n_words: int) -> tuple[str, list[dict]]:
        """Paragraphs of about 120 words, with their block offsets."""
        words = self.sample(n_words)
        paragraphs, blocks, pos = [], [], 0
        for i in range(0, n_words, 120):
            chunk = words[i : i + 120]
            chunk[0] = chunk[0].capitalize()
            paragraph = " ".join(chunk) + "."
            paragraphs.append(paragraph)
            blocks.append({"t": "p", "s": pos, "e": pos + len(paragraph)})
            pos += len(paragraph) + 2
        return "\n\n".join(paragraphs), blocks


def populate(n_sources: int, n_words: int, n_annotations: int, rng: random.Random) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from taggit.models import Tag

    from annotations.models import Annotation, TaggedAnnotation
    from archive.models import Collection, Membership, Source

    User = get_user_model()
    lang = Language(rng)
    users = [User.objects.create_user(f"user{i}", password="pw-bench-123") for i in range(5)]
    reader = users[0]
    collections = [
        Collection.objects.create(slug=f"c{i}", title=f"Collection {i}", owner=users[1])
        for i in range(5)
    ]
    for c in collections[:4]:  # the reader belongs to four of the five
        Membership.objects.create(collection=c, user=reader, role=Membership.Role.ANNOTATOR)
    tags = Tag.objects.bulk_create(
        [Tag(name=f"{w} {i}", slug=f"{w}-{i}") for i, w in enumerate(lang.words[200:400])]
    )
    tag_weights = list(itertools.accumulate(1 / r for r in range(1, len(tags) + 1)))

    per_source = n_annotations / n_sources
    made_annotations = 0
    batch = 100
    for first in range(0, n_sources, batch):
        with transaction.atomic():
            sources, texts = [], []
            for i in range(first, min(first + batch, n_sources)):
                text, blocks = lang.text(n_words)
                texts.append(text)
                sources.append(
                    Source(
                        sha256=hashlib.sha256(f"bench {i}".encode()).hexdigest(),
                        size=len(text),
                        blob_name=f"bench/{i}",
                        media_type="text/plain",
                        archived_via=Source.Via.IMPORT,
                        archived_by=users[1],
                        text=text,
                        blocks=blocks,
                        extractor="bench",
                        extractor_version="1",
                        title=" ".join(lang.sample(6)).capitalize(),
                        creators=[f"{lang.sample(1)[0].title()}, {lang.sample(1)[0].title()}"],
                        publisher=" ".join(lang.sample(2)).title(),
                        date_published=str(1900 + i % 120),
                        citation_key=f"bench{i}",
                    )
                )
            sources = Source.objects.bulk_create(sources)
            Collection.sources.through.objects.bulk_create(
                [
                    Collection.sources.through(source_id=s.pk, collection_id=collections[j % 5].pk)
                    for j, s in enumerate(sources)
                ]
            )
            annotations, their_tags = [], []
            for j, (source, text) in enumerate(zip(sources, texts, strict=True)):
                target = round((first + j + 1) * per_source) - made_annotations
                for _ in range(target):
                    start = rng.randrange(0, len(text) - 200)
                    end = start + rng.randint(20, 200)
                    annotations.append(
                        Annotation(
                            source=source,
                            collection=collections[(first + j) % 5],
                            author=rng.choice(users),
                            start=start,
                            end=end,
                            exact=text[start:end],
                            prefix=text[max(0, start - 32) : start],
                            suffix=text[end : end + 32],
                            note=" ".join(lang.sample(rng.randint(5, 60)))
                            if rng.random() < 0.6
                            else "",
                            visibility=rng.choices(["collection", "public", "private"], [7, 2, 1])[
                                0
                            ],
                        )
                    )
                    their_tags.append(
                        {
                            t.pk
                            for t in rng.choices(tags, cum_weights=tag_weights, k=rng.randint(0, 3))
                        }
                    )
                made_annotations += target
            annotations = Annotation.objects.bulk_create(annotations)
            TaggedAnnotation.objects.bulk_create(
                [
                    TaggedAnnotation(content_object_id=a.pk, tag_id=tag_id)
                    for a, tag_ids in zip(annotations, their_tags, strict=True)
                    for tag_id in tag_ids
                ]
            )
        done = min(first + batch, n_sources)
        if done == n_sources or done % max(batch, n_sources // 10) < batch:
            print(f"  {done:,} sources, {made_annotations:,} annotations")
    return {"lang": lang, "reader": reader, "tags": tags}


def queries(lang: Language, rng: random.Random, tags) -> dict[str, list[dict]]:
    """Five kinds of query, several of each, drawn from the vocabulary."""
    from archive.models import Source

    content = lang.words[len(COMMON_WORDS) :]
    phrases = []
    for text in Source.objects.order_by("pk").values_list("text", flat=True)[:5]:
        paragraphs = text.split("\n\n")
        while True:  # two content words in a row, within one paragraph
            words = rng.choice(paragraphs).split()
            i = rng.randrange(len(words) - 1)
            pair = [w.strip(".").lower() for w in words[i : i + 2]]
            if not any(w in COMMON_WORDS for w in pair):
                phrases.append(f'"{" ".join(pair)}"')
                break
    return {
        "common word": [{"q": w} for w in content[10:15]],
        "rare word": [{"q": w} for w in content[15000:15005]],
        "phrase": [{"q": p} for p in phrases],
        "prefix": [{"q": w[:4] + "*"} for w in content[100:105]],
        "tag + words": [
            {"q": w, "tag": tag.slug} for w, tag in zip(content[:5], tags[:5], strict=True)
        ],
    }


def measure(kinds: dict[str, list[dict]], reader, runs: int) -> dict[str, tuple]:
    from django.test import Client

    from search.forms import SearchForm
    from search.query import search

    client = Client()
    client.force_login(reader)
    figures = {}
    for kind, params_list in kinds.items():
        core, page, counts = [], [], []
        for params in params_list:  # warm caches once
            client.get("/search/", params)
        for run in range(runs):
            params = params_list[run % len(params_list)]
            form = SearchForm(params, user=reader)
            assert form.is_valid(), form.errors
            started = time.perf_counter()
            results = search(reader, form.cleaned_data["q"], form.filters)
            core.append((time.perf_counter() - started) * 1000)
            counts.append(
                (
                    results.sources.count_label if results.sources else "0",
                    results.passages.count_label,
                )
            )
            started = time.perf_counter()
            response = client.get("/search/", params)
            page.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        figures[kind] = (percentiles(core), percentiles(page), counts)
    return figures


def measure_browse(reader, tags, runs: int) -> list[tuple[str, tuple, int]]:
    """The browse pages at the same scale: (page, p50/p95 in ms, queries) for each. The
    first tag is the most used (a sixth of all taggings), the fifth a middling one (a thirtieth)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(reader)
    common, middling = tags[0].slug, tags[4].slug
    pages = [
        ("tag list", "/tags/"),
        ("tag page", f"/tags/{common}/"),
        ("tag page 10", f"/tags/{common}/?page=10"),
        ("tag page, middling tag", f"/tags/{middling}/"),
        ("search: tag only", f"/search/?tag={common}"),
        ("search: collection only", "/search/?collection=c0"),
        ("collection page", "/collections/c0/"),
        ("source list", "/sources/"),
        ("tag co-occurrence", "/search/tags/cooccurrence/"),
    ]
    figures = []
    for label, url in pages:
        assert client.get(url).status_code == 200, url  # warm caches once
        samples = []
        for _ in range(runs):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                client.get(url)
                samples.append((time.perf_counter() - started) * 1000)
        figures.append((f"{label} ({url})", percentiles(samples), len(captured)))
    return figures


def machine_reference() -> float:
    """Milliseconds for a fixed piece of pure Python, the fastest of five tries. A shared
    machine's speed drifts (by half as much again within minutes, on the machines these
    figures were taken on): this tells a slow run from a slow change."""
    timer = timeit.Timer("sum(i * i for i in range(100_000))")
    return min(timer.repeat(repeat=5, number=10)) / 10 * 1000


def percentiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:  # --runs 1: the one figure is both
        return samples[0], samples[0]
    cuts = statistics.quantiles(samples, n=20, method="inclusive")
    return statistics.median(samples), cuts[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=5_000, help="words per source")
    parser.add_argument("--annotations", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per kind of query")
    parser.add_argument(
        "--browse-runs", type=int, default=10, help="timed runs per browse page (0: none)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        help="keep the built database (SQLite: a file in DIR) and reuse it on later runs",
    )
    args = parser.parse_args()

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        label = f"{args.sources}x{args.words}_{args.annotations}_s{args.seed}"
        setup_kept_django(args.keep.resolve(), label)
        run(args, reuse=True)
        return
    with tempfile.TemporaryDirectory(prefix="scholion-bench-search-") as tmp:
        original = setup_django(Path(tmp))
        try:
            run(args, reuse=False)
        finally:
            teardown_django(original)


def run(args: argparse.Namespace, *, reuse: bool) -> None:
    from django.db import DEFAULT_DB_ALIAS, connection, connections
    from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLWrapper

    from search.index import rebuild_index

    # The wrapper itself: `connection` is a proxy, which isinstance cannot see through.
    database = connections[DEFAULT_DB_ALIAS]
    if isinstance(database, PostgreSQLWrapper):
        engine = f"PostgreSQL {database.pg_version}"
    else:
        engine = f"SQLite {sqlite3.sqlite_version}"
    print(
        f"Engine: {engine}; {args.sources:,} sources of {args.words:,} words,"
        f" {args.annotations:,} annotations"
    )
    if reuse and is_populated(args.sources, args.annotations):
        data = reused(args.seed)
        print("Data and index reused from the kept database")
    else:
        started = time.perf_counter()
        data = populate(args.sources, args.words, args.annotations, random.Random(args.seed))
        print(f"Data inserted (bulk_create, no index) in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        sources, stretches, annotations = rebuild_index()
        built = time.perf_counter() - started
        print(
            f"Index build: {built:.1f} s ({sources:,} sources in {stretches:,} stretches,"
            f" {annotations:,} annotations)"
        )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # As autovacuum would: fresh statistics, and the visibility map that
                # index-only scans rely on.
                cursor.execute("VACUUM ANALYZE")

    # A generator of its own, so that a reused database is asked the same queries.
    kinds = queries(data["lang"], random.Random(f"{args.seed} queries"), data["tags"])
    reference = machine_reference()
    figures = measure(kinds, data["reader"], args.runs)
    print(f"\nQueries as a member of 4 of 5 collections; {args.runs} runs each (ms):")
    print(f"{'kind':<13} {'search p50':>10} {'p95':>7} {'page p50':>9} {'p95':>7}  matches")
    for kind, ((c50, c95), (p50, p95), counts) in figures.items():
        example = kinds[kind][0]
        shown = ", ".join(f"{k}={v}" for k, v in example.items())
        sources, passages = counts[0]
        print(
            f"{kind:<13} {c50:>10.1f} {c95:>7.1f} {p50:>9.1f} {p95:>7.1f}"
            f"  {sources} sources, {passages} passages for {shown}"
        )
    if args.browse_runs:
        browse = measure_browse(data["reader"], data["tags"], args.browse_runs)
        print(
            f"\nBrowse pages, same reader; {args.browse_runs} runs each (ms); queries on the"
            " request's connection (a search reads its sources on a helper's, search/parallel.py):"
        )
        print(f"{'p50':>8} {'p95':>8} {'queries':>8}  page")
        for label, (p50, p95), count in browse:
            print(f"{p50:>8.1f} {p95:>8.1f} {count:>8}  {label}")
    print(
        f"\nMachine reference (a fixed Python loop, lower is faster): {reference:.1f} ms before"
        f" the queries, {machine_reference():.1f} ms after"
    )


if __name__ == "__main__":
    main()
