"""The program that loads a captured page in headless Chromium, run in a process of its own.

`browser.render` starts it (`python headless.py`, so that it imports neither Django nor the rest
of Scholion) and talks to it in JSON lines: the first line read gives the page and the limits;
then for every request the browser makes, this program writes the request and reads back how to
answer it (a file to fulfil it with, or a refusal), and it never lets the browser answer one by
itself. It ends by writing the screenshot's size, or why there is none.

It runs apart so that `render` can kill it outright at its time limit, whatever the page does, and
so that Playwright's and Chromium's temporary files go where `render` says (TMPDIR, HOME).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import (
    BrowserContext,
    Request,
    Route,
    WebSocketRoute,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

# Headers Chromium computes itself from the body it is given; passing the server's would lie.
FULFIL_DROPPED_HEADERS = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection", "set-cookie"}
)


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def receive() -> dict[str, Any]:
    line = sys.stdin.readline()
    if not line:
        raise SystemExit(1)  # render gave up on us
    message: dict[str, Any] = json.loads(line)
    return message


def answer(route: Route, request: Request) -> None:
    send(
        {
            "request": {
                "url": request.url,
                "method": request.method,
                "accept": request.headers.get("accept"),
                "navigation": request.is_navigation_request(),
                "main_frame": _in_main_frame(request),
            }
        }
    )
    reply = receive()
    try:
        if "path" in reply:
            headers = {
                name.lower(): value
                for name, value in reply["headers"]
                if name.lower() not in FULFIL_DROPPED_HEADERS
            }
            # The body, not the path: given a path, Playwright replaces the server's content
            # type with one guessed from the file's name.
            with open(reply["path"], "rb") as body:
                route.fulfill(status=reply["status"], headers=headers, body=body.read())
        else:
            route.abort("blockedbyclient")
    except PlaywrightError:
        pass  # the page went away meanwhile (closed, or navigated elsewhere)


def _in_main_frame(request: Request) -> bool:
    try:
        return request.frame.parent_frame is None
    except PlaywrightError:
        return False  # a service worker's request has no frame (and service workers are blocked)


def refuse_websocket(websocket: WebSocketRoute) -> None:
    # Not connecting it to the server is what keeps it off the network; closing it tells the page.
    websocket.close(code=1008, reason="Not archived")


def main() -> None:
    config = receive()
    deadline = time.monotonic() + config["seconds"]

    def remaining_ms(most: float | None = None) -> float:
        left = max(1.0, (deadline - time.monotonic()) * 1000)
        return left if most is None else min(left, most * 1000)

    # Launching counts against the time limit too: a slow start is a timeout like any other.
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                config["profile"],
                executable_path=config["chromium"],
                headless=True,
                args=config["args"],
                service_workers="block",
                viewport={"width": config["width"], "height": config["height"]},
                accept_downloads=False,
                timeout=remaining_ms(),
            )
            try:
                photograph(context, config, remaining_ms)
            finally:
                context.close()
    except PlaywrightTimeoutError:
        send({"timeout": True})
    except PlaywrightError as error:
        message = str(error).strip().splitlines()
        if message and "Download is starting" in message[0]:
            send({"failed": "it is a file to download, not a page to show"})
        else:
            send({"failed": message[0] if message else type(error).__name__})


def photograph(
    context: BrowserContext, config: dict[str, Any], remaining_ms: Callable[..., float]
) -> None:
    context.route("**/*", answer)
    context.route_web_socket(re.compile(".*"), refuse_websocket)
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(config["url"], wait_until="load", timeout=remaining_ms())
    # Late images and script-loaded content, for a moment; a page that keeps polling never
    # goes idle, and is photographed as it stands.
    with contextlib.suppress(PlaywrightError):
        page.wait_for_load_state("networkidle", timeout=remaining_ms(config["settle_seconds"]))
    page.set_default_timeout(remaining_ms())
    width, height = page.evaluate(
        "() => [document.documentElement.scrollWidth,"
        " Math.max(document.documentElement.scrollHeight,"
        " document.body ? document.body.scrollHeight : 0)]"
    )
    width = min(max(int(width), 1), config["width"])
    height = min(max(int(height), 1), config["max_height"])
    page.screenshot(
        path=config["screenshot"],
        type="png",
        full_page=True,
        clip={"x": 0, "y": 0, "width": width, "height": height},
        animations="disabled",
        timeout=remaining_ms(),
    )
    send({"done": {"width": width, "height": height}})


if __name__ == "__main__":
    main()
