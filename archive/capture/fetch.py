"""The guarded fetcher: one page, its redirects followed by hand, each hop checked first.

Connection pinning is done here on the standard library's `http.client` rather than with
requests-hardened: that library checks only the first address a name resolves to, allows no
network ranges beyond loopback on or off, and does not tell the caller which address it connected
to, which the WARC and the provenance must record.

The body is kept exactly as the server sent it, after transfer decoding (chunked) only. The
request asks for `Accept-Encoding: identity`, so the bytes sent are the page a browser would save;
a server that compresses anyway has its compressed bytes kept in the WARC, and the capture's
original is the decompressed page.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import socket
import ssl
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any
from urllib.parse import urljoin

from django.conf import settings

from . import CaptureError
from .addresses import Target, check_url

MAX_REDIRECTS = 10
CONNECT_TIMEOUT = 10.0
CHUNK = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
TRUNCATED = "the server stopped before sending the whole page"
PAGE_ACCEPT = "text/html,application/xhtml+xml,*/*;q=0.8"


def scholion_version() -> str:
    try:
        return importlib.metadata.version("scholion")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def user_agent() -> str:
    return f"Scholion/{scholion_version()} (web archive capture)"


@dataclass
class Exchange:
    """One request and its response: the page itself, or one redirect on the way to it."""

    url: str
    ip: str
    fetched_at: datetime
    request_line: str
    request_headers: list[tuple[str, str]]
    http_version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: IO[bytes]  # a temporary file, after transfer decoding
    body_size: int

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), None)


@dataclass
class Fetched:
    """A fetched page: every exchange on the way, and the page's bytes. Close it when done."""

    url_requested: str
    exchanges: list[Exchange]
    original: IO[bytes]  # the page's bytes; the final body unless the server compressed it
    # What a browser loading the page fetched besides it (images, style sheets, scripts), through
    # this same fetcher: see `fetch_resource`.
    resources: list[Exchange] = field(default_factory=list)
    _files: list[IO[bytes]] = field(default_factory=list, repr=False)

    @property
    def final(self) -> Exchange:
        return self.exchanges[-1]

    @property
    def redirects(self) -> list[Exchange]:
        return self.exchanges[:-1]

    def provenance(self) -> dict[str, Any]:
        final = self.final
        return {
            "url_requested": self.url_requested,
            "url_final": final.url,
            "redirects": [
                {"url": hop.url, "status": hop.status, "location": hop.header("Location")}
                for hop in self.redirects
            ],
            "status": final.status,
            "headers": [[name, value] for name, value in final.headers],
            "server_ip": final.ip,
            "fetched_at": final.fetched_at.isoformat(),
            "software": {
                "name": "Scholion",
                "version": scholion_version(),
                "user_agent": user_agent(),
            },
        }

    def decoded(self, exchange: Exchange) -> IO[bytes]:
        """The body of `exchange` as a browser reads it: decompressed, if it was compressed."""
        what = "the page" if exchange is self.final else "a resource of the page"
        limit = settings.SCHOLION_MAX_UPLOAD_BYTES
        return _decoded(exchange, self._files, f"{what} is larger than {format_size(limit)}")

    def hold(self, file: IO[bytes]) -> IO[bytes]:
        """Close `file` with this capture."""
        self._files.append(file)
        return file

    def close(self) -> None:
        for file in self._files:
            file.close()

    def __enter__(self) -> Fetched:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def capture(url: str) -> Fetched:
    """Fetch `url`, following at most MAX_REDIRECTS redirects; raise CaptureError on any failure."""
    timeout = settings.SCHOLION_CAPTURE_TIMEOUT
    watchdog = _Watchdog(timeout)
    files: list[IO[bytes]] = []
    exchanges: list[Exchange] = []
    try:
        current = url.strip()
        while True:
            exchange = _fetch_one(check_url(current), watchdog, files)
            exchanges.append(exchange)
            location = exchange.header("Location")
            if exchange.status in REDIRECT_STATUSES and location:
                if len(exchanges) > MAX_REDIRECTS:
                    raise CaptureError(f"the page redirected more than {MAX_REDIRECTS} times")
                current = urljoin(exchange.url, location.strip())
                continue
            if not 200 <= exchange.status < 300:
                raise CaptureError(f"the server answered {exchange.status}")
            original = _decoded(exchange, files)
            return Fetched(url.strip(), exchanges, original, _files=files)
    except BaseException:
        for file in files:
            file.close()
        raise
    finally:
        watchdog.cancel()


class ResourceBudget:
    """What a browser loading one captured page may fetch besides the page, all together."""

    def __init__(self, count: int, size: int, seconds: float) -> None:
        self.count = count
        self.size = size
        self.seconds = seconds
        self.fetched = 0
        self.spent = 0  # bytes
        self._deadline = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._deadline - time.monotonic()


def fetch_resource(
    fetched: Fetched, url: str, budget: ResourceBudget, accept: str | None = None
) -> Exchange:
    """GET one resource of the page `fetched` (an image, a style sheet, a script) under the same
    guards as the page, charge it to `budget`, and record it in `fetched.resources`.

    Redirects are not followed: the exchange is returned as it is, and the browser asks for the
    next hop, which comes here in turn. Any status is kept, a 404 as much as a 200, since that
    is what the page got. Raise CaptureError if the address is refused or a limit is reached.
    """
    if budget.fetched >= budget.count:
        raise CaptureError(f"the page asked for more than {budget.count} resources")
    if budget.spent >= budget.size:
        raise CaptureError(f"the page's resources are larger than {format_size(budget.size)}")
    seconds = min(budget.remaining(), settings.SCHOLION_CAPTURE_TIMEOUT)
    if seconds <= 0:
        raise CaptureError(f"the page's resources took longer than {budget.seconds:g} s")
    target = check_url(url)
    budget.fetched += 1
    watchdog = _Watchdog(seconds)
    try:
        limit = settings.SCHOLION_MAX_UPLOAD_BYTES
        too_large = f"a resource of the page is larger than {format_size(limit)}"
        if budget.size - budget.spent < limit:
            limit = budget.size - budget.spent
            too_large = f"the page's resources are larger than {format_size(budget.size)}"
        exchange = _fetch_one(
            target,
            watchdog,
            fetched._files,
            limit=limit,
            accept=accept or "*/*",
            any_status=True,
            too_large=too_large,
        )
    finally:
        watchdog.cancel()
    budget.spent += exchange.body_size
    fetched.resources.append(exchange)
    return exchange


def _fetch_one(
    target: Target,
    watchdog: _Watchdog,
    files: list[IO[bytes]],
    *,
    limit: int | None = None,
    accept: str = PAGE_ACCEPT,
    any_status: bool = False,
    too_large: str | None = None,
) -> Exchange:
    request_headers = [
        ("Host", target.host_header),
        ("User-Agent", user_agent()),
        ("Accept", accept),
        ("Accept-Encoding", "identity"),
        ("Connection", "close"),
    ]
    fetched_at = datetime.now(UTC)
    sock = _connect(target, watchdog)
    try:
        # The connection is only a framing of HTTP over the socket we opened to the checked
        # address; given a socket, it never connects (or resolves) by itself.
        connection = http.client.HTTPConnection(target.host, target.port)
        connection.sock = sock
        connection.putrequest("GET", target.path, skip_host=True, skip_accept_encoding=True)
        for name, value in request_headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        exchange = Exchange(
            url=target.url,
            ip=target.ip,
            fetched_at=fetched_at,
            request_line=f"GET {target.path} HTTP/1.1",
            request_headers=request_headers,
            http_version="HTTP/1.0" if response.version == 10 else "HTTP/1.1",
            status=response.status,
            reason=response.reason,
            headers=response.getheaders(),
            body=_temporary_file(files),
            body_size=0,
        )
        wanted = exchange.status in REDIRECT_STATUSES or 200 <= exchange.status < 300
        if wanted or any_status:
            exchange.body_size = _read_body(response, exchange.body, watchdog, limit, too_large)
        return exchange
    except CaptureError:
        raise
    except (OSError, http.client.HTTPException) as error:
        if watchdog.expired:
            raise CaptureError(watchdog.reason) from None
        if isinstance(error, TimeoutError):
            raise CaptureError(watchdog.reason) from None
        if isinstance(error, http.client.IncompleteRead):
            raise CaptureError(TRUNCATED) from None
        if isinstance(error, http.client.HTTPException):
            raise CaptureError("the server's answer was not valid HTTP") from None
        raise CaptureError("the connection to the server was lost") from None
    finally:
        watchdog.watch(None)
        sock.close()


def _connect(target: Target, watchdog: _Watchdog) -> socket.socket:
    family = socket.AF_INET6 if ":" in target.ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        watchdog.watch(sock)
        sock.settimeout(max(0.01, min(CONNECT_TIMEOUT, watchdog.remaining())))
        sock.connect((target.ip, target.port))
        # Reads are stopped at the deadline by the watchdog; this bounds each single wait too.
        sock.settimeout(max(0.01, watchdog.remaining()))
        if target.scheme == "https":
            # The certificate is checked against the name in the URL, not the address.
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
            watchdog.watch(sock)
        return sock
    except ssl.SSLCertVerificationError:
        sock.close()
        raise CaptureError("the server's certificate could not be verified") from None
    except ssl.SSLError:
        sock.close()
        raise CaptureError("a secure connection to the server could not be made") from None
    except OSError:
        sock.close()
        if watchdog.expired:
            raise CaptureError(watchdog.reason) from None
        raise CaptureError("the server could not be reached") from None


def _read_body(
    response: http.client.HTTPResponse,
    out: IO[bytes],
    watchdog: _Watchdog,
    limit: int | None = None,
    too_large: str | None = None,
) -> int:
    limit = settings.SCHOLION_MAX_UPLOAD_BYTES if limit is None else limit
    too_large = too_large or f"the page is larger than {format_size(limit)}"
    declared = response.getheader("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise CaptureError(too_large)
    size = 0
    while True:
        chunk = response.read1(CHUNK)
        # A watchdog that shut the socket down may look like the end of the body.
        if watchdog.expired:
            raise CaptureError(watchdog.reason)
        if not chunk:
            # read1 reports a connection closed early as a plain end; what was promised tells.
            if response.length:
                raise CaptureError(TRUNCATED)
            return size
        size += len(chunk)
        if size > limit:
            raise CaptureError(too_large)
        out.write(chunk)


def _decoded(exchange: Exchange, files: list[IO[bytes]], too_large: str | None = None) -> IO[bytes]:
    exchange.body.seek(0)
    encoding = (exchange.header("Content-Encoding") or "identity").strip().lower()
    if encoding == "identity":
        return exchange.body
    if encoding in ("gzip", "x-gzip"):
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decompressor = zlib.decompressobj()
    else:
        raise CaptureError(
            f"the server sent the page compressed as {encoding}, which cannot be read"
        )
    limit = settings.SCHOLION_MAX_UPLOAD_BYTES
    too_large = too_large or f"the page is larger than {format_size(limit)}"
    out = _temporary_file(files)
    size = 0
    try:
        while chunk := exchange.body.read(CHUNK):
            # Decompressed in bounded steps, so a small body cannot expand in memory unchecked.
            while chunk:
                data = decompressor.decompress(chunk, CHUNK)
                size += len(data)
                if size > limit:
                    raise CaptureError(too_large)
                out.write(data)
                chunk = decompressor.unconsumed_tail
        out.write(decompressor.flush())
    except zlib.error:
        raise CaptureError("the server sent a damaged compressed page") from None
    exchange.body.seek(0)
    out.seek(0)
    return out


def _temporary_file(files: list[IO[bytes]]) -> IO[bytes]:
    file = tempfile.TemporaryFile(dir=settings.SCHOLION_TMP_DIR)  # noqa: SIM115 - closed with the capture
    files.append(file)
    return file


def format_size(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


class _Watchdog:
    """Stops a capture at its total time limit, even while a server trickles bytes.

    A socket timeout bounds each single wait, so a server sending a byte a second would never
    trip it; the watchdog shuts the current socket down when the whole capture's time is up.
    """

    def __init__(self, seconds: float) -> None:
        self.reason = f"the server took longer than {seconds:g} s"
        self.expired = False
        self._deadline = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self._deadline - time.monotonic()

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                self._shut_down()

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shut_down()

    def _shut_down(self) -> None:
        if self._sock is None:
            return
        # The plain socket's shutdown, even for a TLS socket: it only has to wake the reader.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
