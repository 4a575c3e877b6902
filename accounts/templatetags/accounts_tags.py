from __future__ import annotations

from django import template
from django.conf import settings

from archive.models import Collection

register = template.Library()


@register.simple_tag
def self_registration_enabled() -> bool:
    return bool(settings.SCHOLION_SELF_REGISTRATION)


@register.filter
def sees_members(collection: Collection, user) -> bool:
    """Whether the user may open the collection's member list (members and curators)."""
    if not user.is_authenticated:
        return False
    return user.is_staff or collection.role_of(user) is not None
