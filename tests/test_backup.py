"""manage.py backup and restore: a snapshot of the database and every blob as a BagIt bag,
brought back into a new, empty instance, where verify_fixity passes."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import bagit
import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from annotations.models import Annotation
from archive.blobstore import archive_storage
from tests.conftest import archive_text
from tests.helpers import command_env

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_blobs() -> None:
    shutil.rmtree(archive_storage().path(""), ignore_errors=True)


@pytest.fixture
def archived(owner, collection):
    ledger = archive_text("The ferry ledger of 1843.\n", user=owner, collection=collection)
    report = archive_text("Harbour dues, second quarter.\n", user=owner, collection=collection)
    Annotation.create_anchored(author=owner, source=ledger, start=4, end=16, tags=["ferries"])
    return ledger, report


@pytest.fixture
def empty_instance(tmp_path) -> Iterator[dict[str, str]]:
    """The environment of a second instance: its own data directory and an empty database
    on the same engine."""
    env = {**command_env(), "SCHOLION_DATA_DIR": str(tmp_path / "restored")}
    if connection.vendor == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        yield env
        return
    db = connection.settings_dict
    name = f"{db['NAME']}_restored"
    admin = f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = env["DATABASE_URL"].rsplit("/", 1)[0] + f"/{name}"
    try:
        yield env
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_backup_restores_into_an_empty_instance_and_verifies(archived, tmp_path, empty_instance):
    ledger, report = archived
    dest = tmp_path / "backup-1"
    out = io.StringIO()
    call_command("backup", str(dest), stdout=out)
    assert "and 2 blobs" in out.getvalue()
    # bagit itself checks the bag: every file there, every SHA-256 right.
    bag = bagit.Bag(str(dest))
    bag.validate()
    assert bag.info["Scholion-Database"] == connection.vendor
    assert f"data/blobs/{ledger.blob_name}" in bag.payload_entries()

    restored = manage(empty_instance, "restore", str(dest))
    assert restored.returncode == 0, restored.stderr
    assert "Restored the" in restored.stdout and "2 blobs" in restored.stdout
    fixity = manage(empty_instance, "verify_fixity")
    assert fixity.returncode == 0, fixity.stderr
    assert "Checked 2 sources: 2 intact, 0 failed." in fixity.stdout
    counted = manage(
        empty_instance,
        "shell",
        "-c",
        "from archive.models import Source; from annotations.models import Annotation;"
        " print(sorted(Source.objects.values_list('title', flat=True)),"
        " list(Annotation.objects.values_list('exact', flat=True)))",
    )
    assert counted.returncode == 0, counted.stderr
    assert f"{sorted([ledger.title, report.title])} ['ferry ledger']" in counted.stdout
    # The restored database is current: nothing left to migrate.
    check = manage(empty_instance, "migrate", "--check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_restore_refuses_an_instance_that_is_not_empty(archived, tmp_path):
    dest = tmp_path / "backup"
    call_command("backup", str(dest), stdout=io.StringIO())
    with pytest.raises(CommandError, match="already has tables: restore into an empty database"):
        call_command("restore", str(dest), stdout=io.StringIO())


def test_restore_refuses_a_damaged_backup_before_touching_anything(
    archived, tmp_path, empty_instance
):
    ledger, _ = archived
    dest = tmp_path / "backup"
    call_command("backup", str(dest), stdout=io.StringIO())
    copy = dest / "data" / "blobs" / ledger.blob_name
    copy.write_bytes(copy.read_bytes().replace(b"1843", b"1848"))  # same size, other bytes
    refused = manage(empty_instance, "restore", str(dest))
    assert refused.returncode != 0
    assert "is not an intact backup" in refused.stderr
    assert "sha256" in refused.stderr.lower()
    assert not (Path(empty_instance["SCHOLION_DATA_DIR"]) / "blobs" / ledger.blob_name).exists()


def test_backup_wants_a_new_directory(archived, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    with pytest.raises(CommandError, match="is not empty: give a new directory"):
        call_command("backup", str(tmp_path / "used"), stdout=io.StringIO())
    assert (tmp_path / "used" / "notes.txt").read_text() == "mine"
