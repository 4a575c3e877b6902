"""A small website on 127.0.0.1 for the capture tests: each test says what its pages answer,
and can change a page between two captures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    body: bytes = b""
    status: int = 200
    headers: list[tuple[str, str]] = field(
        default_factory=lambda: [("Content-Type", "text/html; charset=utf-8")]
    )
    # Seconds between bytes: a server that trickles its page.
    trickle: float = 0.0


def redirect(location: str, status: int = 302) -> Answer:
    return Answer(status=status, headers=[("Location", location)])


class Website:
    """Pages by path; every request seen, as (path, User-Agent)."""

    def __init__(self) -> None:
        self.pages: dict[str, Answer] = {}
        self.seen: list[tuple[str, str | None]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - the base class's name
                pass

            def do_GET(self):  # noqa: N802 - the base class's name
                site.seen.append((self.path, self.headers.get("User-Agent")))
                answer = site.pages.get(self.path, Answer(b"not here", status=404))
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if not answer.trickle:
                    self.wfile.write(answer.body)
                    return
                try:
                    for byte in answer.body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(answer.trickle)
                except OSError:
                    pass  # the fetcher gave up

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"


@contextmanager
def website() -> Iterator[Website]:
    site = Website()
    thread = threading.Thread(target=site.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.server.shutdown()
        site.server.server_close()
