"""The guarded fetcher and the WARC of one capture, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured
from warcio.archiveiterator import ArchiveIterator

from archive.capture import CaptureError
from archive.capture.addresses import NOT_PUBLIC, PRIVATE_NETWORK
from archive.capture.fetch import capture
from archive.capture.warc import write_warc

PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Wire — story</title></head>"
    "<body><p>Bytes kept as sent: \u00e9\u2014\u00fc</p></body></html>"
).encode() + b"\r\n\x00\xff trailing bytes a decoder would mangle\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str | None]]  # (path, Host header), set per server

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):  # noqa: N802 - the base class's name
        self.seen.append((self.path, self.headers.get("Host")))
        path = self.path
        if path == "/page":
            self.send_page(PAGE)
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(PAGE), 50):
                piece = PAGE[start : start + 50]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/gzip":
            self.send_page(gzip.compress(PAGE), ("Content-Encoding", "gzip"))
        elif path == "/gzip-bomb":
            self.send_page(gzip.compress(b"\0" * 1024 * 1024), ("Content-Encoding", "gzip"))
        elif path == "/brotli":
            self.send_page(b"\x1b\x00\x00", ("Content-Encoding", "br"))
        elif path == "/r1":
            self.redirect(302, "/r2")
        elif path == "/r2":
            self.redirect(301, f"http://127.0.0.1:{self.port}/page")
        elif path.startswith("/loop/"):
            self.redirect(302, f"/loop/{int(path.rsplit('/', 1)[1]) + 1}")
        elif path == "/to-private":
            self.redirect(302, "http://10.0.0.1/admin")
        elif path == "/to-metadata":
            self.redirect(307, "http://169.254.169.254/latest/meta-data/")
        elif path == "/to-ipv6-loopback":
            self.redirect(302, f"http://[::1]:{self.port}/page")
        elif path == "/missing":
            self.send_page(b"not here", status=404)
        elif path == "/big-declared":
            self.send_page(b"x" * 5000)
        elif path == "/big":
            # No length declared: the body ends when the connection closes.
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"y" * 100)
        elif path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"only the start")
            self.close_connection = True
        elif path == "/chunked-cut":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"20\r\nonly the start")
            self.close_connection = True
        elif path == "/not-http":
            self.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n")
            self.close_connection = True
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.trickle(b"z" * 1000)
        elif path == "/trickle-headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self.trickle(b"X-Slow: " + b"s" * 1000)
        else:
            self.send_page(b"unknown", status=500)

    @property
    def port(self) -> int:
        return self.connection.getsockname()[1]

    def send_page(self, body, *headers, status=200):
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, status, location):
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def trickle(self, data):
        try:
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass  # the fetcher gave up, as it should


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    handler = type("RecordingHandler", (Handler,), {"seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def seen(server: ThreadingHTTPServer) -> list[tuple[str, str | None]]:
    return server.RequestHandlerClass.seen  # type: ignore[attr-defined]


def url(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_port}{path}"


@pytest.fixture
def allow_local(settings):
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.SCHOLION_CAPTURE_TIMEOUT = 5


@pytest.fixture
def no_allowance(settings):
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = []


@pytest.fixture
def connections(monkeypatch) -> list[object]:
    """Every address the fetcher tries to connect to; no connection is actually made."""
    attempts: list[object] = []

    def refuse(sock, address):
        attempts.append(address)
        raise ConnectionRefusedError

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def test_page_bytes_are_kept_exactly_as_the_server_sent_them(server, allow_local):
    with capture(url(server, "/page")) as result:
        body = result.original.read()
        provenance = result.provenance()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(PAGE).hexdigest()
    assert provenance["url_requested"] == url(server, "/page")
    assert provenance["url_final"] == url(server, "/page")
    assert provenance["redirects"] == []
    assert provenance["status"] == 200
    assert ["Content-Type", "text/html; charset=utf-8"] in provenance["headers"]
    assert provenance["server_ip"] == "127.0.0.1"
    assert provenance["fetched_at"]
    assert provenance["software"]["name"] == "Scholion"
    assert provenance["software"]["user_agent"].startswith("Scholion/")


def test_chunked_body_is_kept_after_transfer_decoding(server, allow_local):
    with capture(url(server, "/chunked")) as result:
        assert result.original.read() == PAGE
        warc = write_warc(result)
    response = next(r for r in ArchiveIterator(warc) if r.rec_type == "response")
    assert response.http_headers.get_header("Transfer-Encoding") is None
    assert response.content_stream().read() == PAGE


def test_compressed_answer_keeps_server_bytes_in_warc_and_page_as_original(server, allow_local):
    with capture(url(server, "/gzip")) as result:
        assert result.original.read() == PAGE
        assert result.final.body.read() == gzip.compress(PAGE)
        warc = write_warc(result)
    assert seen(server) == [("/gzip", f"127.0.0.1:{server.server_port}")]
    response = next(r for r in ArchiveIterator(warc) if r.rec_type == "response")
    assert response.http_headers.get_header("Content-Encoding") == "gzip"
    assert response.content_stream().read() == PAGE


def test_redirects_are_followed_recorded_and_written_to_the_warc(server, allow_local):
    asked = url(server, "/r1")
    with capture(asked) as result:
        assert result.original.read() == PAGE
        provenance = result.provenance()
        warc = write_warc(result)
    assert provenance["url_requested"] == asked
    assert provenance["url_final"] == url(server, "/page")
    assert provenance["redirects"] == [
        {"url": asked, "status": 302, "location": "/r2"},
        {"url": url(server, "/r2"), "status": 301, "location": url(server, "/page")},
    ]

    # Reading every payload through with digest checks on proves the records' digests are right.
    records = []
    for record in ArchiveIterator(warc, check_digests="raise"):
        record.content_stream().read()
        records.append(record)
    assert records[0].rec_type == "warcinfo"
    exchanges = [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI")) for r in records[1:]]
    assert exchanges == [
        ("response", asked),
        ("request", asked),
        ("response", url(server, "/r2")),
        ("request", url(server, "/r2")),
        ("response", url(server, "/page")),
        ("request", url(server, "/page")),
    ]
    assert {r.rec_headers.get_header("WARC-IP-Address") for r in records[1:]} == {"127.0.0.1"}
    responses = [r for r in records if r.rec_type == "response"]
    assert [r.http_headers.get_statuscode() for r in responses] == ["302", "301", "200"]
    assert responses[0].http_headers.get_header("Location") == "/r2"


def test_warc_records_read_back_with_the_page_and_the_request_sent(server, allow_local):
    with capture(url(server, "/page")) as result:
        warc = write_warc(result)
    records = {}
    for record in ArchiveIterator(warc):
        records[record.rec_type] = (record, record.content_stream().read())
    response, payload = records["response"]
    request, _ = records["request"]
    assert hashlib.sha256(payload).hexdigest() == hashlib.sha256(PAGE).hexdigest()
    assert request.http_headers.protocol == "GET"
    assert request.http_headers.get_header("Host") == f"127.0.0.1:{server.server_port}"
    assert request.rec_headers.get_header("WARC-Concurrent-To") == response.rec_headers.get_header(
        "WARC-Record-ID"
    )


REFUSED = [
    ("http://10.1.2.3/", PRIVATE_NETWORK),
    ("http://172.16.0.1/", PRIVATE_NETWORK),
    ("http://172.31.255.254/", PRIVATE_NETWORK),
    ("http://192.168.1.1/", PRIVATE_NETWORK),
    ("http://169.254.169.254/latest/meta-data/", PRIVATE_NETWORK),
    ("http://100.64.0.1/", PRIVATE_NETWORK),
    ("http://224.0.0.1/", NOT_PUBLIC),
    ("http://240.0.0.1/", NOT_PUBLIC),
    ("http://0.0.0.0/", NOT_PUBLIC),
    ("http://[::1]/", PRIVATE_NETWORK),
    ("http://[::]/", NOT_PUBLIC),
    ("http://[fd00::1]/", PRIVATE_NETWORK),
    ("http://[fe80::1]/", PRIVATE_NETWORK),
    ("http://[ff02::1]/", NOT_PUBLIC),
    ("http://[::ffff:10.0.0.1]/", PRIVATE_NETWORK),
    ("http://[::ffff:169.254.169.254]/", PRIVATE_NETWORK),
    ("http://[64:ff9b::a9fe:a9fe]/", PRIVATE_NETWORK),  # NAT64 form of 169.254.169.254
    ("http://[64:ff9b::7f00:1]/", PRIVATE_NETWORK),  # NAT64 form of 127.0.0.1
    ("http://[2002:c0a8:101::1]/", PRIVATE_NETWORK),  # 6to4 form of 192.168.1.1
]
# Loopback, spelled many ways, at the test server's port: it must see no request either.
REFUSED_LOOPBACK = [
    "http://127.0.0.1:{port}/page",
    "http://127.1.2.3:{port}/page",
    "http://2130706433:{port}/page",
    "http://0x7f.1:{port}/page",
    "http://0177.0.0.1:{port}/page",
    "http://localhost:{port}/page",
    "http://localhost.:{port}/page",
    "http://LOCALHOST:{port}/page",
    "http://anything.localhost:{port}/page",
    "http://[::ffff:127.0.0.1]:{port}/page",
    "http://[::1]:{port}/page",
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_addresses_off_the_public_internet_are_refused_before_connecting(
    address, reason, no_allowance, connections
):
    with pytest.raises(CaptureError) as refused:
        capture(address)
    assert refused.value.reason == reason
    assert connections == []


@pytest.mark.parametrize("address", REFUSED_LOOPBACK)
def test_loopback_in_any_spelling_is_refused_and_never_reached(address, server, no_allowance):
    with pytest.raises(CaptureError) as refused:
        capture(address.format(port=server.server_port))
    assert refused.value.reason == PRIVATE_NETWORK
    assert "127.0.0.1" not in refused.value.reason
    assert seen(server) == []


@pytest.mark.parametrize(
    "address", ["ftp://example.org/file", "file:///etc/passwd", "gopher://example.org/", "//x"]
)
def test_only_http_and_https_can_be_captured(address, connections):
    with pytest.raises(CaptureError) as refused:
        capture(address)
    assert refused.value.reason == "only http and https addresses can be captured"
    assert connections == []


def test_a_name_with_any_private_address_is_refused(monkeypatch, no_allowance, connections):
    def resolve(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(CaptureError) as refused:
        capture("http://two-faced.example/")
    assert refused.value.reason == PRIVATE_NETWORK
    assert "10.0.0.7" not in str(refused.value)
    assert connections == []


@pytest.mark.parametrize(
    "path", ["/to-private", "/to-metadata", "/to-ipv6-loopback"], ids=lambda p: p[1:]
)
def test_redirect_to_a_refused_address_is_refused(path, server, allow_local):
    with pytest.raises(CaptureError) as refused:
        capture(url(server, path))
    assert refused.value.reason == PRIVATE_NETWORK
    assert seen(server) == [(path, f"127.0.0.1:{server.server_port}")]


def test_dns_rebinding_cannot_turn_a_checked_public_address_into_loopback(
    monkeypatch, server, allow_local, connections
):
    # Loopback is allowed here, so only a second lookup could reach the server.
    lookups = []

    def rebinding(host, port, *args, **kwargs):
        lookups.append(host)
        ip = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(CaptureError):
        capture(f"http://rebind.example:{server.server_port}/page")
    assert lookups == ["rebind.example"]
    assert connections == [("93.184.216.34", server.server_port)]
    assert seen(server) == []


def test_each_hop_is_resolved_once_and_sent_with_its_own_host_name(
    monkeypatch, server, allow_local
):
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def resolve(host, port, *args, **kwargs):
        lookups.append(host)
        if host == "news.example":
            host = "127.0.0.1"
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    asked = f"http://news.example:{server.server_port}/r1"
    with capture(asked) as result:
        assert result.original.read() == PAGE
        warc = write_warc(result)
    assert lookups == ["news.example", "news.example", "127.0.0.1"]
    host = f"news.example:{server.server_port}"
    assert seen(server) == [
        ("/r1", host),
        ("/r2", host),
        ("/page", f"127.0.0.1:{server.server_port}"),
    ]
    records = [r for r in ArchiveIterator(warc) if r.rec_type == "response"]
    assert records[0].rec_headers.get_header("WARC-Target-URI") == asked
    assert records[0].rec_headers.get_header("WARC-IP-Address") == "127.0.0.1"


@pytest.mark.parametrize("path", ["/trickle", "/trickle-headers"])
def test_a_trickling_server_is_stopped_by_the_time_limit(path, server, allow_local, settings):
    settings.SCHOLION_CAPTURE_TIMEOUT = 1
    with pytest.raises(CaptureError) as stopped:
        capture(url(server, path))
    assert stopped.value.reason == "the server took longer than 1 s"


@pytest.mark.parametrize("path", ["/big", "/big-declared"])
def test_an_oversized_body_is_stopped_at_the_limit(path, server, allow_local, settings):
    settings.SCHOLION_MAX_UPLOAD_BYTES = 1024
    with pytest.raises(CaptureError) as stopped:
        capture(url(server, path))
    assert stopped.value.reason == "the page is larger than 1 KiB"


def test_a_compressed_page_is_held_to_the_limit_once_decompressed(server, allow_local, settings):
    settings.SCHOLION_MAX_UPLOAD_BYTES = 64 * 1024
    with pytest.raises(CaptureError) as stopped:
        capture(url(server, "/gzip-bomb"))
    assert stopped.value.reason == "the page is larger than 64 KiB"


def test_a_compression_that_cannot_be_read_is_a_failure(server, allow_local):
    with pytest.raises(CaptureError) as failed:
        capture(url(server, "/brotli"))
    assert failed.value.reason == "the server sent the page compressed as br, which cannot be read"


def test_the_size_limit_is_named_as_a_person_would(server, allow_local, settings):
    settings.SCHOLION_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
    with capture(url(server, "/big-declared")) as result:
        assert result.final.body_size == 5000
    settings.SCHOLION_MAX_UPLOAD_BYTES = 4096
    with pytest.raises(CaptureError, match="^the page is larger than 4 KiB$"):
        capture(url(server, "/big-declared"))


def test_a_missing_page_is_reported_in_plain_words(server, allow_local):
    with pytest.raises(CaptureError) as failed:
        capture(url(server, "/missing"))
    assert failed.value.reason == "the server answered 404"


@pytest.mark.parametrize("path", ["/truncated", "/chunked-cut"])
def test_a_page_cut_short_is_a_failure_not_a_capture(path, server, allow_local):
    with pytest.raises(CaptureError) as failed:
        capture(url(server, path))
    assert failed.value.reason == "the server stopped before sending the whole page"


def test_an_answer_that_is_not_http_is_a_failure(server, allow_local):
    with pytest.raises(CaptureError) as failed:
        capture(url(server, "/not-http"))
    assert failed.value.reason == "the server's answer was not valid HTTP"


def test_too_many_redirects_are_refused(server, allow_local):
    with pytest.raises(CaptureError) as failed:
        capture(url(server, "/loop/0"))
    assert failed.value.reason == "the page redirected more than 10 times"
    assert [path for path, _ in seen(server)] == [f"/loop/{n}" for n in range(11)]


def test_ten_redirects_are_followed(server, allow_local, monkeypatch):
    # /loop/n redirects to /loop/n+1; ten hops from /loop/0 reach /loop/10, served as a page.
    def do_get(handler):
        handler.seen.append((handler.path, handler.headers.get("Host")))
        if handler.path == "/loop/10":
            handler.send_page(PAGE)
        else:
            handler.redirect(302, f"/loop/{int(handler.path.rsplit('/', 1)[1]) + 1}")

    monkeypatch.setattr(server.RequestHandlerClass, "do_GET", do_get)
    with capture(url(server, "/loop/0")) as result:
        assert len(result.redirects) == 10
        assert result.original.read() == PAGE


def test_a_server_that_is_not_listening_is_reported_without_its_address(allow_local):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CaptureError) as failed:
        capture(f"http://127.0.0.1:{port}/")
    assert failed.value.reason == "the server could not be reached"


def test_unsafe_characters_in_the_address_are_percent_encoded(server, allow_local):
    with pytest.raises(CaptureError):
        capture(url(server, "/a page/é?q=ü x"))
    assert [path for path, _ in seen(server)] == ["/a%20page/%C3%A9?q=%C3%BC%20x"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for secure.example, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/CN=secure.example", "-addext", "subjectAltName=DNS:secure.example"]
        + ["-keyout", key, "-out", cert],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate, monkeypatch) -> Iterator[tuple[ThreadingHTTPServer, list[str | None]]]:
    """The test server over TLS, recording the name each client asked for (SNI)."""
    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    handler = type("RecordingHandler", (Handler,), {"seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    real_getaddrinfo = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host.endswith(".example"):
            host = "127.0.0.1"
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    yield httpd, server_names
    httpd.shutdown()
    httpd.server_close()


def test_https_connects_to_the_checked_address_with_the_urls_name(
    tls_server, certificate, allow_local, monkeypatch
):
    # OpenSSL reads the trusted certificates from SSL_CERT_FILE when a default context is made.
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    httpd, server_names = tls_server
    with capture(f"https://secure.example:{httpd.server_port}/page") as result:
        assert result.original.read() == PAGE
        assert result.provenance()["server_ip"] == "127.0.0.1"
    assert server_names == ["secure.example"]
    assert seen(httpd) == [("/page", f"secure.example:{httpd.server_port}")]


def test_https_certificate_is_checked_against_the_urls_name(
    tls_server, certificate, allow_local, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    httpd, _ = tls_server
    with pytest.raises(CaptureError) as refused:
        capture(f"https://other.example:{httpd.server_port}/page")
    assert refused.value.reason == "the server's certificate could not be verified"
    assert seen(httpd) == []


def test_https_certificate_must_be_trusted(tls_server, allow_local):
    httpd, _ = tls_server
    with pytest.raises(CaptureError) as refused:
        capture(f"https://secure.example:{httpd.server_port}/page")
    assert refused.value.reason == "the server's certificate could not be verified"
    assert seen(httpd) == []


def test_a_malformed_allowance_stops_with_a_clear_error(settings):
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = ["10.0.0.0/33"]
    with pytest.raises(ImproperlyConfigured, match="SCHOLION_CAPTURE_ALLOWED_NETWORKS"):
        capture("http://10.0.0.1/")


def test_an_allowance_lets_through_only_its_own_range(server, settings, connections):
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with pytest.raises(CaptureError) as refused:
        capture(f"http://127.0.0.2:{server.server_port}/page")
    assert refused.value.reason == PRIVATE_NETWORK
    assert connections == []


def test_a_name_whose_lookup_never_answers_is_given_up_in_bounded_time(monkeypatch, connections):
    from archive.capture import addresses

    never = threading.Event()

    def hang(host, port, *args, **kwargs):
        never.wait(30)
        raise socket.gaierror("gave up")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    monkeypatch.setattr(addresses, "DNS_TIMEOUT", 0.3)
    started = time.monotonic()
    with pytest.raises(CaptureError) as refused:
        capture("http://silent-dns.example/")
    never.set()
    assert refused.value.reason == "looking up the server's name took too long"
    assert time.monotonic() - started < 3
    assert connections == []
