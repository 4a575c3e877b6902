"""Archived bytes in an S3-compatible object store (django-storages' S3Storage), against
moto's S3 server, started here on loopback: the settings a deployment sets, uploads,
downloads as signed URLs, fixity, and what a stranger gets."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from django.http import FileResponse
from django.test import Client
from moto.server import ThreadedMotoServer

from archive.blobstore import archive_storage, blob_name
from archive.models import Source
from tests.conftest import archive_text
from tests.helpers import command_env

BUCKET = "scholion-archive"
REGION = "eu-west-1"
REPORT = "The harbour master's ledger for 1843 lists forty-one ferry crossings.\n"


@dataclass
class S3Server:
    endpoint: str
    tmp: Path

    def env(self) -> dict[str, str]:
        """What a deployment sets: django-storages' own names, and no file outside the
        project for boto3 to read its configuration from."""
        return {
            "SCHOLION_ARCHIVE_STORAGE": "storages.backends.s3.S3Storage",
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": "scholion-test",
            "AWS_SECRET_ACCESS_KEY": "scholion-test-secret",
            "AWS_CONFIG_FILE": str(self.tmp / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.tmp / "aws-credentials"),
        }

    def client(self):
        env = self.env()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    def objects(self) -> dict[str, bytes]:
        s3 = self.client()
        listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    tmp = tmp_path_factory.mktemp("s3")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_CONFIG_FILE", str(tmp / "aws-config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "aws-credentials"))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield S3Server(f"http://{host}:{port}", tmp)
        finally:
            server.stop()


@pytest.fixture
def s3(s3_server, settings) -> Iterator[S3Server]:
    """A fresh bucket, and the archive storage pointed at it as config/settings.py would."""
    client = s3_server.client()
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    env = s3_server.env()
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": env["SCHOLION_ARCHIVE_STORAGE"],
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_server.endpoint,
                "region_name": REGION,
                "addressing_style": "path",
                "access_key": env["AWS_ACCESS_KEY_ID"],
                "secret_key": env["AWS_SECRET_ACCESS_KEY"],
                "signature_version": "s3v4",
                "querystring_expire": 300,
                "max_memory_size": 1024 * 1024,
                "file_overwrite": True,
            },
        },
    }
    yield s3_server
    for key in s3_server.objects():
        client.delete_object(Bucket=BUCKET, Key=key)
    client.delete_bucket(Bucket=BUCKET)


def test_an_archived_original_is_an_object_named_by_its_hash(s3, owner, collection):
    source = archive_text(REPORT, user=owner, collection=collection, filename="ledger.txt")
    sha256 = hashlib.sha256(REPORT.encode()).hexdigest()
    assert source.sha256 == sha256
    assert s3.objects() == {blob_name(sha256): REPORT.encode()}
    # The same bytes again: the same object, not a second one.
    again = archive_text(REPORT, user=owner, collection=collection, filename="copy.txt")
    assert again.pk == source.pk and list(s3.objects()) == [blob_name(sha256)]
    assert source.verify_fixity().ok


def test_the_download_is_a_short_lived_signed_url_of_the_bucket(s3, owner, collection):
    source = archive_text(REPORT, user=owner, collection=collection, filename="ledger.txt")
    client = Client()
    client.force_login(owner)
    response = client.get(f"/sources/{source.uuid}/original")
    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    url = response["Location"]
    assert url.startswith(f"{s3.endpoint}/{BUCKET}/{blob_name(source.sha256)}?")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["300"] and "X-Amz-Signature" in query

    with urllib.request.urlopen(url, timeout=10) as served:  # noqa: S310 - loopback test server
        assert served.read() == REPORT.encode()
        assert served.headers["Content-Disposition"] == 'attachment; filename="ledger.txt"'
        assert served.headers["Content-Type"].startswith("text/plain")

    # The object itself, unsigned, is not public.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url.split("?")[0], timeout=10)  # noqa: S310
    assert refused.value.code == 403


def test_a_stranger_gets_no_url(s3, owner, stranger, collection):
    source = archive_text(REPORT, user=owner, collection=collection, filename="ledger.txt")
    client = Client()
    client.force_login(stranger)
    response = client.get(f"/sources/{source.uuid}/original")
    assert response.status_code == 404
    assert "Location" not in response and BUCKET not in response.content.decode()
    client.logout()
    response = client.get(f"/sources/{source.uuid}/original")
    assert response.status_code == 404 and "Location" not in response


def test_fixity_reads_the_object_back_and_a_change_or_loss_is_loud(s3, owner, collection):
    source = archive_text(REPORT, user=owner, collection=collection)
    bucket = s3.client()
    bucket.put_object(Bucket=BUCKET, Key=source.blob_name, Body=b"altered")
    check = source.verify_fixity()
    assert not check.ok and check.error.startswith("Hash differs")
    bucket.delete_object(Bucket=BUCKET, Key=source.blob_name)
    check = source.verify_fixity()
    assert not check.ok
    assert check.error == f"The stored bytes are missing ({source.blob_name})."
    source.refresh_from_db()
    assert source.fixity_status == Source.Fixity.FAILED


def test_the_image_shown_in_a_page_is_served_from_this_origin(s3, owner, collection):
    # Downloads leave for the bucket; what a page shows inline (a capture's screenshot)
    # stays on this origin, where the page's Content-Security-Policy allows it.
    from archive.views import _stored_download

    archive_storage().save("screenshots/x.png", io.BytesIO(b"\x89PNG\r\n"))
    response = _stored_download(
        "screenshots/x.png",
        sha256="x",
        filename="x.png",
        content_type="image/png",
        as_attachment=False,
    )
    assert isinstance(response, FileResponse) and response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x89PNG\r\n"  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
def test_a_deployment_sets_it_with_django_storages_own_variables(s3, owner, tmp_path):
    ledger = tmp_path / "ledger.txt"
    ledger.write_text(REPORT)
    done = subprocess.run(
        [sys.executable, "manage.py", "archive", str(ledger), "--user", owner.username],
        cwd=Path(__file__).resolve().parent.parent,
        env={**command_env(), **s3.env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    sha256 = hashlib.sha256(REPORT.encode()).hexdigest()
    assert s3.objects() == {blob_name(sha256): REPORT.encode()}
    assert Source.objects.get().sha256 == sha256

    # Without a bucket, the command says which variable to set.
    env = {**command_env(), **s3.env()}
    del env["AWS_STORAGE_BUCKET_NAME"]
    refused = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    assert "Set the environment variable AWS_STORAGE_BUCKET_NAME." in refused.stderr


@pytest.mark.django_db
def test_the_health_check_asks_the_bucket(s3, settings):
    client = Client()
    assert client.get("/healthz").json() == {"database": "ok", "storage": "ok"}
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            **settings.STORAGES["archive"],
            "OPTIONS": {**settings.STORAGES["archive"]["OPTIONS"], "bucket_name": "gone"},
        },
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "storage": "failing"}
