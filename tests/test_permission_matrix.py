"""Who sees what, walked over every URL pattern in the project.

The patterns come from the URLconf itself, so a new page cannot escape the matrix: a pattern
that is neither filled in below nor listed in EXCLUDED fails the test. Every page is requested
as every kind of user against private, collection and public objects, and no response may
contain a marker (title, quote, note, tag name) of an object that user must not see.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

from accounts.models import ApiToken
from annotations.models import Annotation
from archive.models import Capture, Collection, Membership, Source
from exports.formats import FORMATS
from exports.models import ImportJob
from tests.conftest import archive_text, run_worker

pytestmark = pytest.mark.django_db

EXCLUDED = {
    "password_reset_confirm": "needs a one-time token from an e-mail; Django's own view",
    "logout": "POST-only session end; covered in test_accounts",
}
ROLES = ["anonymous", "stranger", "viewer", "annotator", "editor", "owner", "curator"]


def walk(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue  # the admin has its own staff gate, tested below
            yield from walk(pattern, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern.name


@pytest.fixture
def world(django_user_model):
    users = {}
    for role in ROLES[1:]:
        users[role] = django_user_model.objects.create_user(
            role,
            f"{role}@example.org",
            "pw",
            is_staff=role == "curator",
            is_superuser=role == "curator",
        )
    users["archivist"] = django_user_model.objects.create_user("archivist", password="pw")
    private = Collection.objects.create(
        slug="privcoll", title="PRIVCOLLTITLE", owner=users["owner"]
    )
    public = Collection.objects.create(
        slug="pubcoll", title="PUBCOLLTITLE", owner=users["owner"], is_public=True
    )
    for role in ("viewer", "annotator", "editor", "owner"):
        Membership.objects.create(collection=private, user=users[role], role=role)
    Membership.objects.create(collection=public, user=users["owner"], role="owner")
    Membership.objects.create(collection=public, user=users["annotator"], role="annotator")
    sp = archive_text(
        "PRIVTEXT private source body words here.",
        users["owner"],
        private,
        metadata={"title": "PRIVTITLE"},
    )
    sq = archive_text(
        "PUBTEXT public source body words here.",
        users["owner"],
        public,
        metadata={"title": "PUBTITLE"},
    )
    sx = archive_text(
        "PERSONALTEXT kept by its archivist alone.",
        users["archivist"],
        metadata={"title": "PERSONALTITLE"},
    )
    a = {}
    for source, prefix in ((sp, "P"), (sq, "Q")):
        for vis in ("private", "collection", "public"):
            a[f"{prefix}-{vis}"] = Annotation.create_anchored(
                author=users["annotator"],
                source=source,
                start=0,
                end=7,
                note=f"{prefix}{vis.upper()}NOTE remark",
                tags=[f"{prefix.lower()}{vis}tag"],
                visibility=vis,
            )
    a["X"] = Annotation.create_anchored(
        author=users["archivist"],
        source=sx,
        start=0,
        end=12,
        note="XNOTE remark",
        tags=["xtag"],
        visibility="private",
    )
    # A public note citing a passage of the private source: its quote and title must show
    # only to those who may read that source ("a source you do not have access to" to others).
    from annotations.models import Citation

    cited = Citation.build_all(
        [{"source": str(sp.uuid), "start": 0, "end": 12, "locator": "1"}],
        user=users["annotator"],
        citing=a["Q-public"],
    )
    a["Q-public"].replace_citations(cited)
    token, _ = ApiToken.issue(users["archivist"], "archivist token")
    # A code in each collection's codebook, and the owner's upload and export jobs.
    from taggit.models import Tag

    from annotations.models import Code
    from archive.models import UploadJob
    from exports.models import ExportJob

    codes = {}
    for collection, name in ((private, "pcollectiontag"), (public, "qpublictag")):
        codes[name] = Code.objects.create(collection=collection, tag=Tag.objects.get(name=name))
    # The owner's rename running on the worker: the private collection's curators see that
    # it runs on the codebook page, its progress only the owner, on its own page.
    from django.utils import timezone

    from annotations.models import CodebookJob

    codebook_job = CodebookJob.objects.create(
        user=users["owner"],
        collection=private,
        action=CodebookJob.Action.RENAME,
        code=codes["pcollectiontag"],
        from_tag=codes["pcollectiontag"].tag,
        old_name="pcollectiontag",
        new_name="pcodes",
        total=1,
        state=CodebookJob.State.RUNNING,
        heartbeat_at=timezone.now(),
        progress="OWNERSJOB",
    )
    upload_job = UploadJob.objects.create(
        user=users["owner"],
        collection=private,
        filename="OWNERSJOB.pdf",
        title="OWNERSJOB",
        sha256=sp.sha256,
        size=1,
        blob_name=sp.blob_name,
    )
    export_job = ExportJob.objects.create(
        user=users["owner"],
        collection=private,
        format="csv",
        base_url="http://testserver",
        progress="OWNERSJOB",
    )
    job = ImportJob.objects.create(
        user=users["owner"],
        filename="OWNERSJOB.zip",
        size=1,
        state=ImportJob.State.DONE,
        summary="OWNERSJOB imported.",
    )
    # Captures: the archivist's of their own source (its web archive standing in by the
    # source's bytes), the owner's of the private collection's source, and one still queued.
    captures = [
        (
            Capture.objects.create(
                user=users["archivist"],
                url="https://example.org/PERSONALTITLE",
                state=Capture.State.DONE,
                source=sx,
                wacz_name=sx.blob_name,
                wacz_sha256=sx.sha256,
                screenshot_name=sx.blob_name,
                screenshot_sha256=sx.sha256,
            ),
            "PERSONALTITLE",
        ),
        (
            Capture.objects.create(
                user=users["owner"],
                url="https://example.org/PRIVTITLE",
                state=Capture.State.DONE,
                source=sp,
                wacz_name=sp.blob_name,
                wacz_sha256=sp.sha256,
            ),
            "PRIVTITLE",
        ),
        (
            Capture.objects.create(user=users["owner"], url="https://example.org/OWNERSJOB"),
            "OWNERSJOB",
        ),
    ]
    return {
        "job": job,
        "upload_job": upload_job,
        "export_job": export_job,
        "codebook_job": codebook_job,
        "captures": captures,
        "users": users,
        "private": private,
        "public": public,
        "sp": sp,
        "sq": sq,
        "sx": sx,
        "a": a,
        "token": token,
    }


def markers_hidden_from(role: str) -> set[str]:
    """Markers of objects this role must never see, per the access rules."""
    everything = {
        "PRIVTITLE",
        "PRIVTEXT",
        "PRIVCOLLTITLE",
        "PERSONALTITLE",
        "PERSONALTEXT",
        "XNOTE",
        "xtag",
        "OWNERSJOB",
    }
    for prefix in ("P", "Q"):
        for vis in ("private", "collection", "public"):
            everything |= {f"{prefix}{vis.upper()}NOTE", f"{prefix.lower()}{vis}tag"}
    visible: set[str] = set()
    if role == "curator":
        return set()
    # Everyone: the public collection's source and its public annotation.
    visible |= {"QPUBLICNOTE", "qpublictag"}
    if role in ("viewer", "annotator", "editor", "owner"):
        visible |= {
            "PRIVTITLE",
            "PRIVTEXT",
            "PRIVCOLLTITLE",
            "PCOLLECTIONNOTE",
            "pcollectiontag",
            "PPUBLICNOTE",
            "ppublictag",
        }
    if role == "annotator":  # the author of every P and Q annotation
        visible |= {
            "PPRIVATENOTE",
            "pprivatetag",
            "QPRIVATENOTE",
            "qprivatetag",
            "QCOLLECTIONNOTE",
            "qcollectiontag",
        }
    if role == "owner":  # member of the public collection too, and asked for an import
        visible |= {"QCOLLECTIONNOTE", "qcollectiontag", "OWNERSJOB"}
    return everything - visible


def _annotation_fills(w):
    return [({"uuid": ann.uuid}, ann.note.split()[0]) for ann in w["a"].values()]


def _source_fills(w):
    return [
        ({"uuid": w["sp"].uuid}, "PRIVTITLE"),
        ({"uuid": w["sq"].uuid}, None),
        ({"uuid": w["sx"].uuid}, "PERSONALTITLE"),
    ]


def _member_fills(w):
    return [
        ({"slug": "privcoll", "username": "viewer"}, "PRIVCOLLTITLE"),
        ({"slug": "pubcoll", "username": "annotator"}, None),
    ]


def _job_fills(w):
    return [({"job_uuid": w["job"].uuid}, "OWNERSJOB")]


def _codebook_fills(w):
    return [
        ({"slug": "privcoll", "tag": "pcollectiontag"}, "PRIVCOLLTITLE"),
        ({"slug": "pubcoll", "tag": "qpublictag"}, None),
    ]


def _capture_fills(w):
    return [({"capture_uuid": capture.uuid}, marker) for capture, marker in w["captures"]]


# For each URL pattern with parameters: the values to fill it with, each with the marker of
# the object they name (None for one every role may see).
FILLS = {
    "passage": lambda w: [
        ({"uuid": w["sp"].uuid, "start": 0, "end": 5}, "PRIVTITLE"),
        ({"uuid": w["sx"].uuid, "start": 0, "end": 5}, "PERSONALTITLE"),
    ],
    "source_detail": _source_fills,
    "source_original": _source_fills,
    "source_edit": _source_fills,
    "api_detail": _annotation_fills,
    "history": _annotation_fills,
    "token_revoke": lambda w: [({"uuid": w["token"].uuid}, None)],
    "collection_detail": _member_fills,
    "members": _member_fills,
    "member_add": _member_fills,
    "member_role": _member_fills,
    "member_remove": _member_fills,
    "collection_leave": _member_fills,
    "invitation_create": _member_fills,
    "collection_transfer": _member_fills,
    "collection_archive": _member_fills,
    "collection_reopen": _member_fills,
    "collection_delete": _member_fills,
    "hypothesis_import": _member_fills,
    "invitation_revoke": lambda w: [
        ({"slug": "privcoll", "uuid": "6f1c1f9e-5d2a-4a53-9a8e-111111111111"}, "PRIVCOLLTITLE")
    ],
    # A link's key is the invitation: whoever holds a valid one may see the collection it
    # names (tests/test_teams.py); a wrong one names nothing.
    "join": lambda w: [({"key": "no-such-invitation-key-0123456789abcdef0123"}, None)],
    "download": lambda w: [
        ({"slug": slug, "fmt": fmt}, marker)
        for slug, marker in (("privcoll", "PRIVCOLLTITLE"), ("pubcoll", None))
        for fmt in FORMATS
    ],
    "menu": lambda w: [({"slug": "privcoll"}, "PRIVCOLLTITLE"), ({"slug": "pubcoll"}, None)],
    "job": _job_fills,
    "capture": _capture_fills,
    "capture_retry": _capture_fills,
    "capture_wacz": _capture_fills,
    "capture_screenshot": _capture_fills,
    "api_capture": lambda w: [({"uuid": c.uuid}, marker) for c, marker in w["captures"]],
    "job_status": _job_fills,
    "job_retry": _job_fills,
    "api_restore": _annotation_fills,
    "codebook": _codebook_fills,
    "code_add": _codebook_fills,
    "code_edit": _codebook_fills,
    "code_rename": _codebook_fills,
    "code_merge": _codebook_fills,
    "code_delete": _codebook_fills,
    "codebook_csv": _codebook_fills,
    "prepare": lambda w: [
        ({"slug": slug, "fmt": fmt}, marker)
        for slug, marker in (("privcoll", "PRIVCOLLTITLE"), ("pubcoll", None))
        for fmt in FORMATS
    ],
    "upload_job": lambda w: [({"job_uuid": w["upload_job"].uuid}, "OWNERSJOB")],
    "upload_job_status": lambda w: [({"job_uuid": w["upload_job"].uuid}, "OWNERSJOB")],
    "upload_job_retry": lambda w: [({"job_uuid": w["upload_job"].uuid}, "OWNERSJOB")],
    "export_job": lambda w: [({"job_uuid": w["export_job"].uuid}, "OWNERSJOB")],
    "export_job_status": lambda w: [({"job_uuid": w["export_job"].uuid}, "OWNERSJOB")],
    "export_job_file": lambda w: [({"job_uuid": w["export_job"].uuid}, "OWNERSJOB")],
    "codebook_job": lambda w: [({"job_uuid": w["codebook_job"].uuid}, "OWNERSJOB")],
    "codebook_job_status": lambda w: [({"job_uuid": w["codebook_job"].uuid}, "OWNERSJOB")],
    "codebook_job_retry": lambda w: [({"job_uuid": w["codebook_job"].uuid}, "OWNERSJOB")],
    "tag_detail": lambda w: [
        ({"slug": ann.tags.first().slug}, ann.tags.first().name) for ann in w["a"].values()
    ],
}


def urls_for(route: str, name: str, w) -> list[tuple[str, str | None]]:
    """Concrete paths for a pattern, each with the marker of the object it names (if any).
    A pattern with parameters that FILLS does not know is an error, not a page skipped."""
    params = re.findall(r"<(?:(\w+):)?(\w+)>", route)
    if not params:
        return [(route, None)]
    if name not in FILLS:
        raise LookupError(f"URL pattern {name!r} ({route}) is missing from FILLS")
    paths = []
    for values, marker in FILLS[name](w):
        path = route
        for _conv, param in params:
            path = re.sub(rf"<(?:\w+:)?{param}>", str(values[param]), path)
        paths.append((path, marker))
    return paths


def unzipped(raw: bytes) -> bytes:
    """A zip's members (the bag, the XLSX) one after the other, so that a marker in them is
    found: compressed, it would not show in the raw bytes."""
    if not raw.startswith(b"PK\x03\x04"):
        return raw
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return b"\n".join(zf.read(name) for name in zf.namelist())


def client_for(role: str, w) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(w["users"][role])
    return client


def test_every_url_pattern_is_covered():
    uncovered = [
        f"{name}: {route}"
        for route, name in walk()
        if name not in EXCLUDED and re.search(r"<(?:\w+:)?\w+>", route) and name not in FILLS
    ]
    assert not uncovered, f"URL patterns missing from the permission matrix: {uncovered}"


@pytest.mark.parametrize("role", ROLES)
def test_no_page_leaks_what_a_user_may_not_see(role, world):
    client = client_for(role, world)
    hidden = markers_hidden_from(role)
    problems = []
    # Words that occur beside the markers, so a hit would show a marker the query did not echo.
    searches = ["private source body", "archivist alone", "remark", "public source"]
    for route, name in walk():
        if name in EXCLUDED:
            continue
        paths = urls_for("/" + route, name, world)
        if name == "search":
            paths = [(f"/search/?q={q}", None) for q in searches]
        elif name == "api_tags":
            paths = [("/api/tags/?q=", None), ("/api/tags/?q=p", None), ("/api/tags/?q=x", None)]
        elif name == "api_sources":
            paths = [("/api/sources/", None), ("/api/sources/?q=PRIV", None)]
        elif name == "api_list":
            paths = [("/api/annotations/", None), ("/api/annotations/?author=annotator", None)]
        for path, marker in paths:
            response = client.get(path)
            status = response.status_code
            if status >= 500:
                problems.append(f"{path}: {status}")
                continue
            if marker is not None and marker in hidden:
                # An object the user may not see: 404, or for a visitor the login page (or
                # an API's 401, the same for every id), or 405 for a POST-only URL; never 200
                # and never 403.
                allowed = {404, 405} | ({302, 401} if role == "anonymous" else set())
                if status not in allowed:
                    problems.append(f"{path}: {status} for an object {role} may not see")
            raw = response.getvalue()  # joins a streamed body too
            raw = unzipped(raw)
            # What the user typed (the path, a query) may be echoed back; that is not a leak.
            from urllib.parse import quote, unquote

            body = raw.decode("utf-8", "replace")
            for echo in {path, unquote(path), quote(path, safe="/")}:
                body = body.replace(echo, "")
            leaked = sorted(m for m in hidden if m in body)
            if leaked:
                problems.append(f"{path}: shows {leaked}")
    assert not problems, f"{role}:\n" + "\n".join(problems)


WRITE_EXPECTATIONS = [
    # (role, what, expected status)
    ("viewer", "create_on_private", 403),
    ("stranger", "create_on_private", 404),
    ("anonymous", "create_on_private", 401),
    ("annotator", "create_on_private", 201),
    ("owner", "edit_annotators_collection_note", 403),
    ("stranger", "edit_annotators_collection_note", 404),
    ("annotator", "edit_annotators_collection_note", 200),
    ("owner", "delete_annotators_private_note", 404),
    ("annotator", "edit_metadata_private", 403),
    ("editor", "edit_metadata_private", 302),
    ("stranger", "edit_metadata_private", 404),
    # A collection's team pages exist only for its owners: to everyone else they are 404.
    ("viewer", "add_member_private", 404),
    ("stranger", "add_member_public", 404),
    ("stranger", "add_member_private", 404),
]


@pytest.mark.parametrize(("role", "what", "expected"), WRITE_EXPECTATIONS)
def test_writes_answer_403_when_the_role_forbids_and_404_when_unseen(role, what, expected, world):
    import json

    client = client_for(role, world)
    sp, a = world["sp"], world["a"]
    doc: dict[str, Any]
    if what == "create_on_private":
        doc = {
            "type": "Annotation",
            "target": {
                "source": f"http://testserver/sources/{sp.uuid}/",
                "selector": [{"type": "TextPositionSelector", "start": 0, "end": 4}],
            },
        }
        response = client.post(
            "/api/annotations/", json.dumps(doc), content_type="application/json"
        )
    elif what == "edit_annotators_collection_note":
        doc = {"type": "Annotation", "body": [{"type": "TextualBody", "value": "changed"}]}
        response = client.put(
            f"/api/annotations/{a['P-collection'].uuid}",
            json.dumps(doc),
            content_type="application/json",
        )
    elif what == "delete_annotators_private_note":
        response = client.delete(f"/api/annotations/{a['P-private'].uuid}")
    elif what == "edit_metadata_private":
        response = client.post(
            f"/sources/{sp.uuid}/edit/", {"title": "New", "citation_key": "newkey"}
        )
    elif what.startswith("add_member"):
        slug = "privcoll" if what.endswith("private") else "pubcoll"
        response = client.post(
            f"/collections/{slug}/members/add", {"user": "archivist", "role": "viewer"}
        )
    assert response.status_code == expected, response.content[:300]


def test_non_staff_are_sent_to_the_admin_login(world):
    client = client_for("owner", world)
    response = client.get("/admin/archive/source/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client_for("curator", world).get("/admin/archive/source/").status_code == 200


# --- Bytes that already exist under another owner: uploads and imports --------------------

# Who may put the private collection's source in a collection of their own (and so publish
# it): those who may edit it. Everyone else gets a source of their own, or a refusal.
MAY_PUBLISH_PRIVATE_SOURCE = {"editor", "owner", "curator"}


def original_of(source) -> bytes:
    with source.open_original() as fh:
        return fh.read()


def assert_not_shared(w, role) -> None:
    checks: list[tuple[Source, str, list[str]]] = [(w["sx"], "PERSONALTITLE", [])]
    if role not in MAY_PUBLISH_PRIVATE_SOURCE:
        checks.append((w["sp"], "PRIVTITLE", ["privcoll"]))
    for source, title, slugs in checks:
        holding = Collection.objects.filter(sources=source)
        assert list(holding.values_list("slug", flat=True)) == slugs
        source.refresh_from_db()
        assert source.title == title
        assert Client().get(f"/sources/{source.uuid}/").status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_uploading_bytes_someone_else_archived_privately_leaks_and_shares_nothing(role, world):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for(role, world)
    # The text is the uploader's own bytes; everything else about the source is not theirs.
    hidden = markers_hidden_from(role) - {"PRIVTEXT", "PERSONALTEXT"}
    writable = None
    if role not in ("anonymous", "curator"):
        writable = Collection.objects.create(
            slug=f"{role}-open", title="Open", owner=world["users"][role], is_public=True
        )
    for source in (world["sp"], world["sx"]):
        fields: dict[str, SimpleUploadedFile | int] = {
            "file": SimpleUploadedFile("same.txt", original_of(source), "text/plain")
        }
        if writable is not None:
            fields["collection"] = writable.pk
        response = client.post("/sources/new/", fields, follow=True)
        assert response.status_code == 200
        body = response.content.decode()
        leaked = sorted(m for m in hidden if m in body)
        assert not leaked, f"{role} uploading the bytes of {source.title} saw {leaked}"
    assert_not_shared(world, role)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
def test_importing_a_package_that_names_a_private_source_leaks_and_shares_nothing(
    role, world, tmp_path
):
    """Each role imports a package of its own (its own name on everything) whose one source
    claims the private source's UUID, with its very bytes, into a public collection."""
    import io
    import json

    from django.core.management import call_command

    from tests.helpers import members, rebuild

    hidden = markers_hidden_from(role) - {"PRIVTEXT"}  # the package's own bytes
    path = tmp_path / "pub.zip"
    call_command("export_collection", "pubcoll", "--format=bagit", "-o", str(path))
    files = members(path.read_bytes())
    manifest = json.loads(files["data/scholion.json"])
    entry = manifest["sources"][0]
    secret = world["sp"]
    username = role if role != "anonymous" else "nobody"
    manifest["collection"].update(slug=f"{role}-imported", is_public=True, owner=username)
    entry.update(uuid=str(secret.uuid), sha256=secret.sha256, size=secret.size)
    provenance = json.loads(files[entry["provenance"]])
    provenance["archived_by"] = username
    annotations = json.loads(files["data/annotations.jsonld"])
    annotations["first"]["items"] = []
    package = rebuild(
        path.read_bytes(),
        {
            "data/scholion.json": json.dumps(manifest).encode(),
            "data/annotations.jsonld": json.dumps(annotations).encode(),
            entry["provenance"]: json.dumps(provenance).encode(),
            entry["original"]: original_of(secret),
        },
    )
    if role not in ("anonymous", "curator"):  # owning a collection lets one import
        Collection.objects.get_or_create(
            slug=f"{role}-own", defaults={"title": "Own", "owner": world["users"][role]}
        )
    upload = io.BytesIO(package)
    upload.name = "package.zip"

    client = client_for(role, world)
    response = client.post("/import/", {"package": upload})
    run_worker()
    response = client.get(response["Location"], follow=True)  # the import's page

    assert response.status_code < 500
    body = response.content.decode()
    leaked = sorted(m for m in hidden if m in body)
    assert not leaked, f"{role} importing saw {leaked}"
    assert_not_shared(world, role)
    imported = Collection.objects.filter(slug=f"{role}-imported").first()
    assert (imported is None) == (role == "anonymous")
    if imported is not None and role not in MAY_PUBLISH_PRIVATE_SOURCE:
        assert imported.sources.get().uuid != secret.uuid
