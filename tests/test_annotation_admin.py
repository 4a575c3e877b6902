from __future__ import annotations

import pytest
from django.test import Client
from taggit.models import Tag

from annotations.models import Annotation

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(curator):
    client = Client()
    client.force_login(curator)
    return client


def make(source, author, n, tags=("a",)):
    return [
        Annotation.create_anchored(
            author=author, source=source, start=i, end=i + 4, note=f"note {i}", tags=list(tags)
        )
        for i in range(n)
    ]


def test_changelist_shows_quote_source_author_tags_with_constant_queries(
    admin_client_, demo_source, member, django_assert_max_num_queries
):
    make(demo_source, member, 5, tags=("alpha", "beta"))
    with django_assert_max_num_queries(30) as few:
        response = admin_client_.get("/admin/annotations/annotation/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "alpha, beta" in body and "maya" in body and demo_source.text[0:4] in body
    make(demo_source, member, 25, tags=("alpha", "gamma"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert admin_client_.get("/admin/annotations/annotation/").status_code == 200


def test_search_and_filters(admin_client_, demo_source, member):
    make(demo_source, member, 2)
    Annotation.create_anchored(
        author=member, source=demo_source, start=50, end=60, note="needle here"
    )
    response = admin_client_.get("/admin/annotations/annotation/", {"q": "needle"})
    assert "1 annotation" in response.content.decode()
    tag = Tag.objects.get(name="a")
    response = admin_client_.get("/admin/annotations/annotation/", {"tags__id__exact": tag.pk})
    assert "2 annotations" in response.content.decode()


def test_anchor_fields_are_read_only(admin_client_, demo_source, member):
    annotation = make(demo_source, member, 1)[0]
    url = f"/admin/annotations/annotation/{annotation.pk}/change/"
    page = admin_client_.get(url).content.decode()
    assert 'name="start"' not in page and 'name="exact"' not in page and 'name="note"' in page
    admin_client_.post(
        url,
        {
            "note": "changed",
            "tags": "a",
            "visibility": "collection",
            "start": 40,
            "end": 44,
            "exact": "hack",
            "annotationrevision_set-TOTAL_FORMS": 0,
            "revisions-TOTAL_FORMS": 0,
            "revisions-INITIAL_FORMS": 0,
        },
    )
    annotation.refresh_from_db()
    assert (annotation.start, annotation.end) == (0, 4)


def test_merging_tags_moves_every_annotation_to_the_survivor(admin_client_, demo_source, member):
    both = Annotation.create_anchored(
        author=member, source=demo_source, start=0, end=5, tags=["Casualties", "casualty"]
    )
    make(demo_source, member, 3, tags=("Casualties",))
    only_dup = Annotation.create_anchored(
        author=member, source=demo_source, start=9, end=12, tags=["casualty"]
    )
    ids = list(Tag.objects.filter(name__in=["Casualties", "casualty"]).values_list("pk", flat=True))
    response = admin_client_.post(
        "/admin/taggit/tag/", {"action": "merge_tags", "_selected_action": ids}, follow=True
    )
    assert "Merged" in response.content.decode()
    assert list(Tag.objects.values_list("name", flat=True)) == ["Casualties"]
    assert [t.name for t in both.tags.all()] == ["Casualties"]
    assert [t.name for t in only_dup.tags.all()] == ["Casualties"]
    assert Annotation.objects.filter(tags__name="Casualties").count() == 5


def test_renaming_a_tag_renames_it_everywhere(admin_client_, demo_source, member):
    annotation = make(demo_source, member, 1, tags=("olde",))[0]
    tag = Tag.objects.get(name="olde")
    response = admin_client_.post(
        f"/admin/taggit/tag/{tag.pk}/change/", {"name": "new-name", "slug": "new-name"}
    )
    assert response.status_code == 302
    assert [t.name for t in annotation.tags.all()] == ["new-name"]


def test_stranger_cannot_reach_the_admin(client, stranger):
    client.force_login(stranger)
    assert client.get("/admin/annotations/annotation/").status_code == 302
