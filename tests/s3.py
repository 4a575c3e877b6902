"""An S3-compatible server for the tests: moto's, started on loopback, and the archive
storage pointed at a fresh bucket in it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

BUCKET = "scholion-archive"
REGION = "eu-west-1"


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
