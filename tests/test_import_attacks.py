"""A stranger importing crafted packages, aimed at a private collection they cannot see.

An import may refer only to what the importer can see and what the package brings. Every
attack below is run the way the review ran it: a collection owner (so allowed to import)
edits a package of their own to name the victim's private source, annotation or collection,
and imports it through the real importer and the real upload page. Each must be refused or
treated as if the victim's things did not exist, with the same answer either way.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from annotations.models import Annotation, Citation
from archive.models import Collection, Source
from exports.package import PackageError
from tests.conftest import archive_text, run_worker
from tests.helpers import import_bytes, members, rebuild

pytestmark = pytest.mark.django_db

SECRET = "Respondent: my PIN is 4711. Confidential, not for publication."
SAMS_TEXT = "Sam's own notes on the harbour ledger, kept for a comparison."


@pytest.fixture
def victim(owner, collection):
    """olive's private interview, with a private annotation on the PIN."""
    source = archive_text(
        f"{SECRET} {uuid.uuid4()}", owner, collection, metadata={"title": "Interview 7"}
    )
    start = source.text.index("4711")
    note = Annotation.create_anchored(
        author=owner, source=source, start=start, end=start + 4, visibility="private"
    )
    return {"source": source, "annotation": note}


@pytest.fixture
def sams_package(stranger, tmp_path):
    """A package sam exported from a collection of his own (one source, one annotation),
    after which his rows are gone: he still owns a collection, so he may import."""
    own = Collection.objects.create(slug="sams-notes", title="Sam's notes", owner=stranger)
    source = archive_text(SAMS_TEXT, stranger, own, metadata={"title": "Sam's ledger notes"})
    note = Annotation.create_anchored(
        author=stranger, source=source, start=0, end=10, note="mine", tags=["ledger"]
    )
    path = tmp_path / "sams.zip"
    call_command("export_collection", "sams-notes", "--format=bagit", "-o", str(path), "--user=sam")
    note.delete()
    own.delete()
    source.delete()
    Collection.objects.create(slug="sams-other", title="Sam's other", owner=stranger)
    return path.read_bytes()


def edited(package: bytes, manifest=None, annotations=None) -> bytes:
    """The package with scholion.json and annotations.jsonld changed by the functions given
    (each takes the parsed document and changes it in place), manifests recomputed."""
    files = members(package)
    changes = {}
    for path, change in (
        ("data/scholion.json", manifest),
        ("data/annotations.jsonld", annotations),
    ):
        if change is not None:
            doc = json.loads(files[path])
            change(doc)
            changes[path] = json.dumps(doc).encode()
    return rebuild(package, changes)


def with_original(package: bytes, data: bytes) -> bytes:
    """The package with its one original replaced by ``data`` and scholion.json agreeing."""
    files = members(package)
    name = next(n for n in files if n.startswith("data/originals/"))

    def declare(doc):
        doc["sources"][0]["sha256"] = hashlib.sha256(data).hexdigest()
        doc["sources"][0]["size"] = len(data)

    return rebuild(edited(package, manifest=declare), {name: data})


def refusal(package: bytes, importer) -> str:
    with pytest.raises(PackageError) as refused:
        import_bytes(package, importer=importer)
    return str(refused.value)


def source_uuid_of(package: bytes) -> str:
    return json.loads(members(package)["data/scholion.json"])["sources"][0]["uuid"]


def aimed_at(package: bytes, target: uuid.UUID, *, public: bool = False) -> bytes:
    """sam's package with its source (and the annotation's target) renamed to ``target``;
    its files keep their names in the bag."""
    old = source_uuid_of(package)

    def manifest(doc):
        doc["sources"][0]["uuid"] = str(target)
        doc["collection"]["is_public"] = public

    def annotations(doc):
        for item in doc["first"]["items"]:
            item["target"]["source"] = item["target"]["source"].replace(old, str(target))

    return edited(package, manifest=manifest, annotations=annotations)


# --- Finding 1: a private source published by naming its UUID --------------------------------


def test_naming_a_private_sources_uuid_with_a_wrong_hash_learns_nothing(
    stranger, victim, sams_package
):
    secret = victim["source"]
    fake = "ab" * 32

    def wrong_hash(doc):
        doc["sources"][0]["sha256"] = fake

    aimed = edited(aimed_at(sams_package, secret.uuid), manifest=wrong_hash)
    elsewhere = edited(aimed_at(sams_package, uuid.uuid4()), manifest=wrong_hash)

    message = refusal(aimed, stranger)

    assert secret.sha256 not in message and secret.sha256[:12] not in message
    assert "Interview 7" not in message
    # The same answer as for a UUID that exists nowhere.
    assert re.sub(r"[0-9a-f-]{36}", "U", message) == re.sub(
        r"[0-9a-f-]{36}", "U", refusal(elsewhere, stranger)
    )


def test_naming_a_private_sources_uuid_and_hash_without_its_bytes_is_refused(
    stranger, victim, sams_package
):
    secret = victim["source"]

    def real_hash(doc):
        doc["sources"][0]["sha256"] = secret.sha256

    aimed = edited(aimed_at(sams_package, secret.uuid, public=True), manifest=real_hash)
    message = refusal(aimed, stranger)

    assert "the package declares" in message
    assert not secret.collections.exclude(slug="field-notes").exists()
    assert Client().get(f"/sources/{secret.uuid}/original").status_code == 404


def test_a_package_with_a_private_sources_uuid_and_bytes_makes_the_importers_own_source(
    client, stranger, victim, sams_package
):
    """Even holding the very bytes, the stranger gets a source of their own: the private
    one is not added to their public collection, not editable by them, not published."""
    secret = victim["source"]
    with secret.open_original() as fh:
        data = fh.read()
    aimed = with_original(aimed_at(sams_package, secret.uuid, public=True), data)
    elsewhere = with_original(aimed_at(sams_package, uuid.uuid4(), public=True), data)
    # The package's annotation is on sam's text, which the new bytes no longer hold.
    drop_annotations = {
        "data/annotations.jsonld": json.dumps(
            {**json.loads(members(aimed)["data/annotations.jsonld"]), "first": {"items": []}}
        ).encode()
    }

    result = import_bytes(rebuild(aimed, drop_annotations), importer=stranger)

    assert result.sources_created == 1 and result.sources_existing == 0
    own = result.collection.sources.get()
    assert own.pk != secret.pk and own.uuid != secret.uuid
    assert own.archived_by == stranger and own.blob_name == secret.blob_name
    secret.refresh_from_db()
    assert secret.title == "Interview 7"
    assert list(secret.collections.values_list("slug", flat=True)) == ["field-notes"]
    assert Client().get(f"/sources/{secret.uuid}/original").status_code == 404
    client.force_login(stranger)
    assert client.get(f"/sources/{secret.uuid}/edit/").status_code == 404
    # The summary is what a UUID that exists nowhere gets; importing again changes nothing.
    summary = result.summary()
    again = import_bytes(rebuild(aimed, drop_annotations), importer=stranger)
    assert again.sources_existing == 1 and not again.changed
    result.collection.sources.clear()
    Collection.objects.filter(pk=result.collection.pk).delete()
    Source.objects.filter(pk=own.pk).delete()
    fresh = import_bytes(rebuild(elsewhere, drop_annotations), importer=stranger)
    assert fresh.summary() == summary


# --- Finding 3: private text read one guess at a time; annotations confirmed ------------------


def citing(package: bytes, target: uuid.UUID, start: int, end: int, exact: str) -> bytes:
    """sam's annotation with a citation of a passage of ``target``."""

    def change(doc):
        item = doc["first"]["items"][0]
        bodies = item["body"] if isinstance(item["body"], list) else [item["body"]]
        bodies.append(
            {
                "type": "SpecificResource",
                "purpose": "linking",
                "source": f"http://localhost:8000/sources/{target}/",
                "selector": [
                    {"type": "TextPositionSelector", "start": start, "end": end},
                    {"type": "TextQuoteSelector", "exact": exact},
                ],
            }
        )
        item["body"] = bodies

    return edited(package, annotations=change)


def test_a_citation_cannot_test_guesses_at_a_private_text(stranger, victim, sams_package):
    secret = victim["source"]
    start = secret.text.index("4711")
    right = citing(sams_package, secret.uuid, start, start + 4, "4711")
    wrong = citing(sams_package, secret.uuid, start, start + 4, "1234")

    first = import_bytes(right, importer=stranger)
    citation = Citation.objects.get()
    assert citation.kind == Citation.Kind.EXTERNAL
    assert citation.source_id is None and "4711" not in (citation.exact or "")
    Annotation.objects.filter(author=stranger).delete()
    Collection.objects.filter(pk=first.collection.pk).delete()
    Source.objects.filter(archived_by=stranger).delete()

    second = import_bytes(wrong, importer=stranger)
    assert second.summary() == first.summary()
    assert Citation.objects.get().kind == Citation.Kind.EXTERNAL


def test_a_package_cannot_confirm_that_someone_elses_annotation_exists(
    stranger, victim, sams_package
):
    hidden = victim["annotation"]

    def aim(target):
        def change(doc):
            item = doc["first"]["items"][0]
            item["id"] = re.sub(r"[0-9a-f-]{36}", str(target), item["id"])

        return change

    result = import_bytes(edited(sams_package, annotations=aim(hidden.uuid)), importer=stranger)

    assert result.annotations_created == 1 and result.annotations_existing == 0
    mine = Annotation.objects.get(author=stranger)
    assert mine.uuid != hidden.uuid
    hidden.refresh_from_db()
    assert hidden.author_id == victim["source"].archived_by_id and hidden.note == ""
    # Importing again finds the stranger's own annotation, not the hidden one.
    again = import_bytes(edited(sams_package, annotations=aim(hidden.uuid)), importer=stranger)
    assert again.annotations_existing == 1 and not again.changed


def test_a_citation_of_someone_elses_private_annotation_becomes_an_external_reference(
    stranger, victim, sams_package
):
    hidden = victim["annotation"]

    def cite(doc):
        item = doc["first"]["items"][0]
        bodies = item["body"] if isinstance(item["body"], list) else [item["body"]]
        bodies.append(
            {
                "type": "SpecificResource",
                "purpose": "linking",
                "source": f"http://localhost:8000/api/annotations/{hidden.uuid}",
            }
        )
        item["body"] = bodies

    import_bytes(edited(sams_package, annotations=cite), importer=stranger)

    citation = Citation.objects.get()
    assert citation.kind == Citation.Kind.EXTERNAL and citation.cited_annotation_id is None


# --- A private collection's slug -----------------------------------------------------------


def test_a_package_named_like_a_private_collection_lands_in_a_collection_of_its_own(
    stranger, victim, sams_package
):
    def rename(doc):
        doc["collection"]["slug"] = "field-notes"

    result = import_bytes(edited(sams_package, manifest=rename), importer=stranger)

    assert result.collection_created
    assert result.collection.owner == stranger
    assert result.collection.slug.startswith("field-notes-")
    assert list(victim["source"].collections.values_list("slug", flat=True)) == ["field-notes"]
    again = import_bytes(edited(sams_package, manifest=rename), importer=stranger)
    assert again.collection == result.collection and not again.changed


def test_a_package_named_like_a_public_collection_of_someone_else_is_refused(
    stranger, owner, sams_package
):
    Collection.objects.create(slug="open-notes", title="Open", owner=owner, is_public=True)

    def rename(doc):
        doc["collection"]["slug"] = "open-notes"

    message = refusal(edited(sams_package, manifest=rename), stranger)
    assert "already exists and is not yours" in message


# --- Finding 4: invalid slugs are refused before anything is written --------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("slug", ["bad slug!", "x/../admin", "", "a" * 81, "ünïcode"])
def test_an_invalid_collection_slug_is_refused_and_writes_nothing(
    client, stranger, sams_package, slug
):
    def rename(doc):
        doc["collection"]["slug"] = slug

    before = (Collection.objects.count(), Source.objects.count(), Annotation.objects.count())
    client.force_login(stranger)
    upload = io.BytesIO(edited(sams_package, manifest=rename))
    upload.name = "bag.zip"

    response = client.post("/import/", {"package": upload})
    run_worker()

    assert response.status_code == 302
    assert "collection.slug" in client.get(response["Location"]).content.decode()
    assert (Collection.objects.count(), Source.objects.count(), Annotation.objects.count()) == (
        before
    )
    assert client.get("/collections/").status_code == 200


def test_collections_with_bad_slugs_already_stored_are_repaired_by_a_migration(owner):
    import importlib

    from django.apps import apps

    repair = importlib.import_module("archive.migrations.0008_repair_collection_slugs")
    Collection.objects.create(slug="ok-slug", title="OK", owner=owner, is_public=True)
    Collection.objects.create(slug="bad slug!", title="Bad", owner=owner, is_public=True)
    Collection.objects.create(slug="x/../admin", title="Worse", owner=owner, is_public=True)
    Collection.objects.create(slug="bad-slug", title="Taken", owner=owner, is_public=True)

    repair.repair_slugs(apps, None)

    slugs = set(Collection.objects.values_list("slug", flat=True))
    assert slugs == {"ok-slug", "bad-slug", "bad-slug-2", "x-admin"}
    response = Client().get("/collections/")
    assert response.status_code == 200
    for slug in slugs:
        assert Client().get(f"/collections/{slug}/").status_code == 200


# --- Finding 7: deeply nested JSON ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_deeply_nested_json_is_refused_with_a_message_not_a_crash(
    client, stranger, sams_package, tmp_path
):
    deep = b"[" * 100_000 + b"]" * 100_000
    package = rebuild(sams_package, {"data/annotations.jsonld": deep})

    assert "nested more than 64 levels deep" in refusal(package, stranger)

    path = tmp_path / "deep.zip"
    path.write_bytes(package)
    with pytest.raises(CommandError, match="Nothing was imported: .*nested more than 64"):
        call_command("import_collection", str(path))
    client.force_login(stranger)
    upload = io.BytesIO(package)
    upload.name = "deep.zip"
    response = client.post("/import/", {"package": upload})
    run_worker()
    assert response.status_code == 302
    assert "nested more than 64 levels deep" in client.get(response["Location"]).content.decode()
    nested_manifest = rebuild(sams_package, {"data/scholion.json": b'{"a":' * 5000 + b"1"})
    assert "nested more than 64 levels deep" in refusal(nested_manifest, stranger)


def test_no_account_is_made_by_a_strangers_import(stranger, sams_package):
    def other_author(doc):
        doc["first"]["items"][0]["creator"]["nickname"] = "wanted-name"

    message = refusal(edited(sams_package, annotations=other_author), stranger)
    assert "attributes work to wanted-name" in message
    assert not get_user_model().objects.filter(username="wanted-name").exists()
