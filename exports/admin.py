"""Admin actions that download an export of a collection (used by archive.admin)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from archive.models import Collection
from exports.forms import export_scope
from exports.views import base_url, export_response


def _export(modeladmin, request: HttpRequest, queryset: QuerySet[Collection], fmt: str):
    if queryset.count() != 1:
        modeladmin.message_user(
            request, "Choose exactly one collection to export.", messages.WARNING
        )
        return None
    collection = queryset.select_related("owner").get()
    # The curator's own view, less other people's private annotations (ExportScope).
    return export_response(export_scope(collection, request.user, base_url(request)), fmt)


@admin.action(description="Export as a BagIt package (zip with originals)")
def export_bagit(modeladmin, request, queryset) -> HttpResponse | None:
    return _export(modeladmin, request, queryset, "bagit")


@admin.action(description="Export annotations as CSV")
def export_csv(modeladmin, request, queryset) -> HttpResponse | None:
    return _export(modeladmin, request, queryset, "csv")


@admin.action(description="Export annotations as W3C JSON-LD")
def export_jsonld(modeladmin, request, queryset) -> HttpResponse | None:
    return _export(modeladmin, request, queryset, "jsonld")


@admin.action(description="Export a Markdown report")
def export_markdown(modeladmin, request, queryset) -> HttpResponse | None:
    return _export(modeladmin, request, queryset, "markdown")


COLLECTION_ACTIONS = [export_bagit, export_csv, export_jsonld, export_markdown]
