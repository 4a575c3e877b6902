from __future__ import annotations

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:  # makemigrations --check exits 1 when a migration is missing
        pytest.fail(f"Pending model changes without a migration:\n{out.getvalue()} ({exc})")


@pytest.mark.django_db
def test_home_page_leads_to_the_source_list(client):
    response = client.get("/", follow=True)
    assert response.status_code == 200
    assert b"Sources" in response.content


def test_demo_copy_is_byte_exact_with_the_seed():
    import hashlib

    from tests.conftest import DEMO_PATH

    digest = hashlib.sha256(DEMO_PATH.read_bytes()).hexdigest()
    assert digest == "e8ce57c5dea73e392ed7adba0c147f7b659dd269b89ac27f9eb6f098c5051b71"


@pytest.mark.django_db
def test_missing_pages_get_a_friendly_404_that_does_not_say_why(client):
    response = client.get("/sources/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert b"There is nothing here that you can see" in response.content


@pytest.mark.django_db(transaction=True)
def test_a_database_connection_serves_the_requests_that_follow():
    # A new PostgreSQL connection starts a backend with empty caches (and a new SQLite one an
    # empty page cache): one is kept across requests, and checked before each reuses it.
    from django.core.signals import request_finished, request_started
    from django.db import connection

    connection.ensure_connection()
    opened = connection.connection
    for _ in range(3):
        request_started.send(sender=None)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        request_finished.send(sender=None)
    assert connection.connection is opened
