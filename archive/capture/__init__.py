"""Capturing a live web page by its URL: a guarded fetch and the web archive (WARC) of it.

`fetch.capture(url)` fetches the page, refusing addresses on private networks at every hop, and
returns what it fetched (a `Fetched`: the page's body and provenance); `warc.write_warc(fetched)`
writes the request and response records of the page and of every redirect. When a browser is
configured, `browser.render(fetched)` loads the page in it first, every request of the browser
going through the same fetcher, and returns a screenshot; what it fetched goes into the WARC too.
`wacz.package_wacz(warc, ...)` packages that WARC as a WACZ, which web-archive tools open;
`run.run(capture)` does all of it for one capture and archives the page as a source.
"""

from __future__ import annotations


class CaptureError(Exception):
    """A capture that failed, with a reason in plain words that can be shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
