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
def test_home_page_leads_to_the_source_list(client, demo_source, collection):
    # "Sources" alone is in every page's navigation: the list is known by what it lists.
    collection.is_public = True
    collection.save()
    response = client.get("/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [("/sources/", 302)]
    assert "1 source" in response.text
    assert f'href="/sources/{demo_source.uuid}/"' in response.text


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

    # A connection this test opens itself: one opened by an earlier test may be older than
    # CONN_MAX_AGE by now, and would rightly be replaced.
    connection.close()
    connection.ensure_connection()
    opened = connection.connection
    for _ in range(3):
        request_started.send(sender=None)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        request_finished.send(sender=None)
    assert connection.connection is opened


@pytest.mark.parametrize(
    ("url", "jit_off", "options"),
    [
        ("postgres://scholion@db:5432/scholion", None, "-c jit=off"),
        # Behind PgBouncer, which refuses startup options it does not track: none is sent.
        ("postgres://scholion@db:5432/scholion", "0", None),
        # A DATABASE_URL that sets options keeps its own.
        (
            "postgres://scholion@db:5432/scholion?options=-c%20work_mem%3D64MB",
            None,
            "-c work_mem=64MB",
        ),
    ],
)
def test_postgresql_connections_start_without_jit_unless_told_not_to(url, jit_off, options):
    import json
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOLION_PG_")}
    env.update(DATABASE_URL=url, DEBUG="1", SCHOLION_DATA_DIR=str(settings.DATA_DIR / "jit-check"))
    if jit_off is not None:
        env["SCHOLION_PG_JIT_OFF"] = jit_off
    script = (
        "import json; from config import settings as s; "
        "print(json.dumps(s.DATABASES['default'].get('OPTIONS', {}).get('options')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == options
