"""The WACZ of one capture: its WARC packaged, indexed and checked by webrecorder's py-wacz.

A WACZ (Web Archive Collection Zipped) is a ZIP holding the WARC, a CDXJ index of it, a list of
pages (`pages/pages.jsonl`) and a `datapackage.json` with the hash of every file in it, which
ReplayWeb.page and other web-archive tools open as they are.

py-wacz is run in a child Python process rather than imported: its entry point is its command
line (`main(args)` prints, and exits on a bad argument); its indexer spools every record larger
than 64 KiB to the default temporary directory, which only `TMPDIR` in a fresh process moves
without changing the worker's own `tempfile` settings; tldextract, which it pulls in through
surt, reads where to fetch and cache the public suffix list from the environment when first
imported; and a child can be stopped when it takes too long. The child gets a small environment
of its own: temporary files and its home directory inside a working directory under
SCHOLION_TMP_DIR that is removed afterwards, and the public suffix list from the snapshot
tldextract ships, never fetched or cached.

Packaging is deterministic except for the time it is done: the same WARC, URL, title and time
give the same WARC, index and page list inside, but the ZIP's entry times and the package's
`created` date are the packaging time, so two packagings a second apart differ in their bytes.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from django.conf import settings

from . import CaptureError

logger = logging.getLogger(__name__)

# How long packaging may take. It hashes and indexes files no larger than the upload limit, which
# takes seconds; a child still running after this is stuck.
PACKAGING_TIMEOUT = 120.0
NOT_PACKAGED = "the web archive could not be packaged as a WACZ file"
TOOK_TOO_LONG = "packaging the web archive as a WACZ file took too long"

WARC_NAME = "capture.warc.gz"  # stored in the WACZ as archive/capture.warc.gz
PAGES_NAME = "pages.jsonl"
WACZ_NAME = "capture.wacz"
PAGES_MEMBER = "pages/pages.jsonl"
INDEX_MEMBER = "indexes/index.cdx.gz"
# `python -m wacz` always exits 0, even when validation fails; `main()` returns the real status.
# One child runs both commands (create, then validate what it wrote): starting Python and
# importing py-wacz is most of a small page's packaging time (bench/NOTES.md).
RUN_WACZ = (
    "import sys; from wacz.main import main; cut = sys.argv.index('--then');"
    " sys.exit(main(sys.argv[1:cut]) or main(sys.argv[cut + 1:]))"
)


def package_wacz(warc: IO[bytes], *, url: str, title: str, captured_at: datetime) -> IO[bytes]:
    """Return a temporary file holding the WACZ of `warc`, positioned at its start.

    `url` and `captured_at` name the page, as the WARC records it: the URL of its response record
    (`Fetched.final.url`) and the time of that record (`Fetched.final.fetched_at`). Raises
    CaptureError if py-wacz cannot package the WARC, rejects what it wrote, or does not list the
    page in its index.
    """
    if captured_at.tzinfo is None:
        raise ValueError("captured_at must be an aware datetime")
    title = _printable(title)
    when = captured_at.astimezone(UTC)
    timestamp = when.strftime("%Y%m%d%H%M%S")  # the 14-digit form of the WARC-Date, in seconds
    iso_date = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    with tempfile.TemporaryDirectory(dir=settings.SCHOLION_TMP_DIR, prefix="wacz-") as name:
        work = Path(name).resolve()
        warc.seek(0)
        with (work / WARC_NAME).open("wb") as out:
            shutil.copyfileobj(warc, out)
        warc.seek(0)
        _write_pages(work / PAGES_NAME, url=url, iso_date=iso_date, title=title)
        create = [
            "create",
            WARC_NAME,
            f"--output={WACZ_NAME}",
            # The page list is ours, copied as it is: py-wacz's own would title the page with
            # its URL and give it a random id.
            f"--pages={PAGES_NAME}",
            "--copy-pages",
            "--hash-type=sha256",
            f"--title={title}",
        ]
        # py-wacz adds "/" to a URL with no path before looking for it in the WARC, where such a
        # URL is recorded as it was asked for; the main page is then left out, not the page.
        if urlsplit(url).path:
            # Also makes py-wacz fail if the WARC has no response for this URL at this time.
            create += [f"--url={url}", f"--ts={timestamp}"]
        _run_wacz([*create, "--then", "validate", f"--file={WACZ_NAME}"], work)
        _check_page_indexed(work / WACZ_NAME, url=url, timestamp=timestamp)
        result = tempfile.TemporaryFile(dir=settings.SCHOLION_TMP_DIR)  # noqa: SIM115 - the caller's
        try:
            with (work / WACZ_NAME).open("rb") as wacz:
                shutil.copyfileobj(wacz, result)
        except BaseException:
            result.close()
            raise
    result.seek(0)
    return result


def _printable(title: str) -> str:
    # A title goes on a command line, which cannot carry NUL or a lone surrogate, and into JSON.
    title = title.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return " ".join(title.split())


def _write_pages(path: Path, *, url: str, iso_date: str, title: str) -> None:
    header = {"format": "json-pages-1.0", "id": "pages", "title": "Pages"}
    # A fixed id: the page list, and so the package's hashes, depend only on what is given.
    page = {"id": "page", "url": url, "ts": iso_date, "title": title or url}
    # ASCII JSON, whatever the locale py-wacz reads it with.
    path.write_text(json.dumps(header) + "\n" + json.dumps(page) + "\n", encoding="ascii")


def wacz_environment(work: Path) -> dict[str, str]:
    """The environment py-wacz runs in: no network, no writes outside `work`."""
    environment = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(work),
        "TMPDIR": str(work),
        # An empty cache directory turns tldextract's cache off; no suffix list URLs means it
        # never fetches, and it falls back to the public suffix list it was released with.
        "TLDEXTRACT_CACHE": "",
        "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
        "PYTHONUTF8": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    # A deployment that finds its packages through PYTHONPATH must find py-wacz the same way.
    if "PYTHONPATH" in os.environ:
        environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return environment


def _run_wacz(arguments: list[str], work: Path) -> None:
    command = [sys.executable, "-c", RUN_WACZ, *arguments]
    try:
        completed = subprocess.run(  # noqa: S603 - our own interpreter, arguments as a list
            command,
            cwd=work,
            env=wacz_environment(work),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PACKAGING_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        logger.warning("wacz took longer than %g s", PACKAGING_TIMEOUT)
        raise CaptureError(TOOK_TOO_LONG) from None
    if completed.returncode != 0:
        logger.warning(
            "wacz create or validate failed (exit status %d): %s",
            completed.returncode,
            (completed.stdout + completed.stderr)[-4000:],
        )
        raise CaptureError(NOT_PACKAGED)


def _check_page_indexed(wacz: Path, *, url: str, timestamp: str) -> None:
    # py-wacz's validator checks hashes, not that the page list and index are there and agree
    # (webrecorder/py-wacz#46), and it finds nothing to check when given no --url.
    try:
        with zipfile.ZipFile(wacz) as package:
            pages = package.read(PAGES_MEMBER).decode("utf-8").splitlines()
            index = gzip.decompress(package.read(INDEX_MEMBER)).decode("utf-8").splitlines()
    except (KeyError, OSError, zipfile.BadZipFile, UnicodeDecodeError, EOFError):
        logger.warning("wacz wrote a package without a readable page list or index")
        raise CaptureError(NOT_PACKAGED) from None
    try:
        listed = any(json.loads(line).get("url") == url for line in pages[1:] if line.strip())
        # A CDXJ line: the URL's SURT key, the 14-digit time, then the record's fields as JSON.
        indexed = any(
            parts[1] == timestamp and json.loads(parts[2]).get("url") == url
            for parts in (line.split(" ", 2) for line in index)
            if len(parts) == 3
        )
    except ValueError:
        listed = indexed = False
    if not (listed and indexed):
        logger.warning("wacz did not list and index %s at %s", url, timestamp)
        raise CaptureError(NOT_PACKAGED)
