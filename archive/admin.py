"""Curation: sources, collections and fixity in the Django admin.

Curators edit bibliographic metadata here. The bytes, everything derived from them and the
provenance are shown read-only: a source's bytes arrive only through archiving
(archive.ingest), never through an admin form.
"""

from __future__ import annotations

import functools
import json
import uuid
from typing import TYPE_CHECKING, TypedDict

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Length, Substr
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from archive.forms import SourceMetadataForm
from archive.jobs import STALLED_AFTER
from archive.models import (
    Capture,
    Collection,
    CollectionEvent,
    FixityCheck,
    Invitation,
    Membership,
    Source,
    UploadJob,
)
from archive.signals import source_written

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class SourceTotal(TypedDict):
        source_total: int

    # A collection as the admin lists it: with the number of its sources.
    CountedCollection = WithAnnotations[Collection, SourceTotal]

TEXT_PREVIEW_CHARS = 600
FIXITY_HISTORY_SHOWN = 50
FAILURES_LISTED = 20
FIXITY_CHECK_FIELDS = ("checked_at", "ok", "observed_sha256", "error")
DELETE_SELECTED_SOURCES = "Delete selected sources"


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class WithdrawnFilter(admin.SimpleListFilter):
    title = "withdrawn"
    parameter_name = "withdrawn"

    def lookups(self, request, model_admin):
        return [("yes", "Withdrawn"), ("no", "Not withdrawn")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(withdrawn_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(withdrawn_at__isnull=True)
        return queryset


class RecentChecksFormSet(BaseInlineFormSet):
    # A source checked nightly gathers thousands of checks; the page shows the latest ones.
    def get_queryset(self):
        if not hasattr(self, "_recent_checks"):
            self._recent_checks = super().get_queryset()[:FIXITY_HISTORY_SHOWN]
        return self._recent_checks


class FixityCheckInline(admin.TabularInline):
    model = FixityCheck
    formset = RecentChecksFormSet
    fields = FIXITY_CHECK_FIELDS
    readonly_fields = FIXITY_CHECK_FIELDS
    ordering = ["-checked_at", "-pk"]
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name = "fixity check"
    verbose_name_plural = f"Fixity history (latest {FIXITY_HISTORY_SHOWN} checks)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class WithdrawForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Shown to curators beside the source. Withdrawing can be undone (Reinstate).",
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise ValidationError("Give a reason for withdrawing the sources.")
        return reason


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    # The web form's creators field (one name per line) and DOI clean-up, not raw JSON.
    form = SourceMetadataForm
    list_display = [
        "title",
        "citation_key",
        "media_type",
        "short_sha256",
        "archived_at",
        "archived_by",
        "fixity_status",
        "fixity_checked_at",
        "is_withdrawn",
    ]
    list_select_related = ["archived_by"]
    list_filter = ["media_type", "collections", "fixity_status", WithdrawnFilter, "archived_via"]
    search_fields = ["title", "creators", "^sha256", "citation_key"]
    search_help_text = "Title, creator, citation key, or the first characters of the SHA-256."
    date_hierarchy = "archived_at"
    list_per_page = 50
    actions = [
        "withdraw_selected",
        "reinstate_selected",
        "verify_fixity_selected",
        # exports.admin adds its export actions
    ]
    inlines = [FixityCheckInline]
    provenance_fields = ("archived_by", "archived_at", "archived_via")
    fieldsets = [
        (
            "Bibliographic metadata",
            {"fields": list(Source.METADATA_FIELDS)},
        ),
        (
            "Withdrawal",
            {"fields": ["withdrawn_at", "withdrawn_reason"]},
        ),
        (
            "Fixity",
            {"fields": ["sha256", "size", "blob_name", "last_fixity_check"]},
        ),
        (
            "Original bytes and provenance (never change)",
            {
                "fields": [
                    "uuid",
                    "media_type",
                    "declared_media_type",
                    "encoding",
                    "encoding_note",
                    "original_filename",
                    "original_url",
                    *provenance_fields,
                ]
            },
        ),
        (
            "Text layer (never changes)",
            {"fields": ["extractor", "extractor_version", "text_preview"]},
        ),
    ]
    readonly_fields = [
        *Source.IMMUTABLE_FIELDS,
        *provenance_fields,
        "withdrawn_at",
        "withdrawn_reason",
        "last_fixity_check",
        "text_preview",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Source]:
        # The text layer can be megabytes: lists and autocomplete never need it, and the
        # change page shows a preview fetched on its own (text_preview).
        return super().get_queryset(request).defer("text", "blocks")

    def get_readonly_fields(self, request, obj=None):
        # "text" and "blocks" are immutable but far too large to display whole.
        return [f for f in self.readonly_fields if f not in ("text", "blocks")]

    def get_search_results(self, request, queryset, search_term):
        unsearched = queryset
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        extra = Q()
        for term in search_term.split():
            if _is_uuid(term):
                extra |= Q(uuid=term)
            if not term.isascii():
                # SQLite stores JSON with non-ASCII escaped ("M\u00fcller").
                extra |= Q(creators__icontains=json.dumps(term)[1:-1])
        if extra:
            queryset |= unsearched.filter(extra)
        return queryset, may_have_duplicates

    @admin.display(description="SHA-256", ordering="sha256")
    def short_sha256(self, obj: Source) -> str:
        return obj.sha256[:12] + "…"

    @admin.display(description="withdrawn", boolean=True, ordering="withdrawn_at")
    def is_withdrawn(self, obj: Source) -> bool:
        return obj.is_withdrawn

    @admin.display(description="last check")
    def last_fixity_check(self, obj: Source) -> str:
        if obj.fixity_checked_at is None:
            return "Not yet verified"
        check = obj.fixity_checks.order_by("-checked_at", "-pk").first()
        when = f"{obj.fixity_checked_at:%Y-%m-%d %H:%M:%S} UTC"
        if check is None or check.ok:
            return format_html("Verified intact {}", when)
        return format_html('<strong class="errornote">FAILED {}: {}</strong>', when, check.error)

    @admin.display(description="text layer")
    def text_preview(self, obj: Source) -> str:
        if obj.pk is None:  # a source not yet saved: the stubs type pk as always set
            return "—"  # type: ignore[unreachable]
        # Only the beginning travels from the database, however long the text is.
        preview, length, blocks = (
            Source.objects.filter(pk=obj.pk)
            .annotate(preview=Substr("text", 1, TEXT_PREVIEW_CHARS), length=Length("text"))
            .values_list("preview", "length", "blocks")
            .get()
        )
        shown = Truncator(preview).chars(TEXT_PREVIEW_CHARS)
        return format_html(
            '<div style="white-space: pre-wrap; max-width: 60em">{}</div>'
            '<p>{} characters in {} blocks. <a href="{}">Read the whole source</a></p>',
            shown if length <= TEXT_PREVIEW_CHARS else shown.rstrip() + " …",
            f"{length:,}",
            f"{len(blocks):,}",
            obj.get_absolute_url(),
        )

    def save_model(self, request: HttpRequest, obj: Source, form, change: bool) -> None:
        # The admin wraps this in the change view's transaction, as indexing asks.
        super().save_model(request, obj, form, change)
        source_written.send(Source, source=obj)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        # Bytes enter only by archiving, which hashes and stores them and derives the text.
        messages.info(request, "Sources are added by archiving a file or pasted text.")
        return redirect("archive:source_archive")

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            actions["delete_selected"] = (
                delete_selected_sources,
                "delete_selected",
                DELETE_SELECTED_SOURCES,
            )
        return actions

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None and obj.has_annotations():
            self.message_user(
                request,
                f"“{obj}” has annotations and cannot be deleted. Withdraw it instead: it is"
                " then hidden from everyone but curators, and can be reinstated.",
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:archive_source_change", args=[obj.pk]))
        return super().delete_view(request, object_id, extra_context)

    @admin.action(description="Withdraw selected sources", permissions=["change"])
    def withdraw_selected(self, request: HttpRequest, queryset: QuerySet[Source]):
        form = WithdrawForm(request.POST if "confirm_withdraw" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            withdrawn = 0
            for source in queryset.filter(withdrawn_at__isnull=True):
                source.withdraw(reason)
                withdrawn += 1
            already = queryset.count() - withdrawn
            message = f"Withdrew {withdrawn} source{'s' if withdrawn != 1 else ''}."
            if already:
                message += f" {already} already withdrawn left as they were."
            self.message_user(request, message, messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Withdraw sources",
            "subtitle": None,
            "opts": self.model._meta,
            "queryset": queryset,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/archive/source/withdraw_selected.html", context)

    @admin.action(description="Reinstate selected sources", permissions=["change"])
    def reinstate_selected(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        reinstated = 0
        for source in queryset.filter(withdrawn_at__isnull=False):
            source.reinstate()
            reinstated += 1
        self.message_user(
            request,
            f"Reinstated {reinstated} source{'s' if reinstated != 1 else ''}.",
            messages.SUCCESS,
        )

    @admin.action(description="Verify fixity of selected sources", permissions=["change"])
    def verify_fixity_selected(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        checked, failures = 0, []
        for source in queryset.order_by("pk"):
            check = source.verify_fixity()
            checked += 1
            if not check.ok:
                failures.append((source, check))
        for source, check in failures[:FAILURES_LISTED]:
            self.message_user(
                request,
                f"FIXITY FAILED: “{source}” ({source.uuid}): {check.error}",
                messages.ERROR,
            )
        if len(failures) > FAILURES_LISTED:
            self.message_user(
                request,
                f"…and {len(failures) - FAILURES_LISTED} more failures (filter by fixity status).",
                messages.ERROR,
            )
        summary = (
            f"Verified {checked} source{'s' if checked != 1 else ''}:"
            f" {checked - len(failures)} intact, {len(failures)} failed."
        )
        self.message_user(request, summary, messages.ERROR if failures else messages.SUCCESS)


@admin.action(permissions=["delete"], description=DELETE_SELECTED_SOURCES)
def delete_selected_sources(modeladmin: SourceAdmin, request: HttpRequest, queryset):
    """Django's delete action, after refusing sources that carry annotations."""
    annotated = list(queryset.filter(annotations__isnull=False).distinct()[: FAILURES_LISTED + 1])
    if annotated:
        names = ", ".join(f"“{s}”" for s in annotated[:FAILURES_LISTED])
        more = " and more" if len(annotated) > FAILURES_LISTED else ""
        modeladmin.message_user(
            request,
            f"Nothing was deleted: these sources have annotations and cannot be deleted:"
            f" {names}{more}. Withdraw them instead.",
            messages.ERROR,
        )
        return None
    return delete_selected(modeladmin, request, queryset)


class MembershipInline(admin.TabularInline):
    model = Membership
    autocomplete_fields = ["user"]
    extra = 0


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "owner", "is_public", "source_count", "created_at"]
    list_select_related = ["owner"]
    list_filter = ["is_public", ("archived_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "slug", "description", "owner__username"]
    prepopulated_fields = {"slug": ["title"]}
    fields = [
        "slug",
        "title",
        "description",
        "owner",
        "is_public",
        "archived_at",
        "sources",
        "created_at",
    ]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["owner", "sources"]
    inlines = [MembershipInline]
    actions: list = []  # exports.admin adds its export actions

    def get_queryset(self, request: HttpRequest) -> QuerySet[CountedCollection]:
        return super().get_queryset(request).annotate(source_total=Count("sources", distinct=True))

    @admin.display(description="sources", ordering="source_total")
    def source_count(self, obj: CountedCollection) -> int:
        return obj.source_total

    # Changes made here join the collection's history, as the members page's do.

    def save_model(self, request, obj, form, change) -> None:
        previous_owner = None
        if change and "owner" in form.changed_data:
            previous_owner = Collection.objects.get(pk=obj.pk).owner
        super().save_model(request, obj, form, change)
        if not change:
            CollectionEvent.record(obj, CollectionEvent.Kind.CREATED, actor=request.user)
        if previous_owner is not None:
            CollectionEvent.record(
                obj,
                CollectionEvent.Kind.OWNERSHIP_TRANSFERRED,
                actor=request.user,
                subject=obj.owner,
                previous_owner=previous_owner,
            )
        if change and "archived_at" in form.changed_data:
            kind = (
                CollectionEvent.Kind.ARCHIVED if obj.archived_at else CollectionEvent.Kind.REOPENED
            )
            CollectionEvent.record(obj, kind, actor=request.user)

    def save_formset(self, request, form, formset, change) -> None:
        previous = {f.instance.pk: f.initial.get("role") for f in formset.forms if f.instance.pk}
        super().save_formset(request, form, formset, change)
        if formset.model is not Membership:
            return
        record = functools.partial(CollectionEvent.record, form.instance, actor=request.user)
        for m in formset.new_objects:
            record(CollectionEvent.Kind.MEMBER_ADDED, subject=m.user, role=m.role)
        for m, _fields in formset.changed_objects:
            if m.role != previous.get(m.pk):
                kind = CollectionEvent.Kind.ROLE_CHANGED
                record(kind, subject=m.user, role=m.role, previous_role=previous.get(m.pk) or "")
        for m in formset.deleted_objects:
            record(CollectionEvent.Kind.MEMBER_REMOVED, subject=m.user, previous_role=m.role)


INVITATION_FIELDS = (
    "collection",
    "role",
    "email",
    "created_by",
    "created_at",
    "expires_at",
    "max_uses",
    "uses",
    "revoked_at",
)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitation links, read-only but for revoking: a link's key exists only when it is made
    and must reach its maker, so links are made on the collection's members page (which
    curators reach for every collection)."""

    list_display = ["prefix", "collection", "role", "email", "uses", "max_uses", "expires_at"]
    list_select_related = ["collection"]
    list_filter = ["role"]
    search_fields = ["collection__title", "collection__slug", "email", "selector"]
    readonly_fields = INVITATION_FIELDS
    fields = INVITATION_FIELDS
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected invitations")
    def revoke(self, request, queryset) -> None:
        for invitation in queryset.filter(revoked_at__isnull=True).select_related("collection"):
            invitation.revoke(actor=request.user)


@admin.register(CollectionEvent)
class CollectionEventAdmin(admin.ModelAdmin):
    """A collection's team history: a record, so nobody edits or deletes it here."""

    list_display = ["at", "collection", "sentence"]
    list_select_related = ["collection", "actor", "subject", "previous_owner", "invitation"]
    list_filter = ["kind"]
    search_fields = [
        "collection__title",
        "collection__slug",
        "actor__username",
        "subject__username",
    ]
    date_hierarchy = "at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Capture)
class CaptureAdmin(admin.ModelAdmin):
    """Read-only: a capture is asked for on the archive page (or by the API or the command
    line) and changed only by its worker. Its page, linked from here, shows its provenance."""

    list_display = ["url", "user", "state", "created_at", "source", "new_source"]
    list_filter = ["state", "new_source"]
    search_fields = ["url", "url_final", "user__username", "uuid"]
    list_select_related = ["user", "source"]
    readonly_fields = [f.name for f in Capture._meta.concrete_fields if f.name != "id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Capture page")
    def capture_page(self, capture: Capture) -> str:
        return format_html('<a href="{}">{}</a>', capture.get_absolute_url(), capture.status_label)

    def get_readonly_fields(self, request, obj=None):
        return ["capture_page", *self.readonly_fields]


# --- Background work that people asked for ------------------------------------------------


@admin.action(description="Try the selected stopped jobs again")
def retry_stopped_jobs(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    """Queue again each selected job whose worker was stopped (Job.retry decides which may
    run again); the job keeps its requester, so it reads and writes only what they may."""
    retried = sum(1 for job in queryset if job.retry())
    skipped = len(queryset) - retried
    if retried:
        modeladmin.message_user(
            request, f"{retried} {'job' if retried == 1 else 'jobs'} queued to run again."
        )
    if skipped:
        modeladmin.message_user(
            request,
            f"{skipped} {'job was' if skipped == 1 else 'jobs were'} not stopped, so"
            f" {'it was' if skipped == 1 else 'they were'} left as they are.",
            messages.WARNING,
        )


class JobStateFilter(admin.SimpleListFilter):
    """The state as its requester sees it: a running job whose worker went silent is stopped."""

    title = "state"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [
            ("queued", "Queued"),
            ("running", "Running"),
            ("stopped", "Stopped"),
            ("done", "Done"),
            ("failed", "Failed"),
        ]

    def queryset(self, request, queryset):
        cutoff = timezone.now() - STALLED_AFTER
        silent = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=cutoff)
        value = self.value()
        if value == "running":
            return queryset.filter(state="running").exclude(silent)
        if value == "stopped":
            return queryset.filter(silent, state="running")
        if value in ("queued", "done", "failed"):
            return queryset.filter(state=value)
        return queryset


class JobAdmin(admin.ModelAdmin):
    """Read-only: a job is asked for by a person and changed only by its worker. Its own page
    is its requester's alone (it may name what only they can see), so it is not linked."""

    list_filter = [JobStateFilter, "created_at"]
    date_hierarchy = "created_at"
    actions = [retry_stopped_jobs]
    job_fields = [
        "uuid",
        "user",
        "status",
        "progress",
        "error",
        "attempt",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description="state", ordering="state")
    def status(self, job) -> str:
        return job.status_label


@admin.register(UploadJob)
class UploadJobAdmin(JobAdmin):
    """Uploads too slow to read within their request, read on the worker."""

    list_display = ["filename", "user", "status", "size", "created_at", "finished_at", "source"]
    search_fields = ["filename", "title", "user__username", "sha256", "uuid"]
    list_select_related = ["user", "source"]
    readonly_fields = [
        *JobAdmin.job_fields,
        "filename",
        "title",
        "declared_type",
        "original_url",
        "size",
        "sha256",
        "blob_name",
        "collection",
        "source",
        "summary",
    ]
