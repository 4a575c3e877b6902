"""Curators in the admin: the annotation list, read-only anchors, tag renaming and merging."""

from __future__ import annotations

import pytest
from django.test import Client
from taggit.models import Tag

from annotations.models import Annotation, AnnotationRevision
from search.models import AnnotationEntry
from tests.conftest import archive_text

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/annotations/annotation/"
TAGS = "/admin/taggit/tag/"


@pytest.fixture
def curator_client(curator):
    client = Client()
    client.force_login(curator)
    return client


def make(source, author, n, tags=("a",), first=0):
    return [
        Annotation.create_anchored(
            author=author, source=source, start=i, end=i + 4, note=f"note {i}", tags=list(tags)
        )
        for i in range(first, first + n)
    ]


def edit(client, annotation, *, note, tags, visibility="private", **extra):
    """Post the admin's change form for ``annotation`` (``extra``: any other fields)."""
    return client.post(
        f"{CHANGELIST}{annotation.pk}/change/",
        {
            "note": note,
            "tags": tags,
            "visibility": visibility,
            "revisions-TOTAL_FORMS": 0,
            "revisions-INITIAL_FORMS": 0,
            **extra,
        },
    )


def test_changelist_shows_quote_source_author_tags_and_dates(curator_client, demo_source, member):
    make(demo_source, member, 2, tags=("alpha", "beta"))
    response = curator_client.get(CHANGELIST)
    assert response.status_code == 200
    page = response.content.decode()
    assert "alpha, beta" in page and "maya" in page and demo_source.text[0:4] in page
    assert demo_source.title in page
    for column in ("Quote", "Source", "Author", "Tags", "Created", "Modified"):
        assert column in page


def test_changelist_query_count_does_not_grow_with_annotations(
    curator_client, demo_source, member, owner, django_assert_max_num_queries
):
    make(demo_source, member, 10, tags=("alpha", "beta"))
    make(demo_source, owner, 10, tags=("gamma",), first=10)
    with django_assert_max_num_queries(40) as twenty:
        response = curator_client.get(CHANGELIST)
    assert response.content.decode().count('class="field-quote_excerpt"') == 20
    make(demo_source, member, 20, tags=("alpha", "delta"), first=20)
    with django_assert_max_num_queries(len(twenty.captured_queries)):
        response = curator_client.get(CHANGELIST)
    assert response.content.decode().count('class="field-quote_excerpt"') == 40


def test_search_covers_quote_and_note(curator_client, demo_source, member):
    make(demo_source, member, 2)
    Annotation.create_anchored(
        author=member, source=demo_source, start=50, end=60, note="needle here"
    )
    start = demo_source.text.index("Hezbollah")
    Annotation.create_anchored(author=member, source=demo_source, start=start, end=start + 9)
    assert "1 annotation" in curator_client.get(CHANGELIST, {"q": "needle"}).content.decode()
    assert "1 annotation" in curator_client.get(CHANGELIST, {"q": "Hezbollah"}).content.decode()


def test_filters_by_source_author_and_tag(curator_client, demo_source, member, owner, collection):
    make(demo_source, member, 2, tags=("a",))
    make(demo_source, owner, 1, tags=("b",), first=5)
    other = archive_text("A second source for the filter", owner, collection)
    Annotation.create_anchored(author=owner, source=other, start=0, end=8, tags=["a"])

    def count(**params):
        page = curator_client.get(CHANGELIST, params).content.decode()
        return page.count('class="field-quote_excerpt"')

    assert count(source=demo_source.pk) == 3 and count(source=other.pk) == 1
    assert count(author__id__exact=member.pk) == 2
    assert count(tags__id__exact=Tag.objects.get(name="a").pk) == 3
    assert count(tags__id__exact=Tag.objects.get(name="a").pk, author__id__exact=owner.pk) == 1
    sidebar = curator_client.get(CHANGELIST).content.decode()
    assert other.title in sidebar and demo_source.title in sidebar


def test_anchor_fields_are_read_only(curator_client, demo_source, member):
    annotation = make(demo_source, member, 1)[0]
    url = f"{CHANGELIST}{annotation.pk}/change/"
    page = curator_client.get(url).content.decode()
    for field in ("source", "start", "end", "exact", "prefix", "suffix"):
        assert f'name="{field}"' not in page
    assert 'name="note"' in page
    response = edit(
        curator_client,
        annotation,
        note="changed",
        tags="a",
        visibility="collection",
        start=40,
        end=44,
        exact="hack",
        prefix="p",
    )
    assert response.status_code == 302
    annotation.refresh_from_db()
    assert (annotation.start, annotation.end) == (0, 4)
    assert annotation.exact == demo_source.text[0:4] and annotation.prefix == ""
    assert annotation.note == "changed"


def test_a_curators_edit_keeps_a_revision_and_bumps_the_version(
    curator_client, curator, demo_source, member
):
    annotation = make(demo_source, member, 1, tags=("old",))[0]
    response = edit(curator_client, annotation, note="tidied", tags="new, other")
    assert response.status_code == 302
    annotation.refresh_from_db()
    assert (annotation.note, annotation.visibility, annotation.version) == ("tidied", "private", 2)
    assert sorted(annotation.tags.names()) == ["new", "other"]
    revision = AnnotationRevision.objects.get()
    assert (revision.note, revision.tags, revision.edited_by) == ("note 0", ["old"], curator)
    assert AnnotationEntry.objects.get(annotation=annotation).note == "tidied"


def test_a_tag_without_a_letter_or_digit_is_refused_and_nothing_is_saved(
    curator_client, demo_source, member
):
    annotation = make(demo_source, member, 1, tags=("old",))[0]
    response = edit(curator_client, annotation, note="tidied", tags="kept, !!!")
    assert response.status_code == 200
    assert "A tag needs a letter or a digit: “!!!” has none." in response.content.decode()
    annotation.refresh_from_db()
    assert (annotation.note, annotation.version, list(annotation.tags.names())) == (
        "note 0",
        1,
        ["old"],
    )
    assert not Tag.objects.filter(name="!!!").exists()
    assert curator_client.get("/tags/").status_code == 200


def test_merging_tags_asks_which_survives_then_moves_every_annotation(
    curator_client, demo_source, member
):
    both = Annotation.create_anchored(
        author=member, source=demo_source, start=0, end=5, tags=["Casualties", "casualty"]
    )
    make(demo_source, member, 3, tags=("Casualties",), first=20)
    only_dup = Annotation.create_anchored(
        author=member, source=demo_source, start=9, end=12, tags=["casualty"]
    )
    ids = list(Tag.objects.filter(name__in=["Casualties", "casualty"]).values_list("pk", flat=True))
    asked = curator_client.post(TAGS, {"action": "merge_tags", "_selected_action": ids})
    page = asked.content.decode()
    # Nothing happens before the curator confirms; the page names each tag's count.
    assert asked.status_code == 200
    assert "Keep “Casualties” (4 annotations)" in page
    assert "Keep “casualty” (2 annotations)" in page
    assert Tag.objects.count() == 2
    survivor = Tag.objects.get(name="casualty")  # the less used one: the curator's choice
    response = curator_client.post(
        TAGS,
        {
            "action": "merge_tags",
            "_selected_action": ids,
            "confirmed": "yes",
            "survivor": survivor.pk,
        },
        follow=True,
    )
    message = response.content.decode()
    assert "Merged “Casualties” into “casualty”" in message
    assert "3 annotations moved to it; 1 already had it" in message
    assert list(Tag.objects.values_list("name", flat=True)) == ["casualty"]
    assert [t.name for t in both.tags.all()] == ["casualty"]
    assert [t.name for t in only_dup.tags.all()] == ["casualty"]
    assert Annotation.objects.filter(tags__name="casualty").count() == 5
    # The merged tag's page leads to the survivor's.
    assert curator_client.get("/tags/casualties/")["Location"] == "/tags/casualty/"


def test_merging_without_choosing_a_survivor_asks_again(curator_client, demo_source, member):
    make(demo_source, member, 1, tags=("zeta",))
    make(demo_source, member, 1, tags=("alpha",), first=5)
    ids = list(Tag.objects.values_list("pk", flat=True))
    response = curator_client.post(
        TAGS, {"action": "merge_tags", "_selected_action": ids, "confirmed": "yes"}
    )
    assert response.status_code == 200
    assert "Choose which tag survives" in response.content.decode()
    assert Tag.objects.count() == 2


def test_merging_needs_two_tags(curator_client, demo_source, member):
    make(demo_source, member, 1, tags=("solo",))
    response = curator_client.post(
        TAGS,
        {"action": "merge_tags", "_selected_action": [Tag.objects.get().pk]},
        follow=True,
    )
    assert "Select at least two tags" in response.content.decode()
    assert Tag.objects.count() == 1


def test_renaming_a_tag_renames_it_everywhere(curator_client, demo_source, member):
    annotation = make(demo_source, member, 1, tags=("olde",))[0]
    tag = Tag.objects.get(name="olde")
    response = curator_client.post(
        f"{TAGS}{tag.pk}/change/", {"name": "new-name", "slug": "new-name"}
    )
    assert response.status_code == 302
    assert [t.name for t in annotation.tags.all()] == ["new-name"]
    assert AnnotationEntry.objects.get(annotation=annotation).tags == "new name"
    # Its page keeps working at the old address.
    assert curator_client.get("/tags/olde/?page=1")["Location"] == "/tags/new-name/?page=1"


def test_renaming_onto_an_existing_tag_points_to_merge(curator_client, demo_source, member):
    make(demo_source, member, 1, tags=("Dates", "dating"))
    tag = Tag.objects.get(name="dating")
    response = curator_client.post(f"{TAGS}{tag.pk}/change/", {"name": "dates", "slug": "dates"})
    assert response.status_code == 200
    assert "Merge selected tags" in response.content.decode()
    tag.refresh_from_db()
    assert tag.name == "dating"


def test_tag_list_shows_use_counts(curator_client, demo_source, member):
    make(demo_source, member, 3, tags=("counted",))
    page = curator_client.get(TAGS).content.decode()
    assert "counted" in page and '<td class="field-uses">3</td>' in page


def test_people_who_are_not_staff_cannot_reach_the_admin(client, member, stranger):
    for user in (member, stranger):
        client.force_login(user)
        assert client.get(CHANGELIST).status_code == 302
        assert client.get(TAGS).status_code == 302
