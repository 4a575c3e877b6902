"""The collection page's Hypothesis upload: checked at once, imported by the real worker, the
report on the import's page; who may upload, and who learns nothing."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotations.models import Annotation
from archive.models import Collection, Membership
from exports.models import ImportJob
from tests.conftest import archive_text, run_worker
from tests.test_hypothesis_import import PAGE, TEXT, api_file, client_export, row

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/collections/field-notes/import/hypothesis"


@pytest.fixture
def source(owner, collection):
    return archive_text(TEXT, user=owner, collection=collection, original_url=PAGE)


@pytest.fixture
def editor(django_user_model, collection):
    user = django_user_model.objects.create_user("eddie", "eddie@example.org", "pw-eddie-123")
    Membership.objects.create(collection=collection, user=user, role=Membership.Role.EDITOR)
    return user


@pytest.fixture(autouse=True)
def imports_dir(settings, tmp_path):
    settings.SCHOLION_IMPORTS_DIR = tmp_path / "imports"


def upload(data: bytes, name: str = "hypothesis.json") -> dict:
    return {"file": SimpleUploadedFile(name, data, content_type="application/json")}


def test_owner_uploads_a_file_the_worker_imports_it_and_its_page_reports(
    client, owner, source, collection
):
    client.force_login(owner)
    data = api_file(row("v1", "The banks held."), row("v2", "Gone from the text."))

    response = client.post(URL, upload(data))

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/import/{job.uuid}/"
    assert (job.kind, job.collection, job.state) == ("hypothesis", collection, "queued")
    assert not Annotation.objects.exists()

    run_worker()

    job.refresh_from_db()
    assert job.state == "done" and not job.package_name
    annotation = Annotation.objects.get()
    assert annotation.author == owner and annotation.collection == collection
    page = client.get(job.get_absolute_url()).content.decode()
    assert "1 annotation added (1 by their exact quote)" in page
    assert "Orphans (not attached to any passage):" in page
    assert "https://hypothes.is/a/v2" in page
    listing = client.get(URL).content.decode()
    assert "hypothesis.json" in listing and job.get_absolute_url() in listing


def test_editor_may_upload_and_their_own_annotations_are_theirs(client, editor, source, collection):
    client.force_login(editor)
    data = client_export(row("v3", "The banks held.", user="acct:eddie@hypothes.is"))

    assert client.post(URL, upload(data)).status_code == 302
    run_worker()

    assert Annotation.objects.get().author == editor


def test_bad_file_is_refused_on_the_page_and_nothing_is_queued(client, owner, source, collection):
    client.force_login(owner)

    response = client.post(URL, upload(b'{"hello": 1}'))

    assert response.status_code == 400
    assert "Nothing was imported: This is not a Hypothesis file" in response.content.decode()
    assert not ImportJob.objects.exists()
    assert not Annotation.objects.exists()


def test_huge_upload_is_refused(client, owner, source, collection, settings):
    settings.SCHOLION_HYPOTHESIS_MAX_BYTES = 100
    client.force_login(owner)

    response = client.post(URL, upload(api_file(row("big", "The banks held."))))

    assert response.status_code == 400
    assert "larger than the 100" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_stranger_gets_404_and_nothing_is_queued(client, stranger, source, collection):
    client.force_login(stranger)
    data = api_file(row("s1", "The banks held.", user="acct:sam@hypothes.is"))

    assert client.get(URL).status_code == 404
    assert client.post(URL, upload(data)).status_code == 404
    assert not ImportJob.objects.exists()


def test_annotator_may_not_import(client, member, source, collection):
    client.force_login(member)
    data = api_file(row("s2", "The banks held.", user="acct:maya@hypothes.is"))

    assert client.get(URL).status_code == 403
    assert client.post(URL, upload(data)).status_code == 403
    assert not ImportJob.objects.exists()


def test_visitor_is_sent_to_log_in(client, source, collection):
    Collection.objects.filter(pk=collection.pk).update(is_public=True)

    response = client.post(URL, upload(api_file(row("s3", "The banks held."))))

    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not ImportJob.objects.exists()


def test_import_of_someone_who_lost_their_role_meanwhile_fails_and_adds_nothing(
    client, editor, source, collection
):
    client.force_login(editor)
    client.post(URL, upload(client_export(row("v4", "The banks held.", user="acct:eddie@x.org"))))
    collection.memberships.filter(user=editor).delete()

    run_worker()

    job = ImportJob.objects.get()
    assert job.state == "failed"
    assert "you may no longer add to it" in job.error
    assert not Annotation.objects.exists()


def test_stranger_cannot_see_someone_elses_import_page(client, owner, stranger, source, collection):
    client.force_login(owner)
    client.post(URL, upload(api_file(row("v5", "The banks held."))))
    job = ImportJob.objects.get()
    client.force_login(stranger)

    assert client.get(job.get_absolute_url()).status_code == 404


def test_collection_page_offers_the_import_to_writers_only(client, owner, member, collection):
    client.force_login(owner)
    assert URL in client.get("/collections/field-notes/").content.decode()
    client.force_login(member)
    assert URL not in client.get("/collections/field-notes/").content.decode()
