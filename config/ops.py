"""What running Scholion for a team needs from every request: a health check for the load
balancer, and one log line per request."""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.functional import SimpleLazyObject
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from archive.blobstore import archive_storage

log = logging.getLogger("scholion.requests")
health_log = logging.getLogger("scholion.health")


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the archive storage answer, 503 otherwise. It reads no
    session and names no error: what failed is logged, for whoever runs the site."""
    checks = {"database": _database_answers(), "storage": _storage_answers()}
    status = 200 if all(checks.values()) else 503
    return JsonResponse({k: "ok" if ok else "failing" for k, ok in checks.items()}, status=status)


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        health_log.exception("Health check: the database does not answer")
        return False


def _storage_answers() -> bool:
    storage = archive_storage()
    try:
        if isinstance(storage, FileSystemStorage):
            # Its directory appears with the first save: there and writable, or made now.
            location = Path(storage.location)
            location.mkdir(parents=True, exist_ok=True)
            if not os.access(location, os.W_OK):
                raise PermissionError(f"{location} is not writable")
        else:
            storage.listdir("")  # S3: the bucket's top level, a few prefixes
    except Exception:
        health_log.exception("Health check: the archive storage does not answer")
        return False
    return True


# A request id a proxy set (X-Request-ID) is kept when it is short and plain; else a new one.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestLogMiddleware:
    """One line per request: method, path, status, milliseconds, user id and request id, which
    the response also carries in X-Request-ID. First in MIDDLEWARE, so that the time is the
    whole request's and static files are logged too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        given = request.headers.get("X-Request-ID", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        user_id = _user_id(request)
        log.info(
            "%s %s %s %.1fms user=%s id=%s",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            user_id or "-",
            request_id,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "user_id": user_id,
                "request_id": request_id,
            },
        )
        return response


def _user_id(request: HttpRequest) -> int | None:
    """The signed-in user's id, when the request already looked it up: logging never costs
    a session read on a request that did not need one."""
    user = request.__dict__.get("_cached_user")  # AuthenticationMiddleware's lookup, once made
    if user is None:
        given = request.__dict__.get("user")
        if given is not None and not isinstance(given, SimpleLazyObject):
            user = given  # set outright by the API token middleware
    return user.pk if user is not None and user.is_authenticated else None


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON (LOG_FORMAT=json): the time, level, logger and
    message, and a request's fields when it is a request's line."""

    FIELDS = ("method", "path", "status", "duration_ms", "user_id", "request_id")
    converter = time.gmtime  # type: ignore[assignment]  # the stubs' signature is narrower

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({f: getattr(record, f) for f in self.FIELDS if hasattr(record, f)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)
