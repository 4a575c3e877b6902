"""Scholion settings: everything a deployment changes comes from environment variables.

Each variable is read through a small typed helper that fails loudly on a malformed value,
so a typo in a deployment stops the process at start-up instead of running half-configured.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise ImproperlyConfigured(f"Set the environment variable {name}.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use 1/0, true/false, yes/no.")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
DATA_DIR = Path(env_str("SCHOLION_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it (e.g. `python -c 'import secrets;"
            " print(secrets.token_urlsafe(50))'`), or set DEBUG=1 for development."
        )
    # Development only: generate one key and keep it, so sessions survive restarts.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "taggit",
    "django_tasks",
    "django_tasks_db",
    "archive",
    "annotations",
    "axes",
    "accounts",
    "search",
    "exports",
]

MIDDLEWARE = [
    "config.ops.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Above CsrfViewMiddleware: process_view hooks run in this list's order, and the token
    # middleware must mark a token request exempt before the CSRF check looks. Being above
    # AuthenticationMiddleware does not matter: every middleware's request phase (which sets
    # request.user) has run before the first process_view, which waits for URL resolution.
    "accounts.middleware.BearerTokenMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite in the data directory unless DATABASE_URL says otherwise. A connection
# serves the requests of a minute (DATABASE_CONN_MAX_AGE seconds; 0: one per request), and is
# checked before each request that reuses it: a new connection starts with empty caches (a
# new PostgreSQL backend, SQLite's page cache), which a search page felt (bench/NOTES.md).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'scholion.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside a writer; IMMEDIATE takes the write lock at BEGIN so
    # concurrent writers queue on the busy timeout instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "PRAGMA foreign_keys=ON;"
            "PRAGMA busy_timeout=30000;"
        ),
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "SCHOLION_PG_JIT_OFF", True
):
    # PostgreSQL without JIT compilation: a page's statements run in milliseconds, and compiling
    # the ones the planner prices high (a search that counts thousands of matches) took longer
    # than running them (bench/NOTES.md). A DATABASE_URL that sets options keeps its own.
    # Behind a pooler that refuses startup options it does not track (PgBouncer),
    # SCHOLION_PG_JIT_OFF=0 sends none: set jit = off on the database instead.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Behind a pooler in transaction mode (PgBouncer), a server-side cursor cannot outlive the
    # statement's transaction: iterating exports then reads whole results client-side instead.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool(
        "DATABASE_DISABLE_SERVER_SIDE_CURSORS", False
    )

# The reading page's content is cached per reader, keyed by a revision that database
# triggers bump on every write that could change it (annotations.reading), so a cache needs
# nothing shared between workers to be right: each worker keeps its own, in memory, and
# makes each page once per revision. A shared cache (Redis, Memcached) would let workers
# share pages: point the "reading" alias at it, with a KEY_PREFIX that changes with each
# release (a page's markup changes with the code), and clear it after restoring the
# database from a backup (the revision goes back with it). At most this many pages per
# worker, each about 1.2 KB per annotation shown.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "reading": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "reading",
        "TIMEOUT": 3600,
        "OPTIONS": {"MAX_ENTRIES": env_int("SCHOLION_READING_CACHE_PAGES", 100)},
    },
}

# A collection's export of at most this many bytes is kept once sent (exports.views.download),
# in the "reading" cache: at most SCHOLION_READING_CACHE_PAGES entries per worker.
SCHOLION_EXPORT_CACHE_BYTES = env_int("SCHOLION_EXPORT_CACHE_BYTES", 1024 * 1024)

# A search reads its sources on a helper thread, with a connection of its own, while the
# request reads its passages (search.parallel); this many helpers per process, 0 for none.
SEARCH_HELPER_THREADS = env_int("SCHOLION_SEARCH_THREADS", 2)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # Refuses locked-out logins before the password is even checked; must come first.
    "accounts.throttling.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "archive:source_list"
LOGOUT_REDIRECT_URL = "archive:source_list"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("SCHOLION_STATIC_ROOT", str(BASE_DIR / "staticfiles")))

# Archived originals go through the storage API ("archive" alias), so any Django storage
# backend can hold them; the default keeps them under the data directory.
ARCHIVE_STORAGE_BACKEND = env_str(
    "SCHOLION_ARCHIVE_STORAGE", "archive.blobstore.ContentAddressedFileSystemStorage"
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "archive": {
        "BACKEND": ARCHIVE_STORAGE_BACKEND,
        "OPTIONS": (
            {"location": str(DATA_DIR / "blobs")}
            if ARCHIVE_STORAGE_BACKEND.endswith("FileSystemStorage")
            else {}
        ),
    },
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("SCHOLION_STATIC_MANIFEST", not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
SCHOLION_TMP_DIR = DATA_DIR / "tmp"

# S3 or any S3-compatible store (SCHOLION_ARCHIVE_STORAGE=storages.backends.s3.S3Storage), read
# under django-storages' own names. Credentials left unset come from boto3's usual chain (an
# instance role, say). Downloads are redirects to signed URLs that expire after
# AWS_QUERYSTRING_EXPIRE seconds, never a public URL; a blob read back (fixity, exports) is
# streamed (archive.blobstore.read_chunks); only other reads spill to a temporary file past
# AWS_S3_MAX_MEMORY_SIZE bytes.
if ARCHIVE_STORAGE_BACKEND == "storages.backends.s3.S3Storage":
    AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
    AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL", "") or None
    AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME", "") or None
    AWS_S3_ADDRESSING_STYLE = env_str("AWS_S3_ADDRESSING_STYLE", "") or None
    AWS_S3_SIGNATURE_VERSION = env_str("AWS_S3_SIGNATURE_VERSION", "s3v4")
    AWS_LOCATION = env_str("AWS_LOCATION", "")
    AWS_S3_USE_SSL = env_bool("AWS_S3_USE_SSL", True)
    AWS_S3_VERIFY = env_str("AWS_S3_VERIFY", "") or None  # a CA bundle's path, if not the system's
    AWS_QUERYSTRING_AUTH = True  # the bucket stays private; every URL handed out is signed
    AWS_QUERYSTRING_EXPIRE = env_int("AWS_QUERYSTRING_EXPIRE", 300)
    AWS_S3_MAX_MEMORY_SIZE = env_int("AWS_S3_MAX_MEMORY_SIZE", 1024 * 1024)
    AWS_DEFAULT_ACL = None  # the bucket's own policy: private unless its owner says otherwise
    # A blob's name is its hash: a second write of the name is the same bytes, not a clash.
    AWS_S3_FILE_OVERWRITE = True
    # Uploaded packages wait for the worker in the bucket too: it may run on another machine.
    STORAGES["imports"] = {
        "BACKEND": ARCHIVE_STORAGE_BACKEND,
        "OPTIONS": {"location": "/".join(p for p in (AWS_LOCATION, "imports") if p)},
    }
    # So do exports the worker prepares, for whichever web server their requester asks.
    STORAGES["exports"] = {
        "BACKEND": ARCHIVE_STORAGE_BACKEND,
        "OPTIONS": {"location": "/".join(p for p in (AWS_LOCATION, "exports") if p)},
    }
SCHOLION_MAX_UPLOAD_BYTES = env_int("SCHOLION_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
# A longer file is archived (its bytes, checked and verifiable) without a text layer: it
# cannot be read or annotated in the browser, and archiving it never holds it in memory.
SCHOLION_MAX_TEXT_BYTES = env_int("SCHOLION_MAX_TEXT_BYTES", 16 * 1024 * 1024)
# So is a text layer in more pieces (paragraphs, list items, table cells) than this: the
# reading page sets each one out, and millions of them take minutes to make and hundreds of
# megabytes to send (bench/NOTES.md, "Issue 32: requests within the timeout").
SCHOLION_MAX_TEXT_BLOCKS = env_int("SCHOLION_MAX_TEXT_BLOCKS", 500_000)
# A PDF is read in a child process with these limits (a PDF built to exhaust its reader, a
# decompression bomb, fails alone), and one of more pages is refused before any is read.
SCHOLION_MAX_PDF_PAGES = env_int("SCHOLION_MAX_PDF_PAGES", 2000)
SCHOLION_PDF_SECONDS = env_int("SCHOLION_PDF_SECONDS", 120)
# What an upload's request may spend reading a PDF, a Word document or an EPUB book: a longer one
# is stored at once and read on the worker (a PDF with SCHOLION_PDF_SECONDS), so no upload
# outlasts GUNICORN_TIMEOUT (30 s), which must also cover receiving, hashing and storing the
# file. SCHOLION_PDF_REQUEST_SECONDS is its name from when only a PDF was read this way.
SCHOLION_READ_REQUEST_SECONDS = env_int(
    "SCHOLION_READ_REQUEST_SECONDS", env_int("SCHOLION_PDF_REQUEST_SECONDS", 15)
)
SCHOLION_PDF_MEMORY_BYTES = env_int("SCHOLION_PDF_MEMORY_BYTES", 1024 * 1024 * 1024)
# The memory (address space) the child process that reads a long page, a text, a Word document
# or an EPUB book for an upload's request may take; a file that needs more is read on the worker.
SCHOLION_READ_REQUEST_MEMORY_BYTES = env_int(
    "SCHOLION_READ_REQUEST_MEMORY_BYTES", 1024 * 1024 * 1024
)
# A Word (DOCX) or EPUB file is a zip archive: one that would unpack to more than this, or
# holds more entries, is refused before anything is unpacked (a zip bomb).
SCHOLION_MAX_UNZIPPED_BYTES = env_int("SCHOLION_MAX_UNZIPPED_BYTES", 256 * 1024 * 1024)
SCHOLION_MAX_ZIP_ENTRIES = env_int("SCHOLION_MAX_ZIP_ENTRIES", 10_000)
# Uploads larger than this spill to a temporary file rather than memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = str(SCHOLION_TMP_DIR)
SCHOLION_TMP_DIR.mkdir(parents=True, exist_ok=True)
# Capturing a page by its URL fetches from the server's own network, so addresses on private,
# loopback and link-local networks are refused. An intranet deployment (or a test) lists here the
# ranges it means to allow, as CIDRs: "10.1.0.0/16,192.168.5.0/24".
SCHOLION_CAPTURE_ALLOWED_NETWORKS = env_list("SCHOLION_CAPTURE_ALLOWED_NETWORKS", [])
# Seconds a whole capture may take, however slowly the server trickles its bytes.
SCHOLION_CAPTURE_TIMEOUT = env_int("SCHOLION_CAPTURE_TIMEOUT", 60)
# A Chromium to load each captured page in (e.g. /usr/bin/chromium), for a screenshot and the
# page's images and style sheets in its web archive; empty, captures keep the HTML only. Every
# request it makes goes through the same guarded fetcher. It needs Playwright
# (`pip install scholion[browser]`).
SCHOLION_CAPTURE_BROWSER = env_str("SCHOLION_CAPTURE_BROWSER", "")
# Seconds the browser may take over one page, its resources and the screenshot, after the page
# itself was fetched; past it the browser is stopped and the capture keeps the HTML only.
SCHOLION_CAPTURE_BROWSER_TIMEOUT = env_int("SCHOLION_CAPTURE_BROWSER_TIMEOUT", 30)
# Pasted text is a form field; allow it up to the upload limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = SCHOLION_MAX_UPLOAD_BYTES + 1024 * 1024

# Security headers. Archived HTML is never rendered raw; the CSP forbids inline script.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # A load balancer's health probe may come over plain HTTP, from inside.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a commitment for the whole domain that its owner makes, not a default.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "scholion@localhost")

# Exports and imports of whole collections (exports/). The base URL makes the links in an
# export made on the command line absolute (a web download uses the request's own host).
SCHOLION_BASE_URL = env_str("SCHOLION_BASE_URL", "http://localhost:8000").rstrip("/")
SCHOLION_ORGANIZATION = env_str("SCHOLION_ORGANIZATION", "Scholion")
# A package is refused when its files together would unpack to more than this, or when a large
# file inside it is compressed more than this many times (the mark of a zip bomb).
SCHOLION_IMPORT_MAX_BYTES = env_int("SCHOLION_IMPORT_MAX_BYTES", 20 * 1024 * 1024 * 1024)
SCHOLION_IMPORT_MAX_RATIO = env_int("SCHOLION_IMPORT_MAX_RATIO", 100)
# The largest package the import page accepts (the command line has no such limit). A request
# announcing a longer body is refused before it is read.
SCHOLION_IMPORT_MAX_UPLOAD_BYTES = env_int("SCHOLION_IMPORT_MAX_UPLOAD_BYTES", 2 * 1024**3)
# A Hypothesis file is parsed whole, in memory (exports.hypothesis).
SCHOLION_HYPOTHESIS_MAX_BYTES = env_int("SCHOLION_HYPOTHESIS_MAX_BYTES", 20 * 1024**2)
# Uploaded packages wait here for the worker, which deletes each once its import has finished
# (in the bucket instead, with S3: see STORAGES["imports"]).
SCHOLION_IMPORTS_DIR = DATA_DIR / "imports"
# Exports too long to write within a request (a BagIt package with its originals, a very large
# collection) are written by the worker here (in the bucket with S3: STORAGES["exports"]) and
# kept for their requester this many hours; then `manage.py cleanup` removes them.
SCHOLION_EXPORTS_DIR = DATA_DIR / "exports"
SCHOLION_EXPORT_KEEP_HOURS = env_int("SCHOLION_EXPORT_KEEP_HOURS", 24)
# A download larger than this (annotations, or for a BagIt package or QDA project the bytes of
# its sources) is prepared by the worker rather than written within its request (see
# exports/prepared.py for the figures behind these).
SCHOLION_EXPORT_INLINE_ANNOTATIONS = env_int("SCHOLION_EXPORT_INLINE_ANNOTATIONS", 5_000)
SCHOLION_EXPORT_INLINE_BYTES = env_int("SCHOLION_EXPORT_INLINE_BYTES", 100 * 1024 * 1024)

# A rename, merge or delete of a code carried by more passages than this (that the curator
# may read) is made by the worker, this many passages to a transaction: each passage gets a
# revision, a new version and its search entry again, and about 25,000 took longer than
# GUNICORN_TIMEOUT.
SCHOLION_CODEBOOK_INLINE_PASSAGES = env_int("SCHOLION_CODEBOOK_INLINE_PASSAGES", 2_000)
SCHOLION_CODEBOOK_BATCH_PASSAGES = env_int("SCHOLION_CODEBOOK_BATCH_PASSAGES", 1_000)

# Background work (imports; later, captures) goes through Django's tasks API. The database
# backend keeps the queue in a table, so it needs no other service; `manage.py db_worker` runs
# what is queued (`make demo` and `make serve` start one beside the web server).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Accounts are by invitation (manage.py create_account) unless this is on.
SCHOLION_SELF_REGISTRATION = env_bool("SCHOLION_SELF_REGISTRATION", False)

# Failed logins (django-axes): 5 per account and 5 per client address, then a 15-minute pause.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/lockout.html"
AXES_CLIENT_IP_CALLABLE = "accounts.throttling.client_ip"
# Reverse proxies in front of the app that append to X-Forwarded-For. Deployments run behind
# a TLS-terminating proxy (see SECURE_PROXY_SSL_HEADER), where REMOTE_ADDR is the proxy's
# address: counting failures against it would lock everyone out at once.
SCHOLION_PROXY_COUNT = env_int("SCHOLION_PROXY_COUNT", 0 if DEBUG else 1)

TAGGIT_CASE_INSENSITIVE = True

# One line per request (config.ops.RequestLogMiddleware), and the apps' own lines, on stderr;
# LOG_FORMAT=json makes each a line of JSON for a log collector.
LOG_FORMAT = env_str("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use text or json.")
LOG_LEVEL = env_str("SCHOLION_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.ops.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "loggers": {
        name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
        for name in ("archive", "exports", "scholion")
    },
}
