"""The WACZ of a capture, checked with py-wacz's own validator, read back with warcio, and
replayed in ReplayWeb.page running in Chromium.

Pages are served from a real HTTP server on 127.0.0.1, captured with the guarded fetcher and
written to a WARC, as a capture does; the WACZ is what a user downloads and opens in
ReplayWeb.page. ReplayWeb.page's built viewer (`ui.js`, `sw.js`) comes from its npm package,
fetched on first use into tests/node/replaywebpage/ (without its dependencies, which it bundles)
and checked against the package's published integrity hash.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import io
import json
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

import pytest
from django.conf import settings as django_settings
from django.test import override_settings
from warcio.archiveiterator import ArchiveIterator

from archive.capture import CaptureError
from archive.capture import wacz as wacz_module
from archive.capture.fetch import Fetched, capture
from archive.capture.wacz import NOT_PACKAGED, TOOK_TOO_LONG, package_wacz, wacz_environment
from archive.capture.warc import write_warc
from tests.conftest import REQUIRE_TOOLS, program

TITLE = "Wire — a story with an accent: é"
PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Wire — story</title></head>"
    "<body><p>Bytes kept as sent: \u00e9\u2014\u00fc</p></body></html>"
).encode() + b"\r\n\x00\xff trailing bytes a decoder would mangle\n"
# Larger than the 64 KiB py-wacz's indexer keeps in memory before spooling a record to a file.
LARGE_PAGE = b"<!doctype html><title>Long</title><p>" + bytes(range(256)) * 1200 + b"</p>"
# The validator's own verdict: `python -m wacz validate` exits 0 even for an invalid WACZ, so
# its `main()` is called for the exit status, and the message is checked as well.
VALIDATE = "import sys; from wacz.main import main; sys.exit(main(sys.argv[1:]))"
VALID = "Validation succeeded, the passed WACZ is valid"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):  # noqa: N802 - the base class's name
        if self.path in ("/", "/page"):
            self.send_page(PAGE)
        elif self.path == "/large":
            self.send_page(LARGE_PAGE)
        elif self.path == "/start":
            self.send_response(302)
            self.send_header("Location", "/page")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_page(b"unknown", status=404)

    def send_page(self, body, status=200):
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_port}{path}"


LOCAL = {"SCHOLION_CAPTURE_ALLOWED_NETWORKS": ["127.0.0.1/32"], "SCHOLION_CAPTURE_TIMEOUT": 5}


@pytest.fixture
def allow_local(settings):
    for name, value in LOCAL.items():
        setattr(settings, name, value)


def package(fetched: Fetched, warc: IO[bytes], title: str = TITLE) -> IO[bytes]:
    """Package as the capture does: the page is the final response, at the time it was fetched."""
    final = fetched.final
    return package_wacz(warc, url=final.url, title=title, captured_at=final.fetched_at)


@dataclass
class Packaged:
    asked: str
    page_url: str
    captured_at: datetime
    warc: bytes
    path: Path

    def read(self, member: str) -> bytes:
        with zipfile.ZipFile(self.path) as package:
            return package.read(member)


@pytest.fixture(scope="module")
def packaged(server, tmp_path_factory) -> Packaged:
    """The WACZ of a page reached through a redirect, packaged once for the tests that read it."""
    asked = url(server, "/start")
    with override_settings(**LOCAL), capture(asked) as fetched:
        warc = write_warc(fetched)
        wacz = package(fetched, warc)
    path = tmp_path_factory.mktemp("wacz") / "capture.wacz"
    path.write_bytes(wacz.read())
    return Packaged(
        asked=asked,
        page_url=fetched.final.url,
        captured_at=fetched.final.fetched_at,
        warc=warc.read(),
        path=path,
    )


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", VALIDATE, "validate", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_valid(path: Path) -> None:
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert VALID in result.stdout


def tmp_dir_contents() -> set[str]:
    return {path.name for path in Path(django_settings.SCHOLION_TMP_DIR).iterdir()}


def test_wacz_of_a_redirected_capture_passes_the_wacz_validator(packaged):
    assert_valid(packaged.path)
    with zipfile.ZipFile(packaged.path) as package:
        names = set(package.namelist())
        stored = {info.filename: info.compress_type for info in package.infolist()}
    assert names == {
        "archive/capture.warc.gz",
        "indexes/index.cdx.gz",
        "indexes/index.idx",
        "pages/pages.jsonl",
        "datapackage.json",
        "datapackage-digest.json",
    }
    # Stored uncompressed, so a replay tool can read a record by its offset.
    assert stored["archive/capture.warc.gz"] == zipfile.ZIP_STORED


def test_the_validator_rejects_a_package_whose_page_list_was_changed(packaged, tmp_path):
    tampered = tmp_path / "tampered.wacz"
    with zipfile.ZipFile(packaged.path) as source, zipfile.ZipFile(tampered, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "pages/pages.jsonl":
                data = data.replace(b'"title": "Wire', b'"title": "Fake')
            out.writestr(info, data)
    result = validate(tampered)
    assert result.returncode != 0
    assert VALID not in result.stdout


def test_pages_jsonl_names_the_page_with_its_time_and_title(packaged):
    lines = [json.loads(line) for line in packaged.read("pages/pages.jsonl").splitlines()]
    header, *pages = lines
    assert header["format"] == "json-pages-1.0"
    assert len(pages) == 1
    page = pages[0]
    assert page["url"] == packaged.page_url == packaged.asked.replace("/start", "/page")
    assert page["ts"] == packaged.captured_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert page["title"] == TITLE


def test_datapackage_lists_every_file_with_its_sha256_and_names_the_page(packaged):
    datapackage = packaged.read("datapackage.json")
    package = json.loads(datapackage)
    resources = {resource["path"]: resource for resource in package["resources"]}
    assert set(resources) == {
        "archive/capture.warc.gz",
        "indexes/index.cdx.gz",
        "indexes/index.idx",
        "pages/pages.jsonl",
    }
    for path, resource in resources.items():
        data = packaged.read(path)
        assert resource["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert resource["bytes"] == len(data)
    assert package["title"] == TITLE
    assert package["mainPageURL"] == packaged.page_url
    assert package["mainPageDate"] == packaged.captured_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = json.loads(packaged.read("datapackage-digest.json"))
    assert digest["hash"] == "sha256:" + hashlib.sha256(datapackage).hexdigest()


def test_warc_inside_is_the_captures_own_with_every_hop_and_the_page_bytes(packaged):
    inside = packaged.read("archive/capture.warc.gz")
    assert inside == packaged.warc
    records = []
    for record in ArchiveIterator(io.BytesIO(inside), check_digests="raise"):
        records.append((record, record.content_stream().read()))
    hops = [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI")) for r, _ in records[1:]]
    assert hops == [
        ("response", packaged.asked),
        ("request", packaged.asked),
        ("response", packaged.page_url),
        ("request", packaged.page_url),
    ]
    page = next(payload for r, payload in records if r.rec_type == "response" and payload)
    assert page == PAGE
    assert hashlib.sha256(page).hexdigest() == hashlib.sha256(PAGE).hexdigest()


def test_index_leads_a_replay_tool_to_the_page_and_the_redirect(packaged):
    lines = gzip.decompress(packaged.read("indexes/index.cdx.gz")).decode().splitlines()
    entries = {}
    for line in lines:
        _key, timestamp, fields = line.split(" ", 2)
        entry = json.loads(fields)
        entries[entry["url"]] = (timestamp, entry)
    assert set(entries) == {packaged.asked, packaged.page_url}
    assert entries[packaged.asked][1]["status"] == "302"
    timestamp, page = entries[packaged.page_url]
    assert page["status"] == "200"
    assert timestamp == packaged.captured_at.strftime("%Y%m%d%H%M%S")
    # What a replay tool does: read the one record at the offset the index gives.
    inside = packaged.read("archive/" + page["filename"])
    start = int(page["offset"])
    record_bytes = inside[start : start + int(page["length"])]
    record = next(iter(ArchiveIterator(io.BytesIO(record_bytes))))
    assert record.rec_headers.get_header("WARC-Target-URI") == packaged.page_url
    assert record.content_stream().read() == PAGE


def test_a_url_with_no_path_is_listed_and_validates(server, allow_local, tmp_path):
    asked = url(server, "")
    with capture(asked) as fetched:
        warc = write_warc(fetched)
        wacz = package(fetched, warc)
    path = tmp_path / "root.wacz"
    path.write_bytes(wacz.read())
    assert_valid(path)
    with zipfile.ZipFile(path) as package_file:
        pages = package_file.read("pages/pages.jsonl").splitlines()
    assert json.loads(pages[1])["url"] == asked


def test_a_title_with_characters_a_command_line_cannot_carry_is_kept_legible(server, allow_local):
    with capture(url(server, "/page")) as fetched:
        warc = write_warc(fetched)
        wacz = package(fetched, warc, title="Nul\x00 and \ud800 lone\n  surrogate")
    with zipfile.ZipFile(wacz) as package_file:
        page = json.loads(package_file.read("pages/pages.jsonl").splitlines()[1])
        datapackage = json.loads(package_file.read("datapackage.json"))
    assert page["title"] == datapackage["title"] == "Nul and ? lone surrogate"


def test_a_page_larger_than_the_indexers_memory_buffer_is_packaged_whole(
    server, allow_local, tmp_path
):
    before = tmp_dir_contents()
    with capture(url(server, "/large")) as fetched:
        warc = write_warc(fetched)
        wacz = package(fetched, warc)
    path = tmp_path / "large.wacz"
    path.write_bytes(wacz.read())
    assert_valid(path)
    with zipfile.ZipFile(path) as package_file:
        inside = package_file.read("archive/capture.warc.gz")
    responses = [
        r.content_stream().read()
        for r in ArchiveIterator(io.BytesIO(inside))
        if r.rec_type == "response"
    ]
    assert responses == [LARGE_PAGE]
    # The working directory is gone; the WACZ lives only in the open temporary file.
    assert tmp_dir_contents() == before


class ConnectionTrap:
    """A listener that counts the connections made to it and answers none of them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        while self.running:
            try:
                connection, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


# What py-wacz pulls in: tldextract, through surt, reading the public suffix list.
PROBE = """
import json, tempfile, tldextract
result = tldextract.extract("http://www.news.example.co.uk/page")
print(json.dumps({"tmp": tempfile.gettempdir(), "suffix": result.suffix, "domain": result.domain}))
"""


def run_probe(environment: dict[str, str], work: Path) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def test_wacz_tool_runs_offline_and_keeps_its_files_in_its_working_directory(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    trap = ConnectionTrap()
    try:
        # Any web request would go through this "proxy", which counts it.
        proxies = {"HTTP_PROXY": trap.url, "HTTPS_PROXY": trap.url}
        found = run_probe({**wacz_environment(work), **proxies}, work)
        assert trap.connections == 0
        # Without the environment's settings the same child would fetch the list: the trap works.
        unguarded = {
            name: value
            for name, value in wacz_environment(work).items()
            if not name.startswith("TLDEXTRACT_")
        }
        run_probe({**unguarded, **proxies}, tmp_path)
        assert trap.connections > 0
    finally:
        trap.close()
    assert found == {"tmp": str(work), "suffix": "co.uk", "domain": "example"}


def test_packaging_is_deterministic_except_for_the_time_it_is_done(server, allow_local):
    with capture(url(server, "/start")) as fetched:
        warc = write_warc(fetched)
        first = package(fetched, warc).read()
        time.sleep(1.1)  # the package records its time to the second
        second = package(fetched, warc).read()
    # Not byte for byte: the ZIP's entry times and the package's creation date differ, so the
    # WACZ's own hash does not identify a capture; the WARC's does.
    assert hashlib.sha256(first).digest() != hashlib.sha256(second).digest()
    with zipfile.ZipFile(io.BytesIO(first)) as one, zipfile.ZipFile(io.BytesIO(second)) as two:
        assert one.namelist() == two.namelist()
        for name in one.namelist():
            if name.startswith("datapackage"):
                continue
            assert one.read(name) == two.read(name), name
        package_one = json.loads(one.read("datapackage.json"))
        package_two = json.loads(two.read("datapackage.json"))
    assert package_one.pop("created") != package_two.pop("created")
    assert package_one == package_two


def test_a_file_that_is_not_a_warc_fails_with_a_capture_error():
    before = tmp_dir_contents()
    not_a_warc = io.BytesIO(b"<html>a page saved by hand, not a web archive</html>")
    with pytest.raises(CaptureError) as failed:
        package_wacz(
            not_a_warc, url="https://example.org/a", title="A", captured_at=datetime.now(UTC)
        )
    assert failed.value.reason == NOT_PACKAGED
    assert str(failed.value) == "the web archive could not be packaged as a WACZ file"
    assert tmp_dir_contents() == before


@pytest.mark.parametrize("wrong", ["url", "time"])
def test_a_page_the_warc_does_not_hold_fails_with_a_capture_error(wrong, server, allow_local):
    with capture(url(server, "/page")) as fetched:
        warc = write_warc(fetched)
    page_url = fetched.final.url
    captured_at = fetched.final.fetched_at
    if wrong == "url":
        page_url = url(server, "/elsewhere")
    else:
        captured_at = datetime(2001, 1, 1, tzinfo=UTC)
    before = tmp_dir_contents()
    with pytest.raises(CaptureError) as failed:
        package_wacz(warc, url=page_url, title="A", captured_at=captured_at)
    assert failed.value.reason == NOT_PACKAGED
    assert tmp_dir_contents() == before


def test_packaging_that_takes_too_long_fails_with_a_capture_error(server, allow_local, monkeypatch):
    with capture(url(server, "/page")) as fetched:
        warc = write_warc(fetched)
    # No Python starts and imports py-wacz in a hundredth of a second.
    monkeypatch.setattr(wacz_module, "PACKAGING_TIMEOUT", 0.01)
    with pytest.raises(CaptureError) as failed:
        package(fetched, warc)
    assert failed.value.reason == TOOK_TOO_LONG


# --- ReplayWeb.page: the viewer a user opens the WACZ in ----------------------------------

REPLAYWEBPAGE = "replaywebpage@2.5.3"
# npm's dist.integrity for that version: the package is used only if its bytes are these.
REPLAYWEBPAGE_INTEGRITY = "sha512-nCj2PSON3BxeSJKE8AsYPyULv0XPZKJWfy4l9PyQre9SqwLZ+WKZVs/sfLqPOQ4GrH+0YkjbwOhr8cSTH08gsQ=="
REPLAYWEBPAGE_DIR = Path(__file__).parent / "node" / "replaywebpage"


def replaywebpage() -> Path:
    """ReplayWeb.page's ui.js and sw.js; missing, the test is skipped locally and fails in CI."""
    if (REPLAYWEBPAGE_DIR / "ui.js").exists() and (REPLAYWEBPAGE_DIR / "sw.js").exists():
        return REPLAYWEBPAGE_DIR
    npm = program("npm", "npm")
    with tempfile.TemporaryDirectory() as download:
        packed = subprocess.run(
            [npm, "pack", REPLAYWEBPAGE, "--pack-destination", download, "--silent"],
            capture_output=True,
            text=True,
            check=False,
        )
        tarballs = list(Path(download).glob("*.tgz"))
        if packed.returncode != 0 or len(tarballs) != 1:
            message = f"npm pack {REPLAYWEBPAGE} failed: {packed.stderr[-500:]}"
            if REQUIRE_TOOLS:
                pytest.fail(message)
            pytest.skip(message)
        data = tarballs[0].read_bytes()
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        assert integrity == REPLAYWEBPAGE_INTEGRITY, f"{REPLAYWEBPAGE} is not the package expected"
        staging = Path(download) / "replaywebpage"
        staging.mkdir()
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for name in ("ui.js", "sw.js", "LICENSE"):
                member = tar.extractfile(f"package/{name}")
                assert member is not None
                (staging / name).write_bytes(member.read())
        shutil.rmtree(REPLAYWEBPAGE_DIR, ignore_errors=True)
        shutil.move(staging, REPLAYWEBPAGE_DIR)
    return REPLAYWEBPAGE_DIR


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def replayed_frame(page, url: str):
    return next((frame for frame in page.frames if frame.url.endswith("mp_/" + url)), None)


def viewer_gave_up(page) -> bool:
    """Whether ReplayWeb.page left its frame with our server's listing of replay/ although its
    service worker is now active. Its frame reloads itself three times, 100 ms apart, waiting
    for the worker to take control; on a loaded machine the worker takes longer, and the frame
    stays as the server answered. Reloading the page then is what a reader would do: the
    worker, active by then, serves the frame."""
    listed = any(
        "/replay/?" in frame.url and frame.title().startswith("Directory listing")
        for frame in page.frames
    )
    return listed and page.evaluate(
        "navigator.serviceWorker.getRegistration('./replay/')"
        ".then(r => Boolean(r && r.active && r.active.state === 'activated'))"
    )


@pytest.mark.browser
@pytest.mark.tools
def test_replaywebpage_replays_the_page_from_the_wacz_alone(
    packaged, _playwright_browser, tmp_path
):
    viewer = replaywebpage()
    site = tmp_path / "site"
    (site / "replay").mkdir(parents=True)
    shutil.copy(viewer / "ui.js", site / "ui.js")
    shutil.copy(viewer / "sw.js", site / "replay" / "sw.js")
    shutil.copy(packaged.path, site / "capture.wacz")
    files = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietFiles, directory=site))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{files.server_port}"
    # Opened at the URL first asked for: the viewer follows the archived redirect to the page.
    (site / "index.html").write_text(
        '<!doctype html><html><head><script src="ui.js"></script></head><body>'
        f'<replay-web-page source="{base}/capture.wacz" url="{packaged.asked}"'
        ' replayBase="./replay/" style="display:block;height:600px"></replay-web-page>'
        "</body></html>",
        encoding="utf-8",
    )
    context = _playwright_browser.new_context()
    elsewhere: list[str] = []

    def only_the_viewer(route):
        # The capture's server is still running: the page must come from the WACZ, not from it.
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_viewer)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(base + "/index.html")
        # A bound on "never replays", not on speed: the viewer's service worker starts slowly
        # on a loaded machine (30 s was once too short there).
        deadline = time.monotonic() + 90
        while (frame := replayed_frame(page, packaged.page_url)) is None:
            assert time.monotonic() < deadline, [f.url for f in page.frames]
            if viewer_gave_up(page):
                page.reload()
            page.wait_for_timeout(200)
        frame.wait_for_selector("text=Bytes kept as sent")
        assert frame.inner_text("p") == "Bytes kept as sent: \u00e9\u2014\u00fc"
        assert f"/{packaged.captured_at.strftime('%Y%m%d%H%M%S')}mp_/" in frame.url
        assert elsewhere == []
        assert errors == []
    finally:
        context.close()
        files.shutdown()
        files.server_close()
