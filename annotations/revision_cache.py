"""Answers kept under the content revision, so that each is made once per revision per reader.

``ContentRevision`` moves on with every write to what a page or a list shows (database
triggers: sources, collections, memberships, annotations, citations, tags, users' standing).
An answer kept under the revision, the reader and the request that decides it (URL and the
headers it varies on) is therefore never older than the last write and never served to
anyone but the reader it was made for; an entry exists only for an answer that passed the
access check at its revision. Each worker keeps its own, in memory (the "reading" alias in
config/settings.py), so nothing is shared between workers for it to be right.
"""

from __future__ import annotations

import hashlib

from django.core.cache import BaseCache, caches
from django.db import connection
from django.http import HttpRequest

from annotations.models import ContentRevision

# The cache alias (config/settings.py).
REVISION_CACHE = "reading"


def revision_cache() -> BaseCache:
    return caches[REVISION_CACHE]


def revision_cache_key(request: HttpRequest, kind: str, *vary: str) -> str | None:
    """The key of this request's answer of ``kind``, or None for no caching. ``vary`` is
    what else, beyond the reader and the URL, the answer depends on (request headers)."""
    if connection.in_atomic_block:
        # A revision read inside a transaction is that transaction's own, which may yet roll
        # back (and, on PostgreSQL, is bumped only at its commit).
        return None
    # Read before anything the answer shows, the reader included (request.user is loaded on
    # first use, below): an answer made from newer data than its revision is harmless, one
    # made from older data would be served until the next write.
    revision = ContentRevision.current()
    if revision is None:
        return None
    reader = request.user.pk if request.user.is_authenticated else "-"
    # The URL: what is asked, and the scheme and host absolute links are built on.
    where = request.build_absolute_uri()
    digest = hashlib.sha256("|".join([str(reader), where, *vary]).encode()).hexdigest()
    return f"{kind}:{revision}:{digest}"
