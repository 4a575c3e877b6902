from __future__ import annotations

from urllib.parse import urlencode

from django import template

from archive.models import Collection
from exports.formats import FORMATS, Format
from exports.forms import FILTER_PARAMETERS
from exports.importer import may_import
from exports.prepared import PREPARED_FORMATS

register = template.Library()


@register.simple_tag
def export_formats() -> list[Format]:
    return list(FORMATS.values())


@register.filter
def can_import(user) -> bool:
    return may_import(user)


@register.filter
def writable_by(collection: Collection, user) -> bool:
    """Whether ``user`` may add to the collection (its editors and owners, and curators)."""
    return Collection.objects.writable_by(user).filter(pk=collection.pk).exists()


@register.simple_tag(takes_context=True)
def export_query(context) -> str:
    """The page's filters (the search parameters an export understands) as a query string,
    so the Export menu downloads what the filtered page shows."""
    request = context.get("request")
    if request is None:
        return ""
    query = [(k, v) for k in FILTER_PARAMETERS for v in request.GET.getlist(k) if v]
    return "?" + urlencode(query) if query else ""


@register.filter
def prepared_on_worker(format: Format) -> bool:
    """Whether the Export menu asks the worker for this format rather than downloading it."""
    return format.name in PREPARED_FORMATS


@register.simple_tag(takes_context=True)
def export_filter_pairs(context) -> list[tuple[str, str]]:
    """The page's export filters as (name, value) pairs, for a form's hidden inputs."""
    request = context.get("request")
    if request is None:
        return []
    return [(k, v) for k in FILTER_PARAMETERS for v in request.GET.getlist(k) if v]
