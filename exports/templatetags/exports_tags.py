from __future__ import annotations

from django import template

from exports.formats import FORMATS, Format
from exports.importer import may_import

register = template.Library()


@register.simple_tag
def export_formats() -> list[Format]:
    return list(FORMATS.values())


@register.filter
def can_import(user) -> bool:
    return may_import(user)
