"""Admin actions that download exports: of a collection, of selected sources' references,
of selected annotations. Exports adds them to the archive and annotations admins itself
(``offer_export_actions``, the one seam between those admins and exports), so that the
lower apps never import this one."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.html import format_html

from annotations.admin import AnnotationAdmin
from annotations.w3c import CONTEXT, annotation_to_jsonld
from archive import cite
from archive.admin import CollectionAdmin, JobAdmin, SourceAdmin
from archive.models import Collection, Source
from exports.forms import export_scope
from exports.models import ExportJob, ImportJob
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


@admin.action(description="Export annotations as an XLSX workbook")
def export_xlsx(modeladmin, request, queryset) -> HttpResponse | None:
    return _export(modeladmin, request, queryset, "xlsx")


@admin.action(description="Export annotations as W3C JSON-LD")
def export_jsonld(modeladmin, request, queryset) -> HttpResponse | None:
    return _export(modeladmin, request, queryset, "jsonld")


@admin.action(description="Export a Markdown report")
def export_markdown(modeladmin, request, queryset) -> HttpResponse | None:
    return _export(modeladmin, request, queryset, "markdown")


COLLECTION_ACTIONS = [export_bagit, export_xlsx, export_csv, export_jsonld, export_markdown]


# --- Sources: their references -------------------------------------------------------------


def _download(body, filename: str, content_type: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _sources(queryset: QuerySet[Source]) -> QuerySet[Source]:
    return queryset.defer("text", "blocks").order_by("title", "uuid")


@admin.action(description="Export references as BibTeX")
def export_sources_bibtex(modeladmin, request, queryset) -> StreamingHttpResponse:
    root = base_url(request)
    entries = (
        cite.bibtex(s, root + s.get_absolute_url()) + "\n"
        for s in _sources(queryset).iterator(chunk_size=500)
    )
    return _download(entries, "sources.bib", "application/x-bibtex; charset=utf-8")


@admin.action(description="Export references as CSL-JSON")
def export_sources_csljson(modeladmin, request, queryset) -> StreamingHttpResponse:
    root = base_url(request)
    items = [
        cite.csl_json(s, root + s.get_absolute_url())
        for s in _sources(queryset).iterator(chunk_size=500)
    ]
    return _download(
        [json.dumps(items, ensure_ascii=False, indent=2) + "\n"],
        "sources.json",
        "application/vnd.citationstyles.csl+json",
    )


SOURCE_ACTIONS = [export_sources_bibtex, export_sources_csljson]


# --- Annotations: a W3C AnnotationPage of those selected -----------------------------------


@admin.action(description="Export selected annotations as W3C JSON-LD")
def export_annotations_jsonld(modeladmin, request, queryset) -> StreamingHttpResponse:
    """Curators see every annotation in the admin; the export holds what they selected."""
    root = base_url(request)
    annotations = queryset.with_related().order_by(  # citations included
        "source__title", "source_id", "start", "uuid"
    )
    page = {
        "@context": CONTEXT,
        "id": f"{root}/admin/annotations/annotation/",
        "type": "AnnotationPage",
        "startIndex": 0,
        "items": [annotation_to_jsonld(a, root, with_context=False) for a in annotations],
    }
    return _download(
        [json.dumps(page, ensure_ascii=False, indent=2) + "\n"],
        "annotations.jsonld",
        'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"',
    )


ANNOTATION_ACTIONS = [export_annotations_jsonld]


def offer_export_actions() -> None:
    """The seam: put the export actions after each admin's own actions."""
    CollectionAdmin.actions = [*CollectionAdmin.actions, *COLLECTION_ACTIONS]
    SourceAdmin.actions = [*SourceAdmin.actions, *SOURCE_ACTIONS]
    AnnotationAdmin.actions = [*AnnotationAdmin.actions, *ANNOTATION_ACTIONS]


offer_export_actions()


# --- Imports that people asked for on the import page -------------------------------------


@admin.register(ImportJob)
class ImportJobAdmin(JobAdmin):
    """Imports the worker runs. Curators may read every import's status page (where a stopped
    import can also be tried again), so it is linked from here."""

    list_display = ["filename", "user", "status", "created_at", "finished_at", "collection"]
    search_fields = ["filename", "user__username", "uuid"]
    list_select_related = ["user", "collection"]
    readonly_fields = [
        "status_page",
        *JobAdmin.job_fields,
        "filename",
        "size",
        "package_name",
        "summary",
        "collection",
    ]

    @admin.display(description="Status page")
    def status_page(self, job: ImportJob) -> str:
        return format_html('<a href="{}">{}</a>', job.get_absolute_url(), job.status_label)


# --- Exports too long to write within a request -------------------------------------------


class ExpiredFilter(admin.SimpleListFilter):
    title = "file"
    parameter_name = "expired"

    def lookups(self, request, model_admin):
        return [("yes", "Expired"), ("no", "Not expired")]

    def queryset(self, request, queryset):
        expired = ExportJob.objects.expired()
        if self.value() == "yes":
            return queryset.filter(pk__in=expired.values("pk"))
        if self.value() == "no":
            return queryset.exclude(pk__in=expired.values("pk"))
        return queryset


@admin.register(ExportJob)
class ExportJobAdmin(JobAdmin):
    """Exports the worker writes. The file holds what its requester could see, so it is
    offered to them alone, never here."""

    list_display = [
        "collection",
        "format",
        "user",
        "status",
        "created_at",
        "finished_at",
        "expires_at",
        "size",
    ]
    list_filter = [*JobAdmin.list_filter, "format", ExpiredFilter]
    search_fields = ["collection__slug", "collection__title", "user__username", "uuid"]
    list_select_related = ["user", "collection"]
    readonly_fields = [
        *JobAdmin.job_fields,
        "collection",
        "format",
        "filters",
        "bom",
        "base_url",
        "file_name",
        "size",
        "expires_at",
    ]
