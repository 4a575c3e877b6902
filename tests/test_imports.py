"""Importing a collection from a Scholion BagIt package: the round trip, re-imports, the upload
page, and every kind of bad package refused with nothing half-imported."""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from annotations.models import Annotation
from archive.blobstore import hash_stored
from archive.models import Collection, Source
from exports.package import PackageError
from tests.conftest import run_worker
from tests.helpers import (
    blob_files,
    cite_everything,
    counts,
    empty_everything,
    export_bag,
    import_bytes,
    members,
    rebuild,
)

pytestmark = pytest.mark.django_db

# What differs between a package and the package exported again after importing it.
DIFFERS_IN_MANIFEST = ("exported_at", "exported_by")
DIFFERS_IN_BAG_INFO = ("Bagging-Date",)


# --- Round trip ----------------------------------------------------------------------------


def test_export_import_export_gives_the_same_content(owner, annotated, tmp_path):
    annotated["alpha"].verify_fixity()
    first = members(export_bag(tmp_path / "first.zip"))
    empty_everything()
    assert counts() == (0, 0, 0, 0, 0)

    call_command("import_collection", str(tmp_path / "first.zip"))
    olive = get_user_model().objects.get(username="olive")
    assert not olive.is_active and not olive.has_usable_password()
    assert Annotation.objects.count() == 4  # maya's private annotation was never exported
    imported = Annotation.objects.get(uuid=annotated["a"]["olive-collection"].uuid)
    assert sorted(imported.tags.names()) == ["claims", "dates"]
    assert imported.note == 'Line one\nLine two, with "quotes" and a comma'
    source = Source.objects.get(uuid=annotated["alpha"].uuid)
    assert hash_stored(source.blob_name)[0] == source.sha256 == annotated["alpha"].sha256
    assert source.citation_key == annotated["alpha"].citation_key
    assert source.creators == ["Ada Lovelace"] and source.archived_by is not None
    assert source.archived_by.username == "olive"
    assert source.archived_at == annotated["alpha"].archived_at

    second = members(export_bag(tmp_path / "second.zip"))
    assert set(first) == set(second)
    for name in first:
        if name in (
            "data/scholion.json",
            "bag-info.txt",
            "manifest-sha256.txt",
            "tagmanifest-sha256.txt",
        ):
            continue
        assert first[name] == second[name], f"{name} differs after the round trip"
    a, b = json.loads(first["data/scholion.json"]), json.loads(second["data/scholion.json"])
    for key in DIFFERS_IN_MANIFEST:
        a.pop(key), b.pop(key)
    assert a == b
    info = [re.sub(rb"Bagging-Date: .*\n", b"", m["bag-info.txt"]) for m in (first, second)]
    assert info[0] == info[1]
    assert first["manifest-sha256.txt"] == second["manifest-sha256.txt"].replace(
        hashlib.sha256(second["data/scholion.json"]).hexdigest().encode(),
        hashlib.sha256(first["data/scholion.json"]).hexdigest().encode(),
    )


def test_canonical_and_via_survive_the_round_trip(owner, annotated, tmp_path):
    linked = annotated["a"]["olive-collection"]
    Annotation.objects.filter(pk=linked.pk).update(
        canonical="urn:uuid:5e1f6b2c-0000-4000-8000-000000000001",
        via=["https://elsewhere.example/a/1", "https://elsewhere.example/a/2"],
    )
    first = members(export_bag(tmp_path / "first.zip"))
    empty_everything()
    import_bytes(tmp_path.joinpath("first.zip").read_bytes())
    imported = Annotation.objects.get(uuid=linked.uuid)
    assert imported.canonical == "urn:uuid:5e1f6b2c-0000-4000-8000-000000000001"
    assert imported.via == ["https://elsewhere.example/a/1", "https://elsewhere.example/a/2"]
    second = members(export_bag(tmp_path / "second.zip"))
    assert second["data/annotations.jsonld"] == first["data/annotations.jsonld"]


def test_importing_the_same_package_again_changes_nothing(owner, annotated, tmp_path):
    data = export_bag(tmp_path / "bag.zip")
    empty_everything()
    first = import_bytes(data)
    assert first.changed and first.annotations_created == 4 and first.sources_created == 2
    before = counts()
    rows = list(Annotation.objects.values().order_by("pk"))
    blobs = blob_files()
    again = import_bytes(data)
    assert not again.changed
    assert again.annotations_existing == 4 and again.sources_existing == 2
    assert counts() == before
    assert list(Annotation.objects.values().order_by("pk")) == rows
    assert blob_files() == blobs


def test_import_matches_existing_people_and_sources(owner, member, annotated, tmp_path):
    data = export_bag(tmp_path / "bag.zip")
    Annotation.objects.all().delete()
    result = import_bytes(data)
    assert result.sources_existing == 2 and result.annotations_created == 4
    assert result.people_created == []
    assert Annotation.objects.get(uuid=annotated["a"]["maya-public"].uuid).author == member


def test_a_directory_imports_like_the_zip(owner, annotated, tmp_path):
    data = export_bag(tmp_path / "bag.zip")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(tmp_path / "dir")
    empty_everything()
    call_command("import_collection", str(tmp_path / "dir"))
    assert Annotation.objects.count() == 4


# --- Bad packages: each refused, by name, with nothing left behind -----------------------


@pytest.fixture
def package(owner, annotated, tmp_path):
    """A good package, and an empty archive to import it into."""
    data = export_bag(tmp_path / "bag.zip")
    empty_everything()
    return data


def assert_refused(data: bytes, message: str) -> None:
    with pytest.raises(PackageError, match=message):
        import_bytes(data)
    assert counts() == (0, 0, 0, 0, 0), "something was half-imported"
    assert blob_files() == set(), "a blob was left behind"


def test_a_corrupt_zip_is_refused(package):
    assert_refused(b"PK\x03\x04 this is not really a zip", "not a readable zip file")
    assert_refused(package[: len(package) // 2], "not a readable zip file")


def test_a_damaged_member_is_refused(package):
    files = members(package)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    damaged = out.getvalue().replace(b"The first passage", b"The first passagE")
    assert_refused(damaged, "damaged in the zip")


def test_a_checksum_mismatch_is_refused(package):
    name = next(n for n in members(package) if n.startswith("data/originals/"))
    changed = rebuild(package, {name: b"other bytes"}, fix_manifests=False)
    assert_refused(changed, f"Checksum mismatch for {re.escape(name)}")


def test_a_changed_tag_file_is_refused_by_the_tag_manifest(package):
    files = members(package)
    assert "tagmanifest-sha256.txt" in files
    info = files["bag-info.txt"] + b"Source-Organization: someone else\n"
    changed = rebuild(package, {"bag-info.txt": info}, fix_manifests=False)
    assert_refused(changed, "Checksum mismatch for the tag file bag-info.txt")
    listed = files["tagmanifest-sha256.txt"] + f"{'0' * 64}  extra-tag.txt\n".encode()
    changed = rebuild(package, {"tagmanifest-sha256.txt": listed}, fix_manifests=False)
    assert_refused(changed, "not in the bag: extra-tag.txt")


def test_an_original_that_differs_from_its_declared_sha256_is_refused(package):
    files = members(package)
    name = next(n for n in files if n.startswith("data/originals/"))
    # The manifest agrees (it was recomputed), scholion.json's SHA-256 does not.
    changed = rebuild(package, {name: files[name] + b" tampered"})
    assert_refused(changed, "not the [0-9a-f]{64} the package declares")


def test_a_path_climbing_out_of_the_bag_is_refused(package):
    assert_refused(
        rebuild(package, {"../../evil.txt": b"x"}), r"leaves the bag \('../../evil.txt'\)"
    )
    assert_refused(rebuild(package, {"data/../../evil.txt": b"x"}), "leaves the bag")


def test_an_absolute_path_is_refused(package):
    assert_refused(rebuild(package, {"/etc/evil": b"x"}), r"absolute path \('/etc/evil'\)")
    assert_refused(rebuild(package, {"C:/evil": b"x"}), "absolute path")


def test_a_zip_bomb_is_refused_by_its_compression_ratio(package):
    bomb = rebuild(package, {"data/originals/bomb.txt": b"\0" * (20 * 1024 * 1024)})
    assert len(bomb) < 200_000
    assert_refused(bomb, "bomb.txt would inflate .* times .* possible zip bomb")


def test_a_package_too_large_unpacked_is_refused(package):
    with override_settings(SCHOLION_IMPORT_MAX_BYTES=len(package)):
        assert_refused(package, "would unpack to .* more than the limit")


def test_a_zip_that_understates_a_size_is_refused_while_reading(package):
    data = bytearray(rebuild(package, {}))
    target = b"data/report.md"
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack("<H", data[at + 28 : at + 30])[0]
        if bytes(data[at + 46 : at + 46 + name_length]) == target:
            data[at + 24 : at + 28] = struct.pack("<I", 10)  # uncompressed size: 10 bytes
            break
        at = data.find(b"PK\x01\x02", at + 4)
    assert at != -1
    assert_refused(bytes(data), "data/report.md is damaged in the zip")


def test_malformed_json_is_refused(package):
    assert_refused(
        rebuild(package, {"data/annotations.jsonld": b'{"type": "AnnotationCollection",'}),
        r"data/annotations.jsonld is not valid JSON \(parse error: premature EOF\)",
    )
    assert_refused(
        rebuild(package, {"data/scholion.json": b"[1, 2"}), "data/scholion.json is not valid JSON"
    )


def test_an_annotation_whose_quote_does_not_match_the_text_is_refused(package):
    doc = json.loads(members(package)["data/annotations.jsonld"])
    item = doc["first"]["items"][-1]
    item["target"]["selector"][1]["exact"] = "not what the text says"
    changed = rebuild(package, {"data/annotations.jsonld": json.dumps(doc).encode()})
    # The sources were archived before the annotation failed: their rows and blobs go too.
    assert_refused(changed, f"Annotation {item['id'].rsplit('/', 1)[-1]}: its quote does not match")


def test_a_package_without_a_bag_declaration_is_refused(package):
    assert_refused(rebuild(package, {"bagit.txt": None}), "not a BagIt package")


def test_the_command_names_the_problem(package, tmp_path):
    path = tmp_path / "bad.zip"
    path.write_bytes(b"garbage")
    with pytest.raises(
        CommandError, match="Nothing was imported: The package is not a readable zip"
    ):
        call_command("import_collection", str(path))


# --- The upload page -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_curator_imports_through_the_upload_page(client, curator, annotated, tmp_path):
    data = export_bag(tmp_path / "bag.zip")
    Annotation.objects.all().delete()
    client.force_login(curator)
    assert client.get("/import/").status_code == 200
    upload = io.BytesIO(data)
    upload.name = "field-notes-bag.zip"
    response = client.post("/import/", {"package": upload})
    assert response.status_code == 302 and response["Location"].startswith("/import/")
    assert Annotation.objects.count() == 0  # the worker imports it, not the request

    run_worker()
    assert Annotation.objects.count() == 4
    page = client.get(response["Location"]).content.decode()
    assert "4 annotations added" in page
    assert 'href="/collections/field-notes/"' in page


@pytest.mark.django_db(transaction=True)
def test_a_bad_upload_shows_the_problem_and_imports_nothing(client, curator, annotated):
    client.force_login(curator)
    upload = io.BytesIO(b"not a zip")
    upload.name = "bag.zip"
    before = counts()
    response = client.post("/import/", {"package": upload})
    assert response.status_code == 302
    run_worker()
    page = client.get(response["Location"]).content.decode()
    assert "Failed" in page
    assert "Nothing was imported: The package is not a readable zip file" in page
    assert counts() == before


@pytest.mark.django_db(transaction=True)
def test_collection_owner_may_open_the_upload_page_but_not_import_others_work(
    client, owner, stranger, annotated, tmp_path
):
    data = export_bag(tmp_path / "bag.zip")
    Collection.objects.create(slug="sams", title="Sam's", owner=stranger)
    client.force_login(stranger)
    assert client.get("/import/").status_code == 200
    upload = io.BytesIO(data)
    upload.name = "bag.zip"
    response = client.post("/import/", {"package": upload})
    assert response.status_code == 302
    run_worker()
    page = client.get(response["Location"]).content.decode()
    assert "only a curator may import other people" in page


def test_who_may_open_the_upload_page(client, member, annotated):
    assert client.get("/import/").status_code == 302  # to the login page
    client.force_login(member)  # a member, owning no collection
    assert client.get("/import/").status_code == 403
    assert "Import a collection" not in client.get("/collections/").content.decode()
    assert client.delete("/import/").status_code in (403, 405)


def test_the_collections_list_links_the_upload_page_for_curators(client, curator, annotated):
    client.force_login(curator)
    assert 'href="/import/"' in client.get("/collections/").content.decode()


def test_a_collection_owner_cannot_import_work_under_other_peoples_names(
    owner, member, stranger, annotated, tmp_path
):
    """Whether or not the people have accounts here, the refusal is the same and no
    account is made (a package could otherwise squat usernames others will want)."""
    data = export_bag(tmp_path / "bag.zip")
    Annotation.objects.all().delete()
    Collection.objects.filter(slug="field-notes").delete()
    Collection.objects.create(slug="sams", title="Sam's", owner=stranger)
    message = "attributes work to maya, olive: only a curator may import"
    with pytest.raises(PackageError, match=message) as with_accounts:
        import_bytes(data, importer=stranger)
    get_user_model().objects.filter(username__in=["olive", "maya"]).delete()
    before = counts()
    with pytest.raises(PackageError, match=message) as without_accounts:
        import_bytes(data, importer=stranger)
    assert str(with_accounts.value) == str(without_accounts.value)
    assert counts() == before
    assert not get_user_model().objects.filter(username__in=["olive", "maya"]).exists()
    assert not Collection.objects.filter(slug="field-notes").exists()


def test_a_curator_import_keeps_authors_missing_here_as_inactive_accounts(
    owner, member, curator, annotated, tmp_path
):
    data = export_bag(tmp_path / "bag.zip")
    Annotation.objects.all().delete()
    Collection.objects.filter(slug="field-notes").delete()
    get_user_model().objects.filter(username__in=["olive", "maya"]).delete()
    result = import_bytes(data, importer=curator)
    assert sorted(result.people_created) == ["maya", "olive"]
    assert Annotation.objects.filter(author__username="olive", author__is_active=False).count() == 2


# --- Citations -----------------------------------------------------------------------------


def test_citations_survive_the_round_trip(owner, annotated, tmp_path):
    from annotations.models import Citation

    citing, outside = cite_everything(owner, annotated)
    before = [c.as_text() for c in Citation.objects.filter(annotation=citing).order_by("position")]
    first = members(export_bag(tmp_path / "first.zip"))
    empty_everything()

    result = import_bytes(tmp_path.joinpath("first.zip").read_bytes())
    assert result.citations_created == 4
    imported = list(Citation.objects.filter(annotation__uuid=citing.uuid).order_by("position"))
    assert [c.kind for c in imported] == ["source", "annotation", "external", "external"]
    assert [c.as_text() for c in imported[:3]] == before[:3]
    assert imported[0].exact == "the harbour froze" and imported[0].locator == "4"
    assert imported[1].comment == "same winter"
    # The source outside the package keeps its link, as an external reference to its IRI.
    assert imported[3].url.endswith(f"/sources/{outside.uuid}/")
    assert "not in this package" in imported[3].title

    second = members(export_bag(tmp_path / "second.zip"))
    a, b = (json.loads(m["data/annotations.jsonld"])["first"]["items"] for m in (first, second))
    outside_iri = imported[3].url
    for item in (*a, *b):  # the one citation that changed form: a source became a reference
        item["body"] = [x for x in _as_list(item["body"]) if x.get("source") != outside_iri]
    assert a == b
    bib = second["data/sources.bib"].decode()
    assert "Winters of the North" in bib
    # ...and, as an external reference now, the source outside the package joins the list.
    assert bib.startswith(first["data/sources.bib"].decode()) and outside_iri in bib


def _as_list(value):
    return value if isinstance(value, list) else [value]


# The context packages were written with until `reference` became ordinary JSON-LD terms.
OLD_CONTEXT = [
    "http://www.w3.org/ns/anno.jsonld",
    {
        "visibility": "urn:x-scholion:visibility",
        "locator": "urn:x-scholion:locator",
        "locatorLabel": "urn:x-scholion:locatorLabel",
        "comment": "urn:x-scholion:comment",
        "reference": {"@id": "urn:x-scholion:reference", "@type": "@json"},
    },
]


def test_a_package_written_with_the_old_reference_term_still_imports_its_references(
    owner, annotated, tmp_path
):
    from annotations.models import Citation

    citing, _ = cite_everything(owner, annotated)
    before = [c.as_text() for c in Citation.objects.filter(annotation=citing).order_by("position")]
    data = export_bag(tmp_path / "bag.zip")
    doc = json.loads(members(data)["data/annotations.jsonld"])
    assert doc["@context"] != OLD_CONTEXT
    # As the old export wrote it: that context, and a page that was "…?page=1" and partOf an IRI.
    doc["@context"] = OLD_CONTEXT
    doc["first"]["id"] = doc["last"] = doc["id"] + "?page=1"
    doc["first"]["partOf"] = doc["id"]
    old = rebuild(data, {"data/annotations.jsonld": json.dumps(doc, indent=1).encode()})
    empty_everything()

    result = import_bytes(old)
    assert result.citations_created == 4
    imported = Citation.objects.filter(annotation__uuid=citing.uuid).order_by("position")
    assert [c.as_text() for c in imported][:3] == before[:3]
    reference = imported[2]
    assert (reference.kind, reference.doi, reference.reference_type) == (
        "external",
        "10.1234/abc.def",
        "article-journal",
    )
    assert (reference.title, reference.creators, reference.publisher) == (
        "Winters of the North",
        ["Jansen, Pieter"],
        "Journal of Cold",
    )


def test_a_cited_passage_that_does_not_match_is_refused(owner, annotated, tmp_path):
    cite_everything(owner, annotated)
    data = export_bag(tmp_path / "first.zip")
    doc = members(data)["data/annotations.jsonld"].decode()
    assert '"exact": "the harbour froze"' in doc
    broken = doc.replace('"exact": "the harbour froze"', '"exact": "the harbour thawed"')
    empty_everything()
    with pytest.raises(PackageError, match="cited passage .* does not match"):
        import_bytes(rebuild(data, {"data/annotations.jsonld": broken.encode()}))
    assert counts() == (0, 0, 0, 0, 0) and not blob_files()


def test_tags_keep_the_order_they_were_added_in_through_a_round_trip(owner, annotated, tmp_path):
    from annotations.models import Annotation

    names = ["zebra", "Alpha", "mid", "beta", "Omega", "kilo"]
    tagged = Annotation.create_anchored(
        author=owner, source=annotated["alpha"], start=0, end=3, tags=names
    )
    export_bag(tmp_path / "bag.zip")
    empty_everything()
    import_bytes(tmp_path.joinpath("bag.zip").read_bytes())
    imported = Annotation.objects.with_related().get(uuid=tagged.uuid)
    assert [t.name for t in imported.tags.all()] == names
