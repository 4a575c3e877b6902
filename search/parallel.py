"""Two independent reads at once, each on its own database connection.

A search reads sources and passages apart (``search.query.search``): neither waits for the
other, so the sources are read on a helper thread while the request's own thread reads the
passages. The database works on both at once (two PostgreSQL backends; SQLite, which lets
other threads run while it works), and the page waits for the slower half instead of the
sum of both (figures in bench/NOTES.md).

A helper's connection is another session: it sees only what is committed. Inside a
transaction (``atomic``, or autocommit turned off) the reads run in turn on the caller's
connection, which sees the transaction's own writes. They run in turn, too, when every
helper is busy (a helper never makes a page wait for another page) and when
``SEARCH_HELPER_THREADS`` is 0.

Each helper keeps its connection as a request does (``CONN_MAX_AGE``, checked before and
after each read): a new PostgreSQL connection starts with empty caches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings
from django.db import close_old_connections, connection, connections
from django.urls import (
    clear_script_prefix,
    get_script_prefix,
    get_urlconf,
    set_script_prefix,
    set_urlconf,
)

A = TypeVar("A")
B = TypeVar("B")

_lock = threading.Lock()
_helpers: ThreadPoolExecutor | None = None
_idle: threading.BoundedSemaphore | None = None
_size = 0


def _pool() -> tuple[ThreadPoolExecutor, threading.BoundedSemaphore] | None:
    """The helper threads and the count of idle ones, started on first use (none when
    SEARCH_HELPER_THREADS is 0)."""
    global _helpers, _idle, _size
    size = settings.SEARCH_HELPER_THREADS
    if size < 1:
        return None
    with _lock:
        # The two are set and cleared together; both are tested so the types say so too.
        if _helpers is None or _idle is None:
            _helpers = ThreadPoolExecutor(max_workers=size, thread_name_prefix="scholion-read")
            _idle, _size = threading.BoundedSemaphore(size), size
        return _helpers, _idle


def _on_helper(read: Callable[[], A], script_prefix: str, urlconf: str | None) -> A:
    # The caller's request reverses URLs under its own prefix (a site served below a path,
    # SCRIPT_NAME), which Django keeps per thread: so must the helper.
    set_script_prefix(script_prefix)
    set_urlconf(urlconf)
    # As around a request: a connection past its age, or broken, is replaced.
    close_old_connections()
    try:
        return read()
    finally:
        close_old_connections()
        clear_script_prefix()
        set_urlconf(None)


def side_by_side(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """``(first(), second())``, with ``first`` on a helper thread while this thread runs
    ``second``, when a helper is free and no transaction is open; otherwise one after the
    other, here. Either's exception is raised once both have finished."""
    if connection.in_atomic_block or not connection.get_autocommit():
        return first(), second()
    pool = _pool()
    if pool is None:
        return first(), second()
    helpers, idle = pool
    if not idle.acquire(blocking=False):
        return first(), second()
    try:
        future = helpers.submit(_on_helper, first, get_script_prefix(), get_urlconf())
    except RuntimeError:  # shut down (the interpreter is exiting)
        idle.release()
        return first(), second()
    future.add_done_callback(lambda _future: idle.release())
    try:
        second_result = second()
    finally:
        first_result = future.result()  # waited for even when ``second`` failed
    return first_result, second_result


def close_helper_connections() -> None:
    """Close every helper's database connections and stop the helpers (the next read
    starts them again): before a test database is dropped, which PostgreSQL refuses while
    a session is connected to it."""
    global _helpers, _idle
    with _lock:
        helpers, size = _helpers, _size
        _helpers = _idle = None
    if helpers is None:
        return
    # One task per thread: each holds its thread at the barrier until all have closed.
    barrier = threading.Barrier(size)

    def close() -> None:
        connections.close_all()
        barrier.wait(timeout=30)

    for _ in range(size):
        helpers.submit(close)
    helpers.shutdown(wait=True)
