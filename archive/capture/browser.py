"""Loading a captured page in headless Chromium: a full-page screenshot, and the page's images,
style sheets and scripts kept in the capture's WARC beside it.

The browser never touches the network. Every request it makes is handed to `answer`, which
refuses it or fetches it with the guarded fetcher (`fetch_resource`: the same address checks and
limits as the page, and a budget for them all); the page itself is answered with the bytes the
capture already kept, not fetched twice. Behind that, Chromium is started unable to resolve any
name or address, so a request that slipped past the routing (one made by the browser itself
rather than the page) fails instead of reaching the network, and service workers and WebSockets
are refused.

Chromium runs under Playwright in a child process (`headless.py`), so that a page that hangs the
browser is stopped by killing that process at the time limit, and so that the browser sees none of
Scholion's environment (database URL, secret key). Its profile and temporary files live in a
directory under SCHOLION_TMP_DIR, removed afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from . import CaptureError
from .fetch import Fetched, ResourceBudget, fetch_resource

logger = logging.getLogger(__name__)

HEADLESS = Path(__file__).with_name("headless.py")
VIEWPORT = {"width": 1280, "height": 800}
# Chromium cannot paint a taller page in one image; a longer page is cut at this height.
MAX_SCREENSHOT_HEIGHT = 16_384
MAX_RESOURCES = 500
# How long, at most, to wait after the page's load event for late images and scripted content.
SETTLE_SECONDS = 3
# Time the browser process gets to stop on its own past its time limit, before it is killed.
GRACE_SECONDS = 5
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--no-pings",
    "--mute-audio",
    "--disable-dev-shm-usage",
    # No name or address resolves, IP literals included: only what `answer` fulfils loads.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    # WebRTC opens UDP sockets by itself, past both the routing and the resolver.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    # A page's scripts cannot take more memory than this.
    "--js-flags=--max-old-space-size=512",
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOT_GET = "only GET requests are made for a captured page"
NAVIGATION = "the page tried to open another page"


@dataclass
class Screenshot:
    """A full-page PNG of the captured page, in a temporary file closed with the capture."""

    file: IO[bytes]
    width: int
    height: int


@dataclass
class Rendering:
    """What the browser made of a captured page.

    `screenshot` is None when no browser is configured (and then `failure` is None too), or when
    it failed; `failure` then says why, in plain words, for the log. `refused` lists the
    resources the page asked for that were not fetched, with the reason for each.
    """

    screenshot: Screenshot | None = None
    failure: str | None = None
    refused: list[tuple[str, str]] = field(default_factory=list)


def render(fetched: Fetched) -> Rendering:
    """Load `fetched` in the configured browser, adding what it fetches to `fetched.resources`
    (for `write_warc`) and returning its screenshot. Never raises for the page's sake: a browser
    that fails or runs out of time leaves the capture as it was, and says why."""
    chromium = settings.SCHOLION_CAPTURE_BROWSER
    if not chromium:
        return Rendering()
    if not os.access(chromium, os.X_OK):
        return Rendering(failure=f"the browser {chromium} could not be found")
    if importlib.util.find_spec("playwright") is None:
        return Rendering(failure="Playwright is not installed (pip install scholion[browser])")
    try:
        with tempfile.TemporaryDirectory(dir=settings.SCHOLION_TMP_DIR, prefix="browser-") as work:
            return _Session(fetched, Path(work), chromium).run()
    except Exception:
        # Whatever went wrong, the page's capture stands without its screenshot.
        logger.exception("Browser capture of %s failed", fetched.final.url)
        return Rendering(failure="the browser failed")


class _Session:
    def __init__(self, fetched: Fetched, work: Path, chromium: str) -> None:
        self.fetched = fetched
        self.work = work
        self.chromium = chromium
        self.seconds = settings.SCHOLION_CAPTURE_BROWSER_TIMEOUT
        self.budget = ResourceBudget(
            count=MAX_RESOURCES, size=settings.SCHOLION_MAX_UPLOAD_BYTES, seconds=self.seconds
        )
        self.rendering = Rendering()
        self.page_served = False
        self.served = 0
        self.timed_out = False

    def run(self) -> Rendering:
        for name in ("home", "tmp", "profile"):
            (self.work / name).mkdir()
        with (self.work / "stderr").open("wb") as stderr:
            process = subprocess.Popen(  # noqa: S603 - our own program, by our own interpreter
                [sys.executable, "-I", str(HEADLESS)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=self._environment(),
                cwd=self.work,
                start_new_session=True,
            )
        timer = threading.Timer(self.seconds + GRACE_SECONDS, self._kill, [process])
        timer.daemon = True
        timer.start()
        try:
            self._converse(process)
            # Time to close Chromium properly; the timer still stands behind it.
            process.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        finally:
            timer.cancel()
            self._kill(process, timed_out=False)
            process.wait()
            assert process.stdin is not None and process.stdout is not None
            process.stdin.close()
            process.stdout.close()
        if self.rendering.screenshot is None and self.rendering.failure is None:
            self.rendering.failure = (
                f"the browser took longer than {self.seconds:g} s"
                if self.timed_out
                else "the browser stopped unexpectedly"
            )
            logger.warning("Browser capture failed: %s\n%s", self.rendering.failure, self._stderr())
        return self.rendering

    def _environment(self) -> dict[str, str]:
        # Nothing of Scholion's own environment; the driver's and Chromium's files stay in here.
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.work / "home"),
            "TMPDIR": str(self.work / "tmp"),
            "XDG_CONFIG_HOME": str(self.work / "home" / ".config"),
            "XDG_CACHE_HOME": str(self.work / "home" / ".cache"),
            "XDG_DATA_HOME": str(self.work / "home" / ".local" / "share"),
            "LANG": "C.UTF-8",
        }

    def _config(self) -> dict[str, Any]:
        args = list(CHROMIUM_ARGS)
        if os.geteuid() == 0:
            # Chromium refuses to run its sandbox as root; run Scholion as a user of its own to
            # keep it.
            args.append("--no-sandbox")
        return {
            "url": self.fetched.final.url,
            "chromium": self.chromium,
            "args": args,
            "profile": str(self.work / "profile"),
            "screenshot": str(self.work / "screenshot.png"),
            "seconds": self.seconds,
            "settle_seconds": SETTLE_SECONDS,
            "max_height": MAX_SCREENSHOT_HEIGHT,
            **VIEWPORT,
        }

    def _converse(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        try:
            self._send(process, self._config())
            while line := process.stdout.readline():
                message = json.loads(line)
                if "request" in message:
                    self._send(process, self._answer(message["request"]))
                elif "done" in message:
                    self._keep_screenshot()
                    return
                elif "timeout" in message:
                    self.timed_out = True
                    return
                elif "failed" in message:
                    reason = message["failed"]
                    self.rendering.failure = f"the browser could not show the page: {reason}"
                    return
        except (OSError, ValueError):
            return  # the process was killed, or said something that is not JSON: it failed

    def _send(self, process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
        assert process.stdin is not None
        process.stdin.write(json.dumps(message).encode() + b"\n")
        process.stdin.flush()

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """How to answer one request of the browser: a file to fulfil it with, or a refusal."""
        # The previous answer's file was read when its request was fulfilled.
        for old in self.work.glob("answer-*"):
            old.unlink()
        url = request["url"]
        if request["method"] != "GET":
            return self._refuse(url, NOT_GET)
        if request["navigation"] and request["main_frame"]:
            if self.page_served:
                return self._refuse(url, NAVIGATION)
            # The first navigation is the page itself: the bytes the capture kept.
            self.page_served = True
            final = self.fetched.final
            return self._fulfil(final.status, final.headers, self.fetched.original)
        try:
            exchange = fetch_resource(self.fetched, url, self.budget, _accept(request["accept"]))
            body = self.fetched.decoded(exchange)
        except CaptureError as error:
            return self._refuse(url, error.reason)
        try:
            return self._fulfil(exchange.status, exchange.headers, body)
        finally:
            exchange.body.seek(0)

    def _fulfil(
        self, status: int, headers: list[tuple[str, str]], body: IO[bytes]
    ) -> dict[str, Any]:
        self.served += 1
        path = self.work / f"answer-{self.served}"
        body.seek(0)
        with path.open("wb") as out:
            shutil.copyfileobj(body, out)
        body.seek(0)
        return {"status": status, "headers": headers, "path": str(path)}

    def _refuse(self, url: str, reason: str) -> dict[str, Any]:
        self.rendering.refused.append((url, reason))
        return {"refuse": reason}

    def _keep_screenshot(self) -> None:
        path = self.work / "screenshot.png"
        file = self.fetched.hold(path.open("rb"))  # still readable once the directory is gone
        size = _png_size(file)
        if size is None:
            self.rendering.failure = "the browser's screenshot is not a PNG image"
            return
        self.rendering.screenshot = Screenshot(file, *size)

    def _kill(self, process: subprocess.Popen[bytes], timed_out: bool = True) -> None:
        if process.poll() is None:
            self.timed_out = self.timed_out or timed_out
            # The whole process group: the program and Playwright's driver.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        # Chromium runs in a session of its own: it quits once the driver's pipe to it closes,
        # or it is killed here, so that nothing is left running or writing in the directory.
        deadline = time.monotonic() + GRACE_SECONDS
        while pids := _browser_pids(self.work):
            if time.monotonic() > deadline:
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def _stderr(self) -> str:
        try:
            return (self.work / "stderr").read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def _browser_pids(work: Path) -> list[int]:
    """The live processes that name `work` on their command line: the browser we launched, its
    helpers (they name the profile), and its crash handler (it names a folder in HOME), which
    leaves the browser's process tree and would outlive it."""
    marker = str(work).encode() + b"/"
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                # A process that has exited and awaits its parent has no command line.
                if marker in cmdline.read():
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _accept(value: str | None) -> str | None:
    # Passed on so that a server choosing an image format by it answers as it would a browser;
    # anything that could not be a plain header value is dropped.
    if value and value.isprintable() and value.isascii() and len(value) < 512:
        return value
    return None


def _png_size(file: IO[bytes]) -> tuple[int, int] | None:
    head = file.read(24)
    file.seek(0)
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height
