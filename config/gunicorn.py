"""Gunicorn's settings for `make serve` (`gunicorn -c config/gunicorn.py config.wsgi`), from
the environment, as the rest of the configuration is.

WEB_CONCURRENCY: worker processes (default 3). GUNICORN_TIMEOUT: seconds a request may run
before its worker is killed and restarted (default 30); anything longer belongs on the
background queue (imports, captures, large exports), not in a request.
"""

import os


def _whole(name: str, default: int) -> int:
    value = os.environ.get(name) or str(default)
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{name}={value!r}: give a whole number of at least 1.")
    return int(value)


workers = _whole("WEB_CONCURRENCY", 3)
timeout = _whole("GUNICORN_TIMEOUT", 30)
graceful_timeout = timeout
# Scholion logs each request itself (config.ops.RequestLogMiddleware), with its user and id.
accesslog = None
