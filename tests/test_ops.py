"""Running it for a team: the health check a load balancer asks, and the request log."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.test import Client

from config.ops import JsonFormatter
from tests.helpers import command_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_healthz_answers_200_without_a_session(client, django_assert_num_queries):
    with django_assert_num_queries(1):  # SELECT 1; no session, no user
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "storage": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert "Set-Cookie" not in response


@pytest.mark.django_db
def test_healthz_answers_503_when_the_storage_is_gone(client, settings, tmp_path, caplog):
    (tmp_path / "unmounted").write_text("a file where the directory should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "archive.blobstore.ContentAddressedFileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "unmounted")},
        },
    }
    with caplog.at_level(logging.ERROR, logger="scholion.health"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "storage": "failing"}
    # The reason is for whoever runs the site, in the log, not for whoever asks.
    assert "unmounted" not in response.content.decode()
    assert "the archive storage does not answer" in caplog.text


def test_healthz_answers_503_when_the_database_is_gone(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "failing", "storage": "ok"}


def test_healthz_takes_no_writes(client):
    assert client.post("/healthz").status_code == 405


def test_every_request_is_one_line_with_its_user_and_id(client, owner, caplog):
    client.force_login(owner)
    with caplog.at_level(logging.INFO, logger="scholion.requests"):
        response = client.get("/sources/", HTTP_X_REQUEST_ID="lb-7f3a")
        client.get("/healthz")
    assert response["X-Request-ID"] == "lb-7f3a"
    first, second = [r for r in caplog.records if r.name == "scholion.requests"]
    assert first.getMessage().startswith("GET /sources/ 200 ")
    assert first.getMessage().endswith(f"user={owner.pk} id=lb-7f3a")
    assert (first.user_id, first.status, first.request_id) == (owner.pk, 200, "lb-7f3a")
    # The health check looks no user up: the line says none, and costs no query for it.
    assert second.user_id is None and "user=- id=" in second.getMessage()


def test_a_request_id_that_is_not_plain_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="x\r\nSet-Cookie: a=b" + "y" * 80)
    assert len(response["X-Request-ID"]) == 32 and "Set-Cookie" not in response


def test_a_token_request_logs_the_token_user(client, owner, caplog):
    from accounts.models import ApiToken

    _, key = ApiToken.issue(owner, "script")
    with caplog.at_level(logging.INFO, logger="scholion.requests"):
        Client().get("/api/annotations/", HTTP_AUTHORIZATION=f"Bearer {key}")
    (line,) = [r for r in caplog.records if r.name == "scholion.requests"]
    assert line.user_id == owner.pk


def test_json_lines_carry_the_request_fields():
    record = logging.LogRecord("scholion.requests", logging.INFO, "", 0, "GET / 200", (), None)
    record.status, record.request_id, record.user_id = 200, "abc", None
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET / 200" and line["status"] == 200
    assert line["request_id"] == "abc" and line["user_id"] is None
    assert line["time"].endswith("Z") and line["level"] == "INFO"


@pytest.mark.django_db(transaction=True)
def test_log_format_json_is_what_the_server_writes():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import logging, django; django.setup();"
            " logging.getLogger('scholion.requests').info('hello', extra={'status': 204})",
        ],
        cwd=ROOT,
        env={**command_env(), "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert (line["message"], line["status"], line["logger"]) == ("hello", 204, "scholion.requests")

    refused = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**command_env(), "LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and "LOG_FORMAT='xml': use text or json." in refused.stderr
