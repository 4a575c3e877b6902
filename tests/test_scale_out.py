"""More than one machine: two web servers, each with a data directory of its own, sharing one
database and one S3-compatible store. What is archived and captured through one is read,
annotated, searched and exported through the other, and the other way round: nothing a
request needs lives only on one server's disk."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from annotations.models import Annotation
from archive.models import Capture, Source
from exports.models import ImportJob
from tests.helpers import command_env
from tests.websites import Answer, website

ROOT = Path(__file__).resolve().parent.parent
PAGE = (
    b"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
    b"<title>Tolls on the river crossing</title></head><body><article>"
    b"<h1>Tolls on the river crossing</h1>"
    b"<p>The ferry charged one penny per passenger in 1843, as the harbour ledger records.</p>"
    b"</article></body></html>"
)
LEDGER = b"Quarterly dues of the harbour, 1843: forty-one crossings, nine cargoes of salt.\n"
MEDIA = 'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def web_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """gunicorn as `make serve` runs it (config/gunicorn.py), one worker; its base URL."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi",
             "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def log_in(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/accounts/login/")
    answer = session.post(
        f"{base}/accounts/login/",
        {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Origin": base},
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text[:500]
    return session


def test_two_servers_share_one_database_and_one_store(s3, owner, collection, tmp_path):
    owner.set_password("pw-olive-123")
    owner.save()
    shared = {
        **command_env(),
        **s3.env(),
        "DEBUG": "0",
        "SECRET_KEY": "one-secret-for-every-server-of-the-site",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SCHOLION_STATIC_MANIFEST": "0",
        "SCHOLION_CAPTURE_ALLOWED_NETWORKS": "127.0.0.1/32",
        "SCHOLION_LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": "1",
    }
    one = {**shared, "SCHOLION_DATA_DIR": str(tmp_path / "one")}
    two = {**shared, "SCHOLION_DATA_DIR": str(tmp_path / "two")}
    with (
        website() as site,
        web_server(one, tmp_path / "one.log") as base_one,
        web_server(two, tmp_path / "two.log") as base_two,
    ):
        site.pages["/story"] = Answer(PAGE)
        first = log_in(base_one, "olive", "pw-olive-123")

        # Through the first server: an upload, and a capture its worker runs.
        answer = first.post(
            f"{base_one}/sources/new/",
            data={"collection": collection.pk, "csrfmiddlewaretoken": first.cookies["csrftoken"]},
            files={"file": ("ledger.txt", LEDGER, "text/plain")},
            headers={"Origin": base_one},
            allow_redirects=False,
        )
        assert answer.status_code == 302, answer.text[:1000]
        first.post(
            f"{base_one}/sources/new/",
            data={
                "capture-urls": site.url("/story"),
                "capture-collection": collection.pk,
                "csrfmiddlewaretoken": first.cookies["csrftoken"],
            },
            headers={"Origin": base_one},
        )
        worker = subprocess.run(
            [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay",
             "--no-reload"],
            cwd=ROOT, env=one, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert worker.returncode == 0, worker.stderr[-3000:]
        ledger = Source.objects.get(original_filename="ledger.txt")
        capture = Capture.objects.get()
        assert capture.state == "done", capture.error
        assert capture.source is not None
        story = capture.source

        # Through the second server, whose data directory has none of it.
        assert not any((tmp_path / "two").rglob("sha256"))
        second = requests.Session()
        second.cookies.update(first.cookies)  # the same signed session, in the same database
        page = second.get(f"{base_two}/sources/{ledger.uuid}/").text
        assert "forty-one crossings" in page
        original = second.get(f"{base_two}/sources/{ledger.uuid}/original")
        assert original.content == LEDGER  # by way of a signed URL of the bucket
        assert urlsplit(original.url).netloc == urlsplit(s3.endpoint).netloc
        wacz = second.get(f"{base_two}/captures/{capture.uuid}/wacz")
        assert wacz.status_code == 200 and wacz.content.startswith(b"PK")

        note = "The toll recorded here matches the harbour ledger's entry."
        created = second.post(
            f"{base_two}/api/annotations/",
            data=json.dumps(
                {
                    "@context": "http://www.w3.org/ns/anno.jsonld",
                    "type": "Annotation",
                    "body": [
                        {"type": "TextualBody", "value": note, "purpose": "commenting"},
                        {"type": "TextualBody", "value": "tolls", "purpose": "tagging"},
                    ],
                    "target": {
                        "source": f"{base_two}/sources/{story.uuid}/",
                        "selector": {"type": "TextQuoteSelector", "exact": "one penny"},
                    },
                }
            ),
            headers={
                "Content-Type": MEDIA,
                "Accept": MEDIA,
                "X-CSRFToken": second.cookies.get("csrftoken") or "",
                "Origin": base_two,
            },
        )
        assert created.status_code == 201, created.text
        found = second.get(f"{base_two}/search/", params={"q": "harbour ledger's"}).text
        assert "The toll recorded here" in found
        exported = second.get(f"{base_two}/collections/{collection.slug}/export/csv").text
        assert note in exported and "one penny" in exported

        # And back on the first server, what the second wrote shows.
        assert note in first.get(f"{base_one}/sources/{story.uuid}/").text
        assert "tolls" in first.get(f"{base_one}/tags/tolls/").text

        # A package exported from the second, imported through the first, run by a worker
        # on the second's data directory: the package waits in the shared store.
        bag = second.get(f"{base_two}/collections/{collection.slug}/export/bagit").content
        Annotation.objects.all().delete()
        answer = first.post(
            f"{base_one}/import/",
            data={"csrfmiddlewaretoken": first.cookies["csrftoken"]},
            files={"package": ("field-notes.zip", bag, "application/zip")},
            headers={"Origin": base_one},
            allow_redirects=False,
        )
        assert answer.status_code == 302, answer.text[:1000]
        assert not any((tmp_path / "one").rglob("*.zip"))
        worker = subprocess.run(
            [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay",
             "--no-reload"],
            cwd=ROOT, env=two, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert worker.returncode == 0, worker.stderr[-3000:]
        job = ImportJob.objects.get()
        assert job.state == "done", job.error
        assert Annotation.objects.get().note == note
        assert not [k for k in s3.objects() if k.startswith("imports/")]  # deleted when done
    assert os.listdir(tmp_path / "two" / "tmp") == []
