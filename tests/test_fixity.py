"""Fixity: re-hashing stored originals, recording each check, failing loudly."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from archive.blobstore import archive_storage
from archive.models import FixityCheck, Source
from tests.conftest import archive_text

pytestmark = pytest.mark.django_db


def blob_path(source: Source) -> str:
    return archive_storage().path(source.blob_name)


def overwrite(source: Source, data: bytes) -> None:
    # Stored blobs are read-only (0444): a real corruption has to get past that too.
    path = blob_path(source)
    os.chmod(path, 0o644)
    with open(path, "wb") as fh:
        fh.write(data)


def flip_one_byte(source: Source) -> None:
    with open(blob_path(source), "rb") as fh:
        data = bytearray(fh.read())
    data[len(data) // 2] ^= 0x01
    overwrite(source, bytes(data))


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("verify_fixity", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def no_blobs() -> None:
    """Blobs that earlier tests stored (files outlive the database's rows), which
    verify_fixity would list as named by no source."""
    shutil.rmtree(archive_storage().path(""), ignore_errors=True)


@pytest.fixture
def two_sources(owner):
    # Distinct bytes per test: blobs outlive each test's rolled-back rows.
    first = archive_text(f"First report\n\nIt was raining. {uuid.uuid4()}", owner)
    second = archive_text(f"Second report\n\nIt was sunny. {uuid.uuid4()}", owner)
    return first, second


def test_intact_originals_verify_and_each_check_is_recorded(two_sources):
    first, second = two_sources
    out, err = run()
    assert out.strip() == "Checked 2 sources: 2 intact, 0 failed."
    assert err == ""
    for source in two_sources:
        source.refresh_from_db()
        check = source.fixity_checks.get()
        assert check.ok and check.error == ""
        assert check.observed_sha256 == source.sha256
        assert source.fixity_status == Source.Fixity.OK
        assert source.fixity_checked_at == check.checked_at


def test_a_corrupted_original_fails_loudly_and_exits_non_zero(two_sources):
    first, second = two_sources
    flip_one_byte(first)
    corrupted_sha = hashlib.sha256(Path(blob_path(first)).read_bytes()).hexdigest()
    err = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_fixity", stdout=StringIO(), stderr=err)
    assert excinfo.value.returncode == 1
    assert "Fixity FAILED for 1 of 2 sources" in str(excinfo.value)
    assert f"FAILED {first.uuid}" in err.getvalue()
    assert "Hash differs" in err.getvalue()

    check = first.fixity_checks.get()
    assert not check.ok
    assert check.observed_sha256 == corrupted_sha
    assert first.sha256 in check.error and corrupted_sha in check.error
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.fixity_status == Source.Fixity.FAILED
    assert second.fixity_status == Source.Fixity.OK


def test_a_missing_original_is_reported_as_missing(two_sources):
    first, _ = two_sources
    os.remove(blob_path(first))
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("verify_fixity", stdout=StringIO(), stderr=err)
    assert "missing" in err.getvalue()
    check = first.fixity_checks.get()
    assert not check.ok and check.observed_sha256 == ""
    assert first.blob_name in check.error


def test_a_truncated_original_fails(two_sources):
    first, _ = two_sources
    overwrite(first, b"")
    with pytest.raises(CommandError):
        run()
    check = first.fixity_checks.get()
    assert check.observed_sha256 == hashlib.sha256(b"").hexdigest()
    assert not check.ok


def test_repeated_checks_build_a_history(two_sources):
    first, _ = two_sources
    run("--source", str(first.uuid))
    flip_one_byte(first)
    with pytest.raises(CommandError):
        run("--source", str(first.uuid))
    assert list(first.fixity_checks.values_list("ok", flat=True)) == [False, True]
    first.refresh_from_db()
    assert first.fixity_status == Source.Fixity.FAILED


def test_one_source_can_be_checked_alone(two_sources):
    first, second = two_sources
    flip_one_byte(second)
    out, _ = run("--source", str(first.uuid))
    assert out.strip() == "Checked 1 source: 1 intact, 0 failed."
    assert FixityCheck.objects.filter(source=second).count() == 0


def test_withdrawn_sources_are_still_checked(two_sources):
    first, _ = two_sources
    first.withdraw("Duplicate.")
    out, _ = run()
    assert "Checked 2 sources" in out


@pytest.mark.parametrize("value", ["not-a-uuid", "1234", "' OR 1=1 --", ""])
def test_a_malformed_source_uuid_gets_a_clear_error(two_sources, value):
    with pytest.raises(CommandError, match="is not a source UUID"):
        run("--source", value)
    assert FixityCheck.objects.count() == 0


def test_an_unknown_source_uuid_is_reported(two_sources):
    with pytest.raises(CommandError, match="No source with UUID 00000000-0000-4000-8000-0000"):
        run("--source", "00000000-0000-4000-8000-000000000000")
    assert FixityCheck.objects.count() == 0


def test_no_sources_is_a_clean_summary(db):
    out, _ = run()
    assert out.strip() == "Checked 0 sources: 0 intact, 0 failed."


def test_source_page_shows_the_hash_and_when_it_was_last_verified(client, owner, two_sources):
    first, _ = two_sources
    client.force_login(owner)
    page = client.get(first.get_absolute_url()).text
    assert first.sha256 in page
    assert "not yet verified" in page
    check = first.verify_fixity()
    page = client.get(first.get_absolute_url()).text
    assert f"Verified {check.checked_at:%Y-%m-%d %H:%M} UTC" in page
    flip_one_byte(first)
    first.verify_fixity()
    page = client.get(first.get_absolute_url()).text
    assert "FAILED" in page and "Hash differs" in page


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = f"{db['USER']}:{db['PASSWORD'] or ''}"
    return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_the_real_command_exits_1_on_a_corrupted_original(owner):
    """The exit status cron and monitoring see, from a separate process."""
    source = archive_text(f"Report for cron\n\n{uuid.uuid4()}", owner)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "SCHOLION_DATA_DIR": str(settings.DATA_DIR),
    }
    command = [sys.executable, "manage.py", "verify_fixity", "--skip-checks"]

    def manage() -> subprocess.CompletedProcess:
        return subprocess.run(
            command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, check=False
        )

    intact = manage()
    assert intact.returncode == 0, intact.stderr
    assert "1 intact, 0 failed" in intact.stdout
    flip_one_byte(source)
    failed = manage()
    assert failed.returncode == 1
    assert f"FAILED {source.uuid}" in failed.stderr
    assert "Fixity FAILED for 1 of 1 source" in failed.stderr
    assert list(source.fixity_checks.values_list("ok", flat=True)) == [False, True]


def test_archiving_again_replaces_a_damaged_orphan_blob(owner, curator):
    data = f"Deleted then archived again\n\n{uuid.uuid4()}"
    source = archive_text(data, owner)
    flip_one_byte(source)
    source.delete()
    again = archive_text(data, owner)
    assert again.verify_fixity().ok
    with again.open_original() as fh:
        assert fh.read() == data.encode()
