"""A search reads its sources and its passages side by side (search.parallel).

These tests commit what they write (``transaction=True``), as a request does: a helper's
connection sees only what is committed. The rest of the suite runs each test inside a
transaction, where the two halves run in turn on the test's own connection.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import clear_script_prefix, set_script_prefix

from archive.models import Source
from search.parallel import close_helper_connections, side_by_side
from search.query import Filters, parse_query, search
from tests.helpers import ARCHIVE_TEXT, RIVER_TEXT, annotate, found, make_source

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_helpers(settings):
    """Helpers started with this test's settings, and closed after it."""
    close_helper_connections()
    yield settings
    close_helper_connections()


def where() -> tuple[int, int, int]:
    """The thread, its database connection, and how many sources that connection sees."""
    return threading.get_ident(), id(connections["default"]), Source.objects.count()


def test_the_first_read_runs_on_a_helper_with_a_connection_of_its_own(owner, collection):
    make_source(ARCHIVE_TEXT, owner, collection, title="On Resistance")
    first, second = side_by_side(where, where)
    assert first[0] != second[0] == threading.get_ident()
    assert first[1] != second[1]
    assert first[2] == second[2] == 1  # both read what was committed


def test_inside_a_transaction_both_run_here_and_see_its_writes(owner, collection):
    with transaction.atomic():
        make_source(ARCHIVE_TEXT, owner, collection, title="On Resistance")
        first, second = side_by_side(where, where)
    assert first == second
    assert first[0] == threading.get_ident() and first[2] == 1


def test_a_search_inside_a_transaction_finds_what_it_wrote(client, owner, collection):
    client.force_login(owner)
    with transaction.atomic():
        source = make_source(ARCHIVE_TEXT, owner, collection, title="On Resistance")
        annotate(source, owner, "the strike spread", note="Railway strike of 1911.")
        assert found(client, q="strike") == (["On Resistance"], ["the strike spread"])


def test_the_search_page_reads_its_sources_beside_its_passages(client, owner, collection):
    source = make_source(ARCHIVE_TEXT, owner, collection, title="On Resistance")
    make_source(RIVER_TEXT, owner, collection, title="Notes on the River")
    annotate(source, owner, "the strike spread", note="Railway strike of 1911.")
    client.force_login(owner)
    with CaptureQueriesContext(connection) as here:
        assert found(client, q="strike") == (["On Resistance"], ["the strike spread"])
        assert found(client, q="resist*") == (["On Resistance", "Notes on the River"], [])
    statements = " ".join(q["sql"] for q in here.captured_queries)
    assert "search_annotationentry" in statements or "search_annotation_fts" in statements
    # The sources' index is read on the helper's connection, not the request's.
    assert "search_sourcevocabulary" not in statements
    assert "search_vocabulary_fts" not in statements


def test_an_error_in_either_read_is_raised_once_both_are_done(owner):
    finished = threading.Event()

    def fail():
        raise ValueError("the first read failed")

    def second():
        finished.set()
        return 2

    with pytest.raises(ValueError, match="the first read failed"):
        side_by_side(fail, second)
    assert finished.is_set()

    def slow_first():
        started.wait(timeout=10)
        return 1

    def start_then_fail():
        started.set()
        return 1 / 0

    started = threading.Event()
    with pytest.raises(ZeroDivisionError):
        side_by_side(slow_first, start_then_fail)
    assert side_by_side(lambda: 1, lambda: 2) == (1, 2)  # the helper is free again


def test_when_every_helper_is_busy_the_reads_run_here(fresh_helpers, owner):
    fresh_helpers.SEARCH_HELPER_THREADS = 1
    release, holding = threading.Event(), threading.Event()

    def hold():
        holding.set()
        release.wait(timeout=10)
        return threading.get_ident()

    def inner():
        holding.wait(timeout=10)
        try:
            return side_by_side(threading.get_ident, threading.get_ident)
        finally:
            release.set()

    helper, (first, second) = side_by_side(hold, inner)
    assert helper != threading.get_ident()
    assert first == second == threading.get_ident()


def test_no_helpers_when_the_setting_is_zero(fresh_helpers, owner):
    fresh_helpers.SEARCH_HELPER_THREADS = 0
    first, second = side_by_side(threading.get_ident, threading.get_ident)
    assert first == second == threading.get_ident()


def test_links_read_on_the_helper_keep_the_sites_path(owner, collection):
    """Served below a path (SCRIPT_NAME /scholion), every result links below it, the
    sources read on the helper as much as the passages read here."""
    source = make_source(ARCHIVE_TEXT, owner, collection, title="On Resistance")
    annotate(source, owner, "the strike spread", note="Railway strike of 1911.")
    set_script_prefix("/scholion/")
    try:
        results = search(owner, parse_query("strike"), Filters())
    finally:
        clear_script_prefix()
    assert results.sources is not None  # no filter that applies to annotations only
    [found_source] = results.sources
    [found_passage] = results.passages
    assert found_source.url.startswith(f"/scholion/sources/{source.uuid}/")
    assert found_passage.url.startswith(f"/scholion/sources/{source.uuid}/")
