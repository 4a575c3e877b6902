"""An import writes in short transactions and shows nothing until it is complete.

Other people's writes go on while a large import runs; what it has written is hidden from
everyone until the last step reveals it; and an import whose process is killed halfway
leaves nothing anyone can see, discarded by the next import once it is clearly abandoned.
The killed import is a real `manage.py import_collection` process, killed with SIGKILL.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.test import Client
from django.utils import timezone

from annotations.models import Annotation
from archive.blobstore import archive_storage
from archive.models import Collection, Source
from exports.importer import import_package
from exports.models import PendingImport, PendingObject
from exports.package import PackageError, open_package
from tests.conftest import archive_text
from tests.helpers import (
    blob_files,
    command_env,
    empty_everything,
    export_bag,
    import_bytes,
    members,
    rebuild,
)

pytestmark = pytest.mark.django_db(transaction=True)

MANY = 1_200  # three transactions' worth of annotations


def public(package: bytes) -> bytes:
    manifest = json.loads(members(package)["data/scholion.json"])
    manifest["collection"]["is_public"] = True
    return rebuild(package, {"data/scholion.json": json.dumps(manifest).encode()})


# The collection page's status; whether the source list and a search show the source;
# how many annotations the API lists.
Seen = tuple[int, bool, bool, int]


def what_others_see(source_uuid) -> dict[str, Seen]:
    """What a visitor and a logged-in stranger are shown of the imported collection: its
    page, the source in the source list and in a search for its words, annotations."""
    stranger, _ = get_user_model().objects.get_or_create(username="onlooker")
    seen: dict[str, Seen] = {}
    for who, client in (("visitor", Client()), ("stranger", Client())):
        if who == "stranger":
            client.force_login(stranger)
        seen[who] = (
            client.get("/collections/field-notes/").status_code,
            str(source_uuid) in client.get("/sources/").content.decode(),
            str(source_uuid) in client.get("/search/?q=passage").content.decode(),
            client.get("/api/annotations/").json()["total"],
        )
    return seen


def test_nothing_an_import_writes_shows_until_it_is_complete(owner, curator, annotated, tmp_path):
    package = public(export_bag(tmp_path / "bag.zip"))
    alpha = annotated["alpha"].uuid
    empty_everything()
    importer = get_user_model().objects.create_user("cora", is_staff=True)
    snapshots: dict[str, dict] = {}
    expected = len(json.loads(members(package)["data/annotations.jsonld"])["first"]["items"])

    def progress(text: str) -> None:
        if text.startswith(("Adding citations", "Making the collection visible")):
            # Every source and annotation is written and committed by now.
            assert Annotation.objects.count() == expected
            snapshots[text] = what_others_see(alpha)

    with open_package(io.BytesIO(package)) as opened:
        import_package(opened, importer=importer, progress=progress)

    hidden = {"visitor": (404, False, False, 0), "stranger": (404, False, False, 0)}
    assert snapshots and all(seen == hidden for seen in snapshots.values())
    after = what_others_see(alpha)
    assert after["visitor"][:3] == (200, True, True)
    assert after["visitor"][3] == 1  # maya's public annotation, the only one for everyone
    assert not PendingImport.objects.exists() and not PendingObject.objects.exists()


def test_new_annotations_on_a_source_already_here_stay_hidden_until_complete(
    owner, member, stranger, annotated, tmp_path
):
    """The package's sources are here already (and public): its annotations on them are
    seen by no one but their authors until the import is complete."""
    annotated["collection"].is_public = True
    annotated["collection"].save()
    package = export_bag(tmp_path / "bag.zip")
    Annotation.objects.all().delete()
    seen_mid_import = []

    def progress(text: str) -> None:
        if text.startswith("Making the collection visible"):
            for client in (Client(), Client()):
                seen_mid_import.append(client.get("/api/annotations/").json()["total"])
            client = Client()
            client.force_login(stranger)
            seen_mid_import.append(client.get("/api/annotations/").json()["total"])

    with open_package(io.BytesIO(package)) as opened:
        import_package(opened, progress=progress)

    assert seen_mid_import == [0, 0, 0]
    assert Client().get("/api/annotations/").json()["total"] == 1  # maya's public one
    assert set(Annotation.objects.values_list("collection__slug", flat=True)) == {"field-notes"}


# --- A real process, killed halfway ---------------------------------------------------------


@pytest.fixture
def large_package(owner, tmp_path) -> bytes:
    """One source with MANY annotations by olive, exported, then the archive emptied of
    everything but the people."""
    collection = Collection.objects.create(slug="field-notes", title="Field notes", owner=owner)
    words = " ".join(f"word{i}" for i in range(MANY))
    source = archive_text(f"A long transcript.\n\n{words}\n", owner, collection)
    for i in range(MANY):
        found = re.search(rf"\bword{i}\b", source.text)
        assert found is not None
        Annotation.create_anchored(
            author=owner, source=source, start=found.start(), end=found.end(), tags=["t"]
        )
    data = export_bag(tmp_path / "large.zip")
    Annotation.objects.all().delete()
    Collection.objects.all().delete()
    Source.objects.all().delete()
    shutil.rmtree(archive_storage().path(""), ignore_errors=True)
    return data


def start_import(path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "import_collection", str(path)],
        cwd=settings.BASE_DIR,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_an_import_killed_halfway_leaves_nothing_visible_and_is_discarded_later(
    owner, large_package, tmp_path
):
    path = tmp_path / "large.zip"
    path.write_bytes(public(large_package))
    process = start_import(path)
    deadline = time.monotonic() + 120
    written = PendingObject.objects.filter(kind=PendingObject.Kind.ANNOTATION)
    while written.count() < 500:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the import wrote no annotations in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()

    # Half written, and hidden: the collection is private, its source withdrawn, the
    # annotations in no collection.
    assert written.count() >= 500
    visitor = Client()
    assert visitor.get("/collections/field-notes/").status_code == 404
    assert "A long transcript" not in visitor.get("/sources/").content.decode()
    assert visitor.get("/api/annotations/").json()["total"] == 0
    olive = Client()
    olive.force_login(owner)
    assert "A long transcript" not in olive.get("/sources/").content.decode()
    assert olive.get("/api/annotations/").json()["total"] == 0

    # Imported again at once: refused, with what to do, and nothing changes.
    before = (Source.objects.count(), Annotation.objects.count())
    with pytest.raises(PackageError, match="An earlier import of this package has not finished"):
        import_bytes(path.read_bytes())
    assert (Source.objects.count(), Annotation.objects.count()) == before

    # Ten minutes later it is abandoned: the next import discards it, then runs whole.
    PendingImport.objects.update(touched_at=timezone.now() - timedelta(minutes=11))
    result = import_bytes(path.read_bytes())

    assert result.annotations_created == MANY and result.sources_created == 1
    assert Annotation.objects.count() == MANY and Source.objects.count() == 1
    assert not PendingImport.objects.exists()
    assert visitor.get("/collections/field-notes/").status_code == 200
    assert visitor.get("/api/annotations/").json()["total"] == 0  # collection-only notes
    assert olive.get("/api/annotations/").json()["total"] == MANY
    assert blob_files() == {Source.objects.get().blob_name}


def test_other_writers_keep_going_while_a_large_import_runs(owner, large_package, tmp_path):
    path = tmp_path / "large.zip"
    path.write_bytes(large_package)
    notes = Collection.objects.create(slug="other-notes", title="Other notes", owner=owner)
    source = archive_text("Another text, annotated while the import runs.", owner, notes)
    client = Client()
    client.force_login(owner)
    process = start_import(path)
    answers = []
    while process.poll() is None:
        doc = {
            "type": "Annotation",
            "target": {
                "source": str(source.uuid),
                "selector": {"type": "TextPositionSelector", "start": 0, "end": 7},
            },
        }
        answers.append(
            client.post("/api/annotations/", json.dumps(doc), content_type="application/json")
        )
    out, err = process.communicate()

    assert process.returncode == 0, err.decode()
    assert f"{MANY} annotations added" in out.decode()
    assert answers and {a.status_code for a in answers} == {201}
    mine = Annotation.objects.filter(source=source)
    assert mine.count() == len(answers)
    # Written between the import's own: other writers did not wait for the whole import.
    imported = Annotation.objects.exclude(source=source).aggregate(
        first=models.Min("pk"), last=models.Max("pk")
    )
    between = mine.filter(pk__gt=imported["first"], pk__lt=imported["last"]).count()
    print(f"{len(answers)} writes during the import, {between} between its first and last")
    assert between > 0


def test_a_worker_killed_mid_import_then_try_again_imports_everything_once(
    client, curator, large_package
):
    from exports.models import ImportJob
    from tests.conftest import run_worker

    client.force_login(curator)
    upload = io.BytesIO(large_package)
    upload.name = "large.zip"
    job_page = client.post("/import/", {"package": upload})["Location"]
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay"],
        cwd=settings.BASE_DIR,
        env=command_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    written = PendingObject.objects.filter(kind=PendingObject.Kind.ANNOTATION)
    deadline = time.monotonic() + 120
    while written.count() < 500:
        assert worker.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    # Three minutes without a heartbeat: the page says the import stopped.
    ImportJob.objects.update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert "Try again" in client.get(job_page).content.decode()
    assert Client().get("/api/annotations/").json()["total"] == 0

    client.post(job_page + "retry")
    run_worker()

    job = ImportJob.objects.get()
    assert job.state == ImportJob.State.DONE, job.error
    assert f"{MANY} annotations added" in job.summary
    assert Annotation.objects.count() == MANY and Source.objects.count() == 1
    assert not PendingImport.objects.exists() and not PendingObject.objects.exists()
    assert blob_files() == {Source.objects.get().blob_name}
