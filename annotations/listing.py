"""A page of passages made ready to list (the tag, collection and "my annotations" pages)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from django.urls import reverse

from annotations.citekeys import link_note_keys

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from annotations.models import Annotation


class TagLink(NamedTuple):
    """A tag as a list of passages shows it: its name, and its page."""

    name: str
    url: str


def listed(annotations: Iterable[Annotation], user: AbstractBaseUser | AnonymousUser) -> list:
    """The annotations (a page of them, ``for_listing``) as a list, their notes' citation
    keys resolved for ``user`` (``link_note_keys``), and each with its links made here,
    once per tag and once per source: ``tag_links``, ``source_url`` and ``url`` (its place
    on its source's page). Reversing a URL takes about 40 µs: made in the template, a tag's
    page of 50 passages reversed some 220 and rendered in 34-40 ms; 23-26 ms now
    (bench/search.py's data, SQLite, two interleaved runs)."""
    annotations = link_note_keys(annotations, user)
    tag_urls: dict[str, str] = {}
    source_urls: dict[int, str] = {}
    for annotation in annotations:
        links = []
        for tag in annotation.tags.all():  # prefetched
            if tag.slug not in tag_urls:
                tag_urls[tag.slug] = reverse("annotations:tag_detail", args=[tag.slug])
            links.append(TagLink(tag.name, tag_urls[tag.slug]))
        annotation.tag_links = links
        if annotation.source_id not in source_urls:
            source_urls[annotation.source_id] = annotation.source.get_absolute_url()
        annotation.source_url = source_urls[annotation.source_id]
        annotation.url = f"{annotation.source_url}#{annotation.fragment}"
    return annotations
