"""A page of passages made ready to list (the tag, collection and "my annotations" pages)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from django.urls import reverse

from annotations.citekeys import link_note_keys

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    from annotations.models import Annotation


class TagLink(NamedTuple):
    """A tag as a list of passages shows it: its name, and its page."""

    name: str
    url: str


class TagLinks:
    """Links to tags' pages for one page of passages, each tag's page reversed once."""

    def __init__(self) -> None:
        self._urls: dict[str, str] = {}

    def __call__(self, name: str, slug: str) -> TagLink:
        if slug not in self._urls:
            self._urls[slug] = reverse("search:tag_detail", args=[slug])
        return TagLink(name, self._urls[slug])


def with_links(annotations: Iterable[Annotation], user: User | AnonymousUser) -> list:
    """The annotations (a page of them, ``for_listing``) as a list, their notes' citation
    keys resolved for ``user`` (``link_note_keys``), and each with its links made here,
    once per tag and once per source: ``tag_links``, ``source_url`` and ``url`` (its place
    on its source's page)."""
    # Speed device (bench/NOTES.md): each URL reversed once per page, not once per passage
    # in the template.
    annotations = link_note_keys(annotations, user)
    tag_link = TagLinks()
    source_urls: dict[int, str] = {}
    for annotation in annotations:
        annotation.tag_links = [tag_link(t.name, t.slug) for t in annotation.tags.all()]
        if annotation.source_id not in source_urls:
            source_urls[annotation.source_id] = annotation.source.get_absolute_url()
        annotation.source_url = source_urls[annotation.source_id]
        annotation.url = f"{annotation.source_url}#{annotation.fragment}"
    return annotations
