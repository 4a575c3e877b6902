"""The command line: archive, load_demo, and --help for every command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError
from django.db import connection

from archive.models import Collection, Membership, Source
from tests.conftest import DEMO_PATH

pytestmark = pytest.mark.django_db

DEMO_SHA = "e8ce57c5dea73e392ed7adba0c147f7b659dd269b89ac27f9eb6f098c5051b71"
DJANGO_OPTIONS = {
    "help",
    "version",
    "verbosity",
    "settings",
    "pythonpath",
    "traceback",
    "no_color",
    "force_color",
    "skip_checks",
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def archive(*args: str) -> tuple[list[list[str]], str]:
    out, err = StringIO(), StringIO()
    call_command("archive", *args, stdout=out, stderr=err)
    return [line.split("\t") for line in out.getvalue().splitlines()], err.getvalue()


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- archive ---------------------------------------------------------------------------


def test_archive_prints_uuid_hash_and_title_for_each_file(tmp_path, owner, collection):
    first = write(tmp_path, "first.txt", f"Rain in the valley\n\nIt rained. {uuid.uuid4()}")
    second = write(tmp_path, "second.txt", f"Sun on the hills\n\nIt shone. {uuid.uuid4()}")
    lines, err = archive(
        str(first), str(second), "--user", owner.username, "--collection", collection.slug
    )
    assert err == ""
    assert [line[2] for line in lines] == ["Rain in the valley", "Sun on the hills"]
    for (source_uuid, sha256, _), path in zip(lines, [first, second], strict=True):
        source = Source.objects.get(uuid=source_uuid)
        assert source.sha256 == sha256
        with source.open_original() as fh:
            assert fh.read() == path.read_bytes()
        assert source.archived_via == Source.Via.COMMAND_LINE
        assert source.archived_by == owner
        assert source.original_filename == path.name
        assert source.declared_media_type == "text/plain"
        assert list(Collection.objects.filter(sources=source)) == [collection]


def test_archive_takes_title_and_url_from_options(tmp_path):
    path = write(tmp_path, "notes.txt", f"First line\n\n{uuid.uuid4()}")
    lines, _ = archive(
        str(path), "--title", "Field notes,\tday one", "--url", "https://example.org/notes"
    )
    source = Source.objects.get(uuid=lines[0][0])
    assert source.title == "Field notes,\tday one"
    assert lines[0][2] == "Field notes, day one"  # the line stays three tab-separated fields
    assert source.original_url == "https://example.org/notes"
    assert source.archived_by is None


def test_archiving_the_same_file_twice_keeps_one_source(tmp_path):
    path = write(tmp_path, "same.txt", f"Same bytes\n\n{uuid.uuid4()}")
    first, _ = archive(str(path))
    again, err = archive(str(path))
    assert first == again
    assert "already archived" in err
    assert Source.objects.count() == 1


def test_a_failed_input_does_not_stop_the_others_but_the_exit_is_non_zero(tmp_path):
    good = write(tmp_path, "good.txt", f"Good one\n\n{uuid.uuid4()}")
    image = write(tmp_path, "picture.txt", PNG)
    empty = write(tmp_path, "empty.txt", b"")
    missing = tmp_path / "missing.txt"
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command(
            "archive",
            str(image),
            str(missing),
            str(good),
            str(empty),
            str(tmp_path),
            stdout=out,
            stderr=err,
        )
    assert excinfo.value.returncode == 1
    assert "4 of 5 inputs failed" in str(excinfo.value)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("\tGood one")
    messages = err.getvalue()
    assert f"{image}: This file is image/png" in messages
    assert f"{missing}: No such file or directory" in messages
    assert f"{empty}: The file is empty" in messages
    assert f"{tmp_path}: Is a directory" in messages
    assert list(Source.objects.values_list("title", flat=True)) == ["Good one"]


def test_unknown_user_or_collection_is_refused_before_archiving(tmp_path):
    path = write(tmp_path, "a.txt", f"A\n\n{uuid.uuid4()}")
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        archive(str(path), "--user", "nobody")
    with pytest.raises(CommandError, match="No collection with slug 'nowhere'"):
        archive(str(path), "--collection", "nowhere")
    with pytest.raises(CommandError, match="is not an http"):
        archive(str(path), "--url", "javascript:alert(1)")
    assert Source.objects.count() == 0


def test_oversize_file_is_refused_with_the_limit(tmp_path, settings):
    settings.SCHOLION_MAX_UPLOAD_BYTES = 100
    path = write(tmp_path, "big.txt", "x" * 101)
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("archive", str(path), stdout=StringIO(), stderr=err)
    assert "larger than the limit of 100 bytes" in err.getvalue()
    assert Source.objects.count() == 0


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = f"{db['USER']}:{db['PASSWORD'] or ''}"
    return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_the_real_command_exits_1_when_an_input_failed(tmp_path):
    good = write(tmp_path, "good.txt", f"Archived from a shell\n\n{uuid.uuid4()}")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "SCHOLION_DATA_DIR": str(settings.DATA_DIR),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "archive", "--skip-checks", str(good), "/nonexistent.txt"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    source_uuid, sha256, title = result.stdout.strip().split("\t")
    assert title == "Archived from a shell"
    assert Source.objects.get(uuid=source_uuid).sha256 == sha256
    assert "/nonexistent.txt: No such file or directory" in result.stderr
    assert "1 of 2 inputs failed" in result.stderr


# --- load_demo -------------------------------------------------------------------------


def test_load_demo_twice_leaves_one_source_one_collection_one_user():
    first, second = StringIO(), StringIO()
    call_command("load_demo", stdout=first)
    call_command("load_demo", stdout=second)
    assert Source.objects.count() == 1
    assert Collection.objects.count() == 1
    assert get_user_model().objects.filter(username="demo").count() == 1
    source = Source.objects.get()
    assert source.sha256 == DEMO_SHA
    with source.open_original() as fh:
        assert fh.read() == DEMO_PATH.read_bytes()
    demo = get_user_model().objects.get(username="demo")
    collection = Collection.objects.get()
    assert collection.role_of(demo) == Membership.Role.OWNER
    assert list(collection.sources.all()) == [source]
    assert f"/sources/{source.uuid}/" in first.getvalue()
    assert "password scholion-demo" in first.getvalue()
    assert "password unchanged" in second.getvalue()
    assert authenticate(username="demo", password="scholion-demo") == demo


def test_load_demo_does_not_reset_a_changed_password():
    call_command("load_demo", stdout=StringIO())
    demo = get_user_model().objects.get(username="demo")
    demo.set_password("a-better-password-42")
    demo.save()
    call_command("load_demo", stdout=StringIO())
    demo.refresh_from_db()
    assert demo.check_password("a-better-password-42")


def test_demo_user_can_read_the_demo_source(client):
    call_command("load_demo", stdout=StringIO())
    client.login(username="demo", password="scholion-demo")
    source = Source.objects.get()
    response = client.get(source.get_absolute_url())
    assert response.status_code == 200
    assert "Axis of Resistance" in response.text


def test_load_demo_annotates_the_article_once_and_the_demo_login_sees_it(client):
    from annotations.models import Annotation

    out = StringIO()
    call_command("load_demo", stdout=out)
    source = Source.objects.get()
    annotations = list(Annotation.objects.filter(source=source).order_by("start", "pk"))
    assert len(annotations) == 7
    assert "Demo annotations: 7" in out.getvalue()
    for annotation in annotations:  # anchored on the bytes as archived
        assert source.text[annotation.start : annotation.end] == annotation.exact
        assert annotation.author.username == "demo"
        assert annotation.visibility == Annotation.Visibility.COLLECTION
    assert annotations[0].exact == "On March 31" and annotations[0].start == 0

    # A second run adds none, and keeps what the researcher changed.
    annotations[0].delete()
    again = StringIO()
    call_command("load_demo", stdout=again)
    assert Annotation.objects.count() == 6
    assert "Demo annotations" not in again.getvalue()

    client.login(username="demo", password="scholion-demo")
    tags = client.get("/tags/").text
    assert "place-names" in tags and "weapons-described" in tags
    found = client.get("/search/", {"q": "jalil"}).text
    assert "2 passages" in found
    meeting = client.get("/search/tags/cooccurrence/").text
    assert "casualty-figures" in meeting and "weapons-described" in meeting
    reading = client.get(source.get_absolute_url()).text
    assert "Five groups named as taking part" in reading
    for annotation in Annotation.objects.all():  # each highlighted in the text
        assert re.search(f'<mark[^>]* data-anns="[^"]*{annotation.uuid}', reading)


# --- --help ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "described"),
    [
        ("archive", ["PATH", "--title", "--url", "--collection SLUG", "--user USERNAME"]),
        ("verify_fixity", ["--source UUID", "exits non-zero", "missing"]),
        ("load_demo", ["--username", "--password", "idempotent"]),
    ],
)
def test_every_command_has_help_describing_its_arguments(command, described):
    app = get_commands()[command]  # load_demo is annotations', the others archive's
    parser = load_command_class(app, command).create_parser("manage.py", command)
    text = " ".join(parser.format_help().split())
    for words in described:
        assert words in text
    own = [action for action in parser._actions if action.dest not in DJANGO_OPTIONS]
    assert own
    assert all(action.help for action in own), f"{command}: an argument has no help text"
