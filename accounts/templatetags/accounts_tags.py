from __future__ import annotations

from django import template
from django.conf import settings

from archive.models import Collection

register = template.Library()


@register.simple_tag
def self_registration_enabled() -> bool:
    return bool(settings.SCHOLION_SELF_REGISTRATION)


@register.filter
def manages(collection: Collection, user) -> bool:
    """Whether the user may open the collection's members page (its owners and curators)."""
    return collection.can_manage(user)


@register.filter
def role_in(collection: Collection, user) -> str | None:
    return collection.role_of(user)
