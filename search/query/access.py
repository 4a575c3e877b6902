"""The access rule in the shape of a probe, for the few rows an index of words found.

``Source.objects.visible_to`` and ``Annotation.objects.visible_to`` are the rule. They
work it out as a set (a list of visible sources, read once), the right shape for listing
many rows. A search instead checks each match it reads, newest first, by one index probe,
and stops at the limit: it never builds the list of every visible source. These querysets
are that same rule written as probes; tests/test_search.py proves both let through the
same rows for owners, members, strangers, visitors and curators.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Q

from annotations.models import Annotation, AnnotationQuerySet
from archive.models import Collection, Source, SourceQuerySet

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def sources_visible_by_probe(user: User | AnonymousUser) -> SourceQuerySet:
    """``Source.objects.visible_to(user)``, each source checked in turn."""
    if getattr(user, "is_staff", False):
        return Source.objects.all()
    in_visible = Collection.sources.through.objects.filter(
        collection__in=Collection.objects.visible_to(user)
    )
    rule = Q(Exists(in_visible.filter(source_id=OuterRef("pk"))))
    if user.is_authenticated:
        rule |= Q(archived_by=user)
    return Source.objects.filter(rule, withdrawn_at__isnull=True)


def annotations_visible_by_probe(
    user: User | AnonymousUser,
) -> AnnotationQuerySet:
    """``Annotation.objects.visible_to(user)``, each annotation's source checked in turn."""
    if getattr(user, "is_staff", False):
        return Annotation.objects.all()
    rule = Q(visibility=Annotation.Visibility.PUBLIC, collection__is_public=True)
    if user.is_authenticated:
        member_collections = Collection.objects.filter(Q(owner=user) | Q(memberships__user=user))
        rule |= Q(author=user)
        rule |= Q(
            visibility__in=[Annotation.Visibility.COLLECTION, Annotation.Visibility.PUBLIC],
            collection__in=member_collections,
        )
    sources = sources_visible_by_probe(user)
    return Annotation.objects.filter(rule, Exists(sources.filter(pk=OuterRef("source_id"))))
