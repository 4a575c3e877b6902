"""Loading a captured page in headless Chromium: every request through the guarded fetcher, the
page's resources in the WARC, a full-page screenshot, and a browser that cannot hang a capture.

Pages are served by real HTTP servers on 127.0.0.1 (allowed) and 127.0.0.2 (not allowed); each
server records every request it gets, which is how the tests see what reached the network.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from warcio.archiveiterator import ArchiveIterator

from archive.capture import browser as capture_browser
from archive.capture.addresses import PRIVATE_NETWORK
from archive.capture.browser import NAVIGATION, NOT_GET, Rendering, render
from archive.capture.fetch import Fetched, capture, user_agent
from archive.capture.warc import write_warc

from .conftest import CHROMIUM, REQUIRE_BROWSER

BACKGROUND = (31, 122, 58)  # set by the style sheet
IMAGE_COLOUR = (200, 30, 40)  # the image's one colour
PAGE_HEIGHT = 1500  # set by the style sheet: taller than the window, so the screenshot is full-page


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A PNG of one colour, written by hand so the server's image owes nothing to the oracle."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


IMAGE = png(40, 40, IMAGE_COLOUR)
STYLE = (
    f"* {{ margin: 0; }} html {{ background: rgb{BACKGROUND}; }}"
    f" main {{ height: {PAGE_HEIGHT}px; }}"
    " img { position: absolute; left: 100px; top: 1200px; }"
).encode()
COMPRESSED_STYLE = b"h1 { background: rgb(250, 200, 0); height: 100px; }"
SCRIPT = b"""
fetch('/more.json').then(r => r.json()).then(d => {
  document.getElementById('more').textContent = d.text;
});
"""


def page(extra: str = "") -> bytes:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Wire story</title>"
        "<link rel='stylesheet' href='/style.css'></head><body><main>"
        "<h1>The story</h1><p id='more'>waiting</p><img src='/pic.png' alt='a red square'>"
        f"{extra}</main><script src='/app.js'></script></body></html>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, str | None]]  # (method, path, User-Agent), set per server
    extra: str = ""  # HTML added to the page, set per test

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):  # noqa: N802 - the base class's name
        self.seen.append(("GET", self.path, self.headers.get("User-Agent")))
        routes = {
            "/": ("text/html; charset=utf-8", page(self.extra)),
            "/style.css": ("text/css", STYLE),
            "/pic.png": ("image/png", IMAGE),
            "/app.js": ("text/javascript", SCRIPT),
            "/more.json": ("application/json", b'{"text": "loaded by the script"}'),
            "/big.png": ("image/png", png(200, 200, IMAGE_COLOUR)[:100] + b"\0" * 2000),
            "/file.bin": ("application/octet-stream", b"\0\1\2 not a page"),
            "/sw.js": ("text/javascript", b"self.addEventListener('fetch', () => {});"),
        }
        if self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass  # the fetcher gave up, as it should
        elif self.path == "/moved.css":
            self.send_response(302)
            self.send_header("Location", "/style.css")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/compressed.css":
            # Sent compressed although the fetcher asked for it plain, as some servers do.
            self.send(
                200, "text/css", gzip.compress(COMPRESSED_STYLE), ("Content-Encoding", "gzip")
            )
        elif self.path in routes:
            self.send(200, *routes[self.path])
        else:
            self.send(404, "text/plain", b"not here")

    def do_POST(self):  # noqa: N802 - the base class's name
        self.seen.append(("POST", self.path, self.headers.get("User-Agent")))
        self.send(204, "text/plain", b"")

    def send(self, status: int, content_type: str, body: bytes, *headers: tuple[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def serve(host: str) -> Iterator[ThreadingHTTPServer]:
    handler = type("RecordingHandler", (Handler,), {"seen": []})
    httpd = ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    yield from serve("127.0.0.1")


@pytest.fixture
def other_server() -> Iterator[ThreadingHTTPServer]:
    """On 127.0.0.2: loopback too, but outside the allowance."""
    yield from serve("127.0.0.2")


def seen(server: ThreadingHTTPServer) -> list[tuple[str, str, str | None]]:
    return server.RequestHandlerClass.seen  # type: ignore[attr-defined]


def url(server: ThreadingHTTPServer, path: str = "/") -> str:
    host = server.server_address[0]
    assert isinstance(host, str)
    return f"http://{host}:{server.server_port}{path}"


def add_to_page(server: ThreadingHTTPServer, html: str) -> None:
    server.RequestHandlerClass.extra = html  # type: ignore[attr-defined]


@pytest.fixture
def browser(settings):
    if not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(message)
        pytest.skip(message)
    settings.SCHOLION_CAPTURE_BROWSER = CHROMIUM
    settings.SCHOLION_CAPTURE_BROWSER_TIMEOUT = 20
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.SCHOLION_CAPTURE_TIMEOUT = 10


def warc_records(fetched: Fetched) -> list[tuple[str, str, int | None, bytes]]:
    """(type, target URI, HTTP status, payload) of every request and response record."""
    records = []
    for record in ArchiveIterator(write_warc(fetched)):
        if record.rec_type in ("request", "response"):
            status = record.http_headers.get_statuscode() if record.rec_type == "response" else None
            records.append(
                (
                    record.rec_type,
                    record.rec_headers.get_header("WARC-Target-URI"),
                    int(status) if status else None,
                    record.content_stream().read(),
                )
            )
    return records


@pytest.mark.browser
def test_every_request_of_the_browser_goes_through_the_guarded_fetcher(server, browser):
    add_to_page(
        server,
        # A service worker and a WebSocket would each reach the server by themselves.
        "<script>navigator.serviceWorker && navigator.serviceWorker.register('/sw.js');"
        f"try {{ new WebSocket('ws://127.0.0.1:{server.server_port}/socket'); }} catch (e) {{}}"
        "</script>",
    )
    with capture(url(server)) as fetched:
        rendering = render(fetched)
        assert rendering.failure is None
        assert rendering.screenshot is not None
    requests = seen(server)
    paths = [path for _, path, _ in requests]
    assert {agent for _, _, agent in requests} == {user_agent()}
    assert paths.count("/") == 1  # the page is fetched once, by the capture
    assert {"/style.css", "/pic.png", "/app.js", "/more.json"} <= set(paths)
    assert "/sw.js" not in paths
    assert "/socket" not in paths


@pytest.mark.browser
def test_the_warc_holds_the_resources_after_the_page(server, browser):
    with capture(url(server)) as fetched:
        render(fetched)
        records = warc_records(fetched)
    responses = [(uri, status, body) for kind, uri, status, body in records if kind == "response"]
    assert responses[0] == (url(server), 200, page())
    kept = {uri: (status, body) for uri, status, body in responses[1:]}
    assert kept[url(server, "/style.css")] == (200, STYLE)
    assert kept[url(server, "/pic.png")] == (200, IMAGE)
    assert kept[url(server, "/app.js")] == (200, SCRIPT)
    assert kept[url(server, "/more.json")][1] == b'{"text": "loaded by the script"}'
    requests = [uri for kind, uri, _, _ in records if kind == "request"]
    assert sorted(requests) == sorted(uri for uri, _, _ in responses)


@pytest.mark.browser
def test_the_screenshot_is_a_full_page_png_of_the_page_as_styled(server, browser, settings):
    with capture(url(server)) as fetched:
        rendering = render(fetched)
        shot = rendering.screenshot
        assert shot is not None
        image = Image.open(shot.file)
        image.load()
    assert image.format == "PNG"
    assert image.size == (shot.width, shot.height) == (1280, PAGE_HEIGHT)
    rgb = image.convert("RGB")
    assert rgb.getpixel((1000, 50)) == BACKGROUND  # the style sheet was applied
    assert rgb.getpixel((120, 1220)) == IMAGE_COLOUR  # the image was loaded, below the window
    # The browser's profile and files went with it; the screenshot was readable until closed.
    assert not list(settings.SCHOLION_TMP_DIR.glob("browser-*"))
    assert shot.file.closed


@pytest.mark.browser
def test_a_redirected_resource_is_followed_hop_by_hop_through_the_fetcher(server, browser):
    add_to_page(server, "<link rel='stylesheet' href='/moved.css'>")
    with capture(url(server)) as fetched:
        render(fetched)
        records = warc_records(fetched)
    statuses = [(uri, status) for kind, uri, status, _ in records if kind == "response"]
    assert (url(server, "/moved.css"), 302) in statuses
    paths = [path for _, path, _ in seen(server)]
    assert paths.count("/moved.css") == 1
    assert {agent for _, _, agent in seen(server)} == {user_agent()}


@pytest.mark.browser
def test_a_compressed_resource_is_kept_as_sent_and_shown_decompressed(server, browser):
    add_to_page(server, "<link rel='stylesheet' href='/compressed.css'>")
    with capture(url(server)) as fetched:
        rendering = render(fetched)
        shot = rendering.screenshot
        assert shot is not None
        colour = Image.open(shot.file).convert("RGB").getpixel((1000, 50))
        kept = [
            record.raw_stream.read()
            for record in ArchiveIterator(write_warc(fetched))
            if record.rec_type == "response"
            and record.rec_headers.get_header("WARC-Target-URI") == url(server, "/compressed.css")
        ]
    assert colour == (250, 200, 0)
    assert len(kept) == 1 and kept[0].startswith(b"\x1f\x8b")  # gzip, as the server sent it
    assert gzip.decompress(kept[0]) == COMPRESSED_STYLE


@pytest.mark.browser
def test_a_page_gets_no_more_resources_than_its_budget(server, browser, monkeypatch):
    monkeypatch.setattr(capture_browser, "MAX_RESOURCES", 2)
    with capture(url(server)) as fetched:
        rendering = render(fetched)
        assert rendering.screenshot is not None
        assert len(fetched.resources) == 2
    assert len(seen(server)) == 3  # the page and two resources
    assert ("the page asked for more than 2 resources") in {
        reason for _, reason in rendering.refused
    }


@pytest.mark.browser
def test_resources_past_the_size_limit_are_cut_off_and_not_kept(server, browser, settings):
    settings.SCHOLION_MAX_UPLOAD_BYTES = 1024
    add_to_page(server, "<img src='/big.png'>")
    with capture(url(server)) as fetched:
        rendering = render(fetched)
        kept = [exchange.url for exchange in fetched.resources]
    assert rendering.screenshot is not None
    # The limit holds for all the page's resources together, as for each one.
    assert (url(server, "/big.png"), "the page's resources are larger than 1 KiB") in (
        rendering.refused
    )
    assert url(server, "/big.png") not in kept
    assert url(server, "/style.css") in kept


@pytest.mark.browser
def test_a_resource_on_a_refused_address_is_not_fetched(server, other_server, browser):
    secret = url(other_server, "/pic.png")
    metadata = "http://169.254.169.254/latest/meta-data/pic.png"
    add_to_page(server, f"<img src='{secret}'><img src='{metadata}'>")
    with capture(url(server)) as fetched:
        rendering = render(fetched)
        uris = {uri for _, uri, _, _ in warc_records(fetched)}
    assert rendering.screenshot is not None
    assert seen(other_server) == []
    assert (secret, PRIVATE_NETWORK) in rendering.refused
    assert (metadata, PRIVATE_NETWORK) in rendering.refused
    assert secret not in uris and metadata not in uris


@pytest.mark.browser
def test_a_page_may_not_post_or_navigate_away(server, browser):
    add_to_page(
        server,
        "<script>fetch('/collect', {method: 'POST', body: 'x'});"
        "setTimeout(() => { location.href = '/elsewhere'; }, 10);</script>",
    )
    with capture(url(server)) as fetched:
        rendering = render(fetched)
        assert rendering.screenshot is not None
    paths = [(method, path) for method, path, _ in seen(server)]
    assert ("POST", "/collect") not in paths
    assert ("GET", "/elsewhere") not in paths
    assert (url(server, "/collect"), NOT_GET) in rendering.refused
    assert (url(server, "/elsewhere"), NAVIGATION) in rendering.refused


@pytest.mark.browser
@pytest.mark.parametrize(
    "hang",
    [
        "<script>while (true) {}</script>",  # before the page has loaded
        "<script>setTimeout(() => { while (true) {} }, 50);</script>",  # once it has
        "<img src='/trickle'>",  # a resource that never finishes
    ],
)
def test_a_page_that_hangs_the_browser_is_stopped_and_the_html_capture_stands(
    hang, server, browser, settings
):
    settings.SCHOLION_CAPTURE_BROWSER_TIMEOUT = 2
    add_to_page(server, hang)
    started = time.monotonic()
    with capture(url(server)) as fetched:
        rendering = render(fetched)
        elapsed = time.monotonic() - started
        original = fetched.original.read()
        records = warc_records(fetched)
    assert rendering.screenshot is None
    assert rendering.failure == "the browser took longer than 2 s"
    # Not a speed test: only that the limit (2 s, and the grace to kill the browser) holds.
    assert elapsed < 30
    assert original == page(hang)
    assert records[0] == ("response", url(server), 200, page(hang))
    assert not browsers_left_running(settings.SCHOLION_TMP_DIR)
    assert not list(settings.SCHOLION_TMP_DIR.glob("browser-*"))


def browsers_left_running(tmp_dir: Path) -> list[str]:
    """Processes still running that were started for a browser with its files in `tmp_dir`."""
    marker = str(tmp_dir / "browser-").encode()
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                args = cmdline.read()
        except OSError:
            continue
        if marker in args:
            left.append(pid)
    return left


@pytest.mark.browser
def test_a_file_that_is_not_a_page_is_kept_without_a_screenshot(server, browser):
    with capture(url(server, "/file.bin")) as fetched:
        rendering = render(fetched)
        assert fetched.original.read() == b"\0\1\2 not a page"
    assert rendering.screenshot is None
    assert rendering.failure == (
        "the browser could not show the page: it is a file to download, not a page to show"
    )


@pytest.fixture
def tls_server(tmp_path, monkeypatch) -> Iterator[ThreadingHTTPServer]:
    """The test server over TLS as https://secure.example, a name only the fetcher can resolve,
    with a certificate only the fetcher trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/CN=secure.example", "-addext", "subjectAltName=DNS:secure.example"]
        + ["-keyout", key, "-out", cert],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    servers = serve("127.0.0.1")
    httpd = next(servers)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        host = "127.0.0.1" if host == "secure.example" else host
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    yield httpd
    next(servers, None)


@pytest.mark.browser
def test_a_secure_page_is_loaded_through_the_fetcher_alone(tls_server, browser):
    address = f"https://secure.example:{tls_server.server_port}/"
    with capture(address) as fetched:
        rendering = render(fetched)
        shot = rendering.screenshot
        assert shot is not None
        colour = Image.open(shot.file).convert("RGB").getpixel((1000, 50))
        kept = {exchange.url for exchange in fetched.resources}
    assert colour == BACKGROUND
    assert f"https://secure.example:{tls_server.server_port}/style.css" in kept
    assert {agent for _, _, agent in seen(tls_server)} == {user_agent()}


def test_without_a_browser_configured_nothing_is_loaded(server, settings):
    settings.SCHOLION_CAPTURE_BROWSER = ""
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with capture(url(server)) as fetched:
        assert render(fetched) == Rendering()
        assert fetched.resources == []
    assert [path for _, path, _ in seen(server)] == ["/"]


def test_a_browser_that_is_not_there_is_a_reason_not_a_failed_capture(server, settings, tmp_path):
    settings.SCHOLION_CAPTURE_BROWSER = str(tmp_path / "chromium")
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with capture(url(server)) as fetched:
        rendering = render(fetched)
    assert rendering.screenshot is None
    assert rendering.failure == f"the browser {tmp_path / 'chromium'} could not be found"
