"""Ingest benchmark: sources archived per second, PDF pages read per second, and memory while
archiving a 500-page PDF, a long Word document and EPUB book, a 200 MB file (too long for a text
layer: its bytes only) and a file at the text-layer limit.

    DEBUG=1 .venv/bin/python bench/ingest.py [--articles 300] [--pdf-pages 500] [--big-mb 200]
        [--docx-paragraphs 5000] [--epub-chapters 100]

Sets Django up itself with a throwaway data directory (blobs, spool files) and a throwaway
database: SQLite in that directory, or, when DATABASE_URL is set, a fresh database created
beside the one it names (``<name>_bench_<pid>``, dropped afterwards), so a real database is
never touched. Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1024 * 1024
SYLLABLES = ["ka", "ri", "to", "me", "sa", "lu", "no", "vi", "de", "pa", "ro", "ta", "ne", "zu"]


def setup_django(data_dir: Path, max_upload: int) -> str:
    os.environ["SCHOLION_DATA_DIR"] = str(data_dir)
    os.environ["SCHOLION_MAX_UPLOAD_BYTES"] = str(max_upload)
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SCHOLION_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    # DEBUG keeps every SQL statement, parameters included (a 200 MB text layer), in memory.
    settings.DEBUG = False
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql"):
        db.setdefault("TEST", {})["NAME"] = f"{db['NAME']}_bench_{os.getpid()}"
    # The test-database machinery creates, migrates and later drops a database of its own.
    original_name = db["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    return original_name


def teardown_django(original_name: str) -> None:
    from django.db import connection

    connection.creation.destroy_test_db(original_name, verbosity=0)


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))


def sentence(rng: random.Random) -> str:
    words = [word(rng) for _ in range(rng.randint(6, 18))]
    return " ".join(words).capitalize() + rng.choice(".....?!")


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(3, 7)))


def plain_article(i: int, rng: random.Random, size: int = 5000) -> bytes:
    parts = [f"Report {i}: {sentence(rng)}", f"By {word(rng).title()} {word(rng).title()}"]
    while sum(len(p) + 2 for p in parts) < size:
        parts.append(paragraph(rng))
    return "\n\n".join(parts).encode()


def html_article(i: int, rng: random.Random, size: int = 5000) -> bytes:
    title = f"Report {i}: {sentence(rng)}"
    head = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<meta name='citation_author' content='{word(rng).title()}, {word(rng).title()}'>"
        f"<meta name='citation_publication_date' content='2024/03/{1 + i % 28:02d}'>"
        "<script>window.tracking = true;</script><style>p { margin: 0 }</style></head>"
        f"<body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav><article><h1>{title}</h1>"
    )
    body: list[str] = []
    while len(head) + sum(map(len, body)) < size:
        text = paragraph(rng)
        cut = len(text) // 2
        body.append(
            f"<p>{text[:cut]}<a href='https://example.org/{i}/{len(body)}'>{word(rng)}</a>"
            f"{text[cut:]}</p>"
        )
        if len(body) % 4 == 0:
            body.append(f"<h2>{sentence(rng)}</h2><ul><li>{sentence(rng)}</li></ul>")
    return (head + "".join(body) + "</article><footer>© Example</footer></body></html>").encode()


def throughput(label: str, documents: list[bytes], filename: str, declared: str) -> None:
    from archive.ingest import archive_chunks

    timings = []
    started = time.perf_counter()
    for n, data in enumerate(documents):
        t0 = time.perf_counter()
        archived = archive_chunks(
            iter([data]), filename=f"{n}{filename}", declared_type=declared, via="import"
        )
        timings.append(time.perf_counter() - t0)
        assert archived.created, "benchmark documents must be distinct"
    elapsed = time.perf_counter() - started
    size = statistics.mean(map(len, documents))
    print(
        f"  {label:<11} {len(documents)} sources of {size / 1024:.1f} KB in {elapsed:.2f} s:"
        f" {len(documents) / elapsed:.0f} sources/s"
        f" (median {statistics.median(timings) * 1000:.1f} ms,"
        f" p95 {sorted(timings)[int(len(timings) * 0.95)] * 1000:.1f} ms)"
    )


def write_big_file(path: Path, size: int) -> None:
    """A plain-text file of ``size`` bytes, written block by block (never whole in memory)."""
    rng = random.Random(200)
    block = "\n\n".join(paragraph(rng) for _ in range(2000)).encode()[: MB - 64]
    written = 0
    with path.open("wb") as out:
        n = 0
        while written < size:
            # A numbered header keeps every block, and so the whole file, distinct.
            chunk = f"\n\nBlock {n}\n\n".encode() + block
            chunk = chunk[: size - written]
            out.write(chunk)
            written += len(chunk)
            n += 1


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def measured(label: str, size: int, work: Callable[[], object]) -> None:
    gc.collect()
    rss_before = max_rss_mb()
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    work()
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = max_rss_mb() - rss_before
    print(
        f"  {label:<32} {elapsed:6.1f} s ({size / MB / elapsed:5.0f} MB/s)"
        f"  tracemalloc peak {peak / MB:7.1f} MB   ru_maxrss +{rss_growth:7.1f} MB"
    )


def chunks_of(path: Path) -> Iterator[bytes]:
    from archive.blobstore import file_chunks

    with path.open("rb") as fh:
        yield from file_chunks(fh)


def pdf_of(pages: int, rng: random.Random) -> bytes:
    """A PDF of ``pages`` dense pages: two columns of 50 lines each, as a journal prints."""
    from tests.pdfs import make_pdf

    def line() -> str:
        text = ""
        while len(text) < 48:
            text += word(rng) + " "
        return text.strip()

    return make_pdf(
        [
            [(72, 740 - 13 * i, line()) for i in range(50)]
            + [(320, 740 - 13 * i, line()) for i in range(50)]
            for _ in range(pages)
        ]
    )


def pdf_figures(pages: int) -> None:
    """Pages per second through the whole archive path, and the peak memory of the child
    process that reads the PDF (the server's own process only passes its file on)."""
    from archive.ingest import archive_chunks

    data = pdf_of(pages, random.Random(pages))
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    archived = archive_chunks(iter([data]), filename="bench.pdf", via="import")
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    source = archived.source
    assert source.extractor == "pdf" and len(source.divisions["spans"]) == pages
    print(
        f"  {pages} pages ({len(data) / MB:.1f} MB, {len(source.text) / MB:.1f} M characters)"
        f" in {elapsed:.1f} s: {pages / elapsed:.0f} pages/s;"
        f" reader's peak RSS {child_peak:.0f} MB"
        f"{' (an earlier child peaked higher)' if child_peak <= children_before else ''};"
        f" server's tracemalloc peak {peak / MB:.1f} MB"
    )


def docx_of(paragraphs: int, rng: random.Random) -> bytes:
    """A Word document of ``paragraphs`` paragraphs, a heading every 20, a table every 100."""
    import io

    import docx

    document = docx.Document()
    for n in range(paragraphs):
        if n % 20 == 0:
            document.add_heading(sentence(rng), 1)
        if n % 100 == 50:
            table = document.add_table(rows=3, cols=3)
            for cell in table._cells:
                cell.text = word(rng)
        document.add_paragraph(paragraph(rng))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def epub_of(chapters: int, rng: random.Random) -> bytes:
    """An EPUB book of ``chapters`` chapters of 40 paragraphs each."""
    from tests.docs import make_epub

    return make_epub(
        [
            (
                f"Chapter {n}",
                "".join(f"<p>{paragraph(rng)}</p>" for _ in range(40)),
            )
            for n in range(1, chapters + 1)
        ]
    )


def document_figures(paragraphs: int, chapters: int) -> None:
    """Time and memory to archive a long Word document and a long EPUB book (read in the
    server's own process, unlike a PDF)."""
    from archive.ingest import archive_chunks

    rng = random.Random(paragraphs + chapters)
    for label, data, name, extractor in (
        (f"docx, {paragraphs} paragraphs", docx_of(paragraphs, rng), "bench.docx", "docx"),
        (f"epub, {chapters} chapters", epub_of(chapters, rng), "bench.epub", "epub"),
    ):
        made: list = []

        def archive(data: bytes = data, name: str = name, made: list = made) -> None:
            made.append(archive_chunks(iter([data]), filename=name, via="import").source)

        measured(f"{label} ({len(data) / MB:.1f} MB)", len(data), archive)
        assert made[0].extractor == extractor
        print(f"  {'':<32} {len(made[0].text) / MB:.1f} M characters, {len(made[0].blocks)} blocks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=300, help="articles per kind (300)")
    parser.add_argument("--pdf-pages", type=int, default=500, help="pages of the PDF (500)")
    parser.add_argument("--big-mb", type=int, default=200, help="size of the big file (200)")
    parser.add_argument(
        "--docx-paragraphs", type=int, default=5000, help="paragraphs of the DOCX (5000)"
    )
    parser.add_argument("--epub-chapters", type=int, default=100, help="chapters of the EPUB (100)")
    args = parser.parse_args()
    big_size = args.big_mb * MB

    data_dir = Path(tempfile.mkdtemp(prefix="scholion-bench-"))
    original_db = setup_django(data_dir, max_upload=big_size + MB)
    try:
        import django
        from django.conf import settings
        from django.db import connection

        from archive.blobstore import archive_storage, spool, store
        from archive.ingest import archive_chunks
        from archive.models import Source

        print(
            f"Scholion ingest benchmark: Python {sys.version.split()[0]}, Django"
            f" {django.get_version()}, {connection.vendor} ({connection.settings_dict['NAME']})"
        )

        print(f"\nArchiving distinct ~5 KB articles ({args.articles} of each kind):")
        rng = random.Random(5)
        throughput(
            "plain text",
            [plain_article(i, rng) for i in range(args.articles)],
            ".txt",
            "text/plain",
        )
        throughput(
            "html",
            [html_article(i, rng) for i in range(args.articles)],
            ".html",
            "text/html",
        )

        print(f"\nOne PDF of {args.pdf_pages} two-column pages (extractor pdf 1):")
        pdf_figures(args.pdf_pages)

        print("\nA long Word document and EPUB book (extractors docx 1 and epub 1):")
        document_figures(args.docx_paragraphs, args.epub_chapters)

        big = data_dir / "big.txt"
        write_big_file(big, big_size)
        print(f"\nOne {args.big_mb} MB plain-text file (generated on disk by streaming):")

        blob_names: list[str] = []
        archived_uuids: list[UUID] = []

        def byte_path() -> None:
            spooled = spool(chunks_of(big))
            try:
                blob_names.append(store(spooled)[0])
            finally:
                spooled.close()

        measured("byte path (hash, spool, store)", big_size, byte_path)

        # The same bytes again, from scratch: remove the blob the byte path stored.
        blob = Path(archive_storage().path(blob_names[0]))
        blob.chmod(0o644)
        blob.unlink()

        def full_archive() -> None:
            archived = archive_chunks(
                chunks_of(big), filename="big.txt", declared_type="text/plain", via="import"
            )
            assert archived.created
            archived_uuids.append(archived.source.uuid)

        measured("full archive (type, encoding, row)", big_size, full_archive)
        source = Source.objects.defer("text", "blocks").get(uuid=archived_uuids[0])
        print(
            f"  stored {source.size / MB:.0f} MB, sha256 {source.sha256[:16]}…;"
            f" fixity {'intact' if source.verify_fixity().ok else 'FAILED'};"
            f" text layer: {'yes' if source.has_text_layer else 'none (over the limit)'}"
        )

        # The longest file that still gets a text layer: the most memory archiving takes.
        limit = settings.SCHOLION_MAX_TEXT_BYTES
        at_limit = data_dir / "at-limit.txt"
        write_big_file(at_limit, limit)
        print(f"\nOne plain-text file at the text-layer limit ({limit / MB:.0f} MB):")

        def with_text_layer() -> None:
            archived = archive_chunks(
                chunks_of(at_limit), filename="at-limit.txt", declared_type="text/plain"
            )
            assert archived.created and archived.source.has_text_layer

        measured("full archive (+ text layer, index)", limit, with_text_layer)
        connection.close()
    finally:
        teardown_django(original_db)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
