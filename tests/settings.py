"""Test settings: config.settings, read with production-like environment values.

DEBUG stays off, as in production; only what a plain-HTTP test server needs is relaxed, and
every test run gets a fresh data directory.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# Forced, not defaulted: a developer's shell that exports DEBUG=1 for manage.py must not turn
# the production checks (HSTS, TLS behind a proxy, login throttling) off in the tests.
os.environ["DEBUG"] = "0"
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
os.environ.setdefault("SCHOLION_STATIC_MANIFEST", "0")
os.environ["SCHOLION_DATA_DIR"] = tempfile.mkdtemp(prefix="scholion-test-")

from config.settings import *  # noqa: E402, F403
