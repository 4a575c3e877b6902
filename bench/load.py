"""Load benchmark: a team annotating at once, against gunicorn as `make serve` runs it.

    DEBUG=1 .venv/bin/python bench/load.py [--users 50] [--curators 2] [--minutes 5]

Builds a collection of --sources sources with annotations, tags and --users annotators and
--curators curators (a throwaway database as bench/ingest.py makes one: SQLite in a
temporary data directory, or, when DATABASE_URL is set, a fresh PostgreSQL database beside
the one it names). Starts gunicorn with config/gunicorn.py (WEB_CONCURRENCY sync workers,
3 unless set) on loopback, DEBUG off, behind what its TLS proxy would send. Then runs Locust
headless (bench/load_locust.py) for --minutes: each annotator reads sources, annotates
passages with a note, tags and sometimes a citation, edits and deletes their own
annotations, searches and opens tag pages, 1 to 5 s apart; each curator exports the
collection (CSV, JSON-LD) every 10 to 30 s.

Prints requests per second, p50/p95/p99 per kind of request and the errors, then checks the
database against the journal of every write and its answer: each annotation answered 201 is
there (unless a later delete was answered 204) with the note of its last edit answered 200,
no write answered 4xx/5xx left anything, and the search index agrees with the rows. Exits
non-zero when a check fails or a request was answered 5xx. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import paragraph, setup_django, teardown_django  # noqa: E402
from bench.vs_taguette import HOST, answers, free_port, scholion_env, server  # noqa: E402

PASSWORD = "load-bench-password"
TAGS = [f"code {n:02d}" for n in range(30)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="annotators (50)")
    parser.add_argument("--curators", type=int, default=2, help="curators exporting (2)")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the load runs (5)")
    parser.add_argument("--sources", type=int, default=20, help="sources to read (20)")
    parser.add_argument(
        "--annotations", type=int, default=1000, help="annotations there at the start (1000)"
    )
    parser.add_argument("--seed", type=int, default=32)
    args = parser.parse_args()
    if args.curators != 2:
        parser.error("--curators: bench/load_locust.py runs exactly 2 (its fixed_count).")

    data_dir = Path(tempfile.mkdtemp(prefix="scholion-bench-load-"))
    original = setup_django(data_dir, 50 * 1024 * 1024)
    try:
        failed = run(args, data_dir)
    finally:
        teardown_django(original)
        shutil.rmtree(data_dir, ignore_errors=True)
    raise SystemExit(1 if failed else 0)


def build(args: argparse.Namespace) -> dict:
    from django.contrib.auth import get_user_model
    from django.utils.text import slugify

    from annotations.models import Annotation
    from archive.ingest import archive_chunks
    from archive.models import Collection, Membership

    rng = random.Random(args.seed)
    users = get_user_model().objects
    owner = users.create_user("owner", password=PASSWORD)
    collection = Collection.objects.create(slug="team", title="Team", owner=owner)
    Membership.objects.create(collection=collection, user=owner, role=Membership.Role.OWNER)
    annotators = [f"annotator{n:02d}" for n in range(args.users)]
    curators = [f"curator{n}" for n in range(args.curators)]
    for name in annotators:
        Membership.objects.create(
            collection=collection,
            user=users.create_user(name, password=PASSWORD),
            role=Membership.Role.ANNOTATOR,
        )
    for name in curators:
        Membership.objects.create(
            collection=collection,
            user=users.create_user(name, password=PASSWORD),
            role=Membership.Role.EDITOR,
        )
    sources = []
    for n in range(args.sources):
        text = "\n\n".join(paragraph(rng) for _ in range(30))
        source = archive_chunks(
            iter([f"Report {n}\n\n{text}".encode()]),
            user=owner,
            collection=collection,
            filename=f"report-{n}.txt",
        ).source
        sources.append(source)
    authors = list(users.filter(username__in=annotators))
    for _ in range(args.annotations):
        source = rng.choice(sources)
        start = rng.randrange(0, len(source.text) - 120)
        Annotation.create_anchored(
            author=rng.choice(authors),
            source=source,
            start=start,
            end=start + rng.randint(10, 100),
            note="A passage read before the load began.",
            tags=rng.sample(TAGS, rng.randint(1, 3)),
        )
    words = sorted({w for s in sources for w in s.text.split()[:200] if w.isalpha()})
    return {
        "password": PASSWORD,
        "collection": collection.slug,
        "annotators": annotators,
        "curators": curators,
        "sources": [{"uuid": str(s.uuid), "length": len(s.text)} for s in sources],
        "tags": TAGS,
        "tag_slugs": [slugify(t) for t in TAGS],
        "words": rng.sample(words, min(50, len(words))),
    }


def run(args: argparse.Namespace, data_dir: Path) -> bool:
    from django.db import connection

    t0 = time.perf_counter()
    work = build(args)
    vendor = connection.vendor
    connection.close()
    print(
        f"Scholion load benchmark on {vendor}: {args.users} annotators and {args.curators}"
        f" curators for {args.minutes:g} min; {args.sources} sources with {args.annotations}"
        f" annotations to start (built in {time.perf_counter() - t0:.1f} s).",
        flush=True,
    )
    work_file = data_dir / "work.json"
    work_file.write_text(json.dumps(work))
    journal = data_dir / "journal.jsonl"

    # The proxy terminates TLS and Locust speaks plain HTTP to gunicorn: its HTTP client would
    # not send back cookies marked Secure, so they are not marked (nothing else changes).
    env = {**scholion_env(data_dir), "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0"}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    port = free_port()
    workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
    gunicorn = [
        sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi",
        "--bind", f"{HOST}:{port}",
    ]  # fmt: skip
    proxied = {"X-Forwarded-Proto": "https"}
    stats = data_dir / "locust"
    with server(
        "Scholion (gunicorn)",
        gunicorn,
        env,
        data_dir / "gunicorn.log",
        lambda: answers(port, "/healthz", proxied),
    ):
        people = args.users + args.curators
        subprocess.run(
            [
                sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "load_locust.py"),
                "--headless", "--host", f"http://{HOST}:{port}",
                "--users", str(people), "--spawn-rate", str(max(1, people // 10)),
                "--run-time", f"{int(args.minutes * 60)}s", "--stop-timeout", "30",
                "--csv", str(stats), "--only-summary", "--loglevel", "WARNING",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "LOAD_WORK": str(work_file),
                "LOAD_JOURNAL": str(journal),
                "LOCUST_SKIP_MONKEY_PATCH_CHECK": "1",
            },
            check=False,
        )  # fmt: skip
    print(f"\ngunicorn: {workers} sync workers (WEB_CONCURRENCY); Locust: {people} people.")
    server_errors = report(stats)
    problems = check(journal)
    print(f"\n{server_errors} requests answered 5xx.")
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    if not problems:
        print("Database check: every answered write is there as answered, nothing else.")
    return bool(problems) or server_errors > 0


def report(stats: Path) -> int:
    """Print Locust's figures per kind of request; return how many were answered 5xx."""
    with open(f"{stats}_stats.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    print(
        f"\n{'request':<26} {'count':>7} {'fail':>5} {'req/s':>7} {'p50':>6} {'p95':>6} {'p99':>6}"
    )
    for row in rows:
        label = f"{row['Type']} {row['Name']}".strip()
        print(
            f"{label:<26} {row['Request Count']:>7} {row['Failure Count']:>5}"
            f" {float(row['Requests/s']):>7.1f} {row['50%']:>6} {row['95%']:>6} {row['99%']:>6}"
        )
    print("(milliseconds)")
    server_errors = 0
    failures = Path(f"{stats}_failures.csv")
    if failures.exists():
        with open(failures, encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                print(
                    f"  failed: {row['Method']} {row['Name']}: {row['Error']} x{row['Occurrences']}"
                )
                if "HTTPError('5" in row["Error"] or "status 5" in row["Error"]:
                    server_errors += int(row["Occurrences"])
    return server_errors


def check(journal: Path) -> list[str]:
    """The database against every write the people made and the answer each got."""
    from annotations.models import Annotation
    from search.index import index_words
    from search.models import AnnotationEntry

    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    answered = Counter(f"{e['op']} {e['status']}" for e in entries)
    print(
        "\nWrites and their answers: " + ", ".join(f"{k} x{v}" for k, v in sorted(answered.items()))
    )
    problems: list[str] = []
    expected: dict[str, str | None] = {}  # uuid -> the marker its note should hold, None: gone
    refused_markers = []
    for e in entries:
        if e["op"] == "create":
            if e["status"] == 201:
                expected[e["uuid"]] = e["marker"]
            else:
                refused_markers.append(e["marker"])
        elif e["op"] == "edit":
            if e["status"] == 200:
                expected[e["uuid"]] = e["marker"]
            else:
                refused_markers.append(e["marker"])
        elif e["op"] == "delete" and e["status"] == 204:
            expected[e["uuid"]] = None
    rows = {str(u): note for u, note in Annotation.objects.values_list("uuid", "note")}
    for annotation, marker in expected.items():
        if marker is None:
            if annotation in rows:
                problems.append(f"{annotation} was deleted (204) and is still there")
        elif annotation not in rows:
            problems.append(f"{annotation} was created (201) and is missing")
        elif marker not in rows[annotation]:
            problems.append(f"{annotation} does not hold its last answered note ({marker})")
    notes = "\n".join(rows.values())
    problems += [f"a refused write left its note ({m})" for m in refused_markers if m in notes]
    indexed = {
        str(u): n for u, n in AnnotationEntry.objects.values_list("annotation__uuid", "note")
    }
    if len(indexed) != len(rows):
        problems.append(f"{len(rows)} annotations, {len(indexed)} in the search index")
    for annotation, note in rows.items():
        if indexed.get(annotation) != " ".join(index_words(note)):
            problems.append(f"the search index of {annotation} does not match its note")
    return problems


if __name__ == "__main__":
    main()
