"""The web archive (WARC, ISO 28500) of one capture, written with warcio.

Each exchange, the page and every redirect before it, then every resource a browser loaded with
it (when a browser is configured), becomes a request record and a response record.
`WARC-Target-URI` is the URL as asked for, with its host name, since that is what a replay tool
looks up; `WARC-IP-Address` is the address the fetcher connected to.
"""

from __future__ import annotations

import tempfile
from io import BytesIO
from typing import IO

from django.conf import settings
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from .fetch import Exchange, Fetched, scholion_version, user_agent

# The body is stored after transfer decoding, so a replay tool must not try to de-chunk it.
DROPPED_RESPONSE_HEADERS = frozenset({"transfer-encoding"})


def write_warc(capture: Fetched) -> IO[bytes]:
    """Return a temporary file holding the gzipped WARC of `capture`, positioned at its start."""
    out = tempfile.TemporaryFile(dir=settings.SCHOLION_TMP_DIR)  # noqa: SIM115 - the caller's
    try:
        writer = WARCWriter(out, gzip=True)
        writer.write_record(
            writer.create_warcinfo_record(
                "",
                {
                    "software": f"Scholion {scholion_version()}",
                    "http-header-user-agent": user_agent(),
                    "format": "WARC File Format 1.1",
                },
            )
        )
        # The page first, so that a reader of the WARC meets it before what it loaded.
        for exchange in capture.exchanges + capture.resources:
            _write_exchange(writer, exchange)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def _write_exchange(writer: WARCWriter, exchange: Exchange) -> None:
    date = datetime_to_iso_date(exchange.fetched_at)
    exchange.body.seek(0)
    response = writer.create_warc_record(
        exchange.url,
        "response",
        payload=exchange.body,
        length=exchange.body_size,
        warc_headers_dict={"WARC-Date": date, "WARC-IP-Address": exchange.ip},
        http_headers=StatusAndHeaders(
            f"{exchange.status} {exchange.reason}",
            [(k, v) for k, v in exchange.headers if k.lower() not in DROPPED_RESPONSE_HEADERS],
            protocol=exchange.http_version,
        ),
    )
    request = writer.create_warc_record(
        exchange.url,
        "request",
        payload=BytesIO(b""),
        length=0,
        warc_headers_dict={
            "WARC-Date": date,
            "WARC-IP-Address": exchange.ip,
            "WARC-Concurrent-To": response.rec_headers.get_header("WARC-Record-ID"),
        },
        http_headers=StatusAndHeaders(
            exchange.request_line, exchange.request_headers, is_http_request=True
        ),
    )
    writer.write_record(response)
    writer.write_record(request)
    exchange.body.seek(0)
