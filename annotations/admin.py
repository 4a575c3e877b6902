"""Curating annotations and tags: read-only anchors, revisions kept, tags renamed and merged."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.text import Truncator
from taggit.models import Tag

from annotations.models import (
    Annotation,
    AnnotationRevision,
    CodebookError,
    CodebookJob,
    Comment,
    TaggedAnnotation,
    TagRedirect,
    check_tags_free,
    merge_tags_everywhere,
)
from annotations.signals import annotation_written
from annotations.w3c import tag_name_error
from archive.admin import JobAdmin
from archive.models import Source

ANCHOR_FIELDS = ("uuid", "source", "start", "end", "exact", "prefix", "suffix")


def reindex(annotations: QuerySet[Annotation]) -> None:
    # django-stubs checks prefetch lookups against Django's own descriptors and does not know
    # taggit's manager, which Django prefetches all the same.
    for annotation in annotations.prefetch_related("tags"):  # type: ignore[misc]
        annotation_written.send(Annotation, annotation=annotation)


class SourceFilter(admin.SimpleListFilter):
    """Sources that have annotations, by title (RelatedOnlyFieldListFilter would load every
    source whole, text layer included, to print its title)."""

    title = "source"
    parameter_name = "source"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return list(
            Source.objects.filter(annotations__isnull=False)
            .distinct()
            .order_by("title", "pk")
            .values_list("pk", "title")
        )

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(source_id=self.value()) if self.value() else queryset


class RevisionInline(admin.TabularInline):
    model = AnnotationRevision
    extra = 0
    can_delete = False
    fields = ("version", "edited_by", "edited_at", "note", "tags", "visibility")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("edited_by")

    def has_add_permission(self, request: HttpRequest, obj: Annotation | None = None) -> bool:
        return False


class AnnotationForm(forms.ModelForm):
    def clean_tags(self) -> list[str]:
        tags = self.cleaned_data["tags"]
        problems = [problem for tag in tags if (problem := tag_name_error(tag.strip()))]
        if problems:
            raise forms.ValidationError(problems)
        return tags


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    form = AnnotationForm
    list_display = (
        "quote_excerpt",
        "source",
        "author",
        "tag_list",
        "visibility",
        "created",
        "modified",
    )
    list_filter = (
        SourceFilter,
        ("author", admin.RelatedOnlyFieldListFilter),
        "tags",
        "visibility",
    )
    search_fields = ("exact", "note")
    list_select_related = ("source", "author")
    readonly_fields = (
        *ANCHOR_FIELDS,
        "author",
        "collection",
        "created",
        "modified",
        "version",
        "canonical",
        "via",
    )
    fields = (
        *ANCHOR_FIELDS,
        "author",
        "collection",
        "note",
        "tags",
        "visibility",
        "created",
        "modified",
        "version",
        "canonical",
        "via",
    )
    inlines = [RevisionInline]
    date_hierarchy = "created"
    actions: list = []  # exports.admin adds its export actions

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Tags in one query for the whole page; the source's text layer never.
        return (
            super()
            .get_queryset(request)
            .prefetch_related("tags")
            .defer("source__text", "source__blocks")
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Anchors are checked against the text layer; annotations are made on the reading page.
        return False

    def save_model(
        self, request: HttpRequest, obj: Annotation, form: forms.ModelForm, change: bool
    ) -> None:
        # A curator's edit is an edit like any other: a revision, a new version (so a reader
        # with the old ETag gets 412 instead of overwriting it) and a fresh search entry.
        obj.update_content(
            editor=request.user,
            note=obj.note,
            tags=list(form.cleaned_data["tags"]),
            visibility=obj.visibility,
        )

    @admin.display(description="Quote")
    def quote_excerpt(self, obj: Annotation) -> str:
        return Truncator(obj.exact).chars(80)

    @admin.display(description="Tags")
    def tag_list(self, obj: Annotation) -> str:
        return ", ".join(t.name for t in obj.tags.all())


class TagForm(forms.ModelForm):
    class Meta:
        model = Tag
        fields = ("name", "slug")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        # Tags are case-insensitive (TAGGIT_CASE_INSENSITIVE): "Dates" beside "dates" would
        # split one code in two.
        clash = Tag.objects.filter(name__iexact=name).exclude(pk=self.instance.pk).first()
        if clash is not None:
            raise forms.ValidationError(
                f"A tag “{clash.name}” already exists. To combine the two, select both in the "
                "tag list and use “Merge selected tags”."
            )
        if self.instance.pk and name != self.instance.name:
            try:
                check_tags_free([self.instance])
            except CodebookError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return name


admin.site.unregister(Tag)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    """Rename a tag on its change page; merge duplicates with the action."""

    form = TagForm
    list_display = ("name", "slug", "uses")
    search_fields = ("name",)
    ordering = ("name",)
    prepopulated_fields = {"slug": ["name"]}
    actions = ["merge_tags"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(use_count=Count("annotations_taggedannotation_items", distinct=True))
        )

    @admin.display(description="Annotations", ordering="use_count")
    def uses(self, obj: Tag) -> int:
        return obj.use_count

    def save_model(self, request: HttpRequest, obj: Tag, form: forms.ModelForm, change: bool):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if change and "slug" in form.changed_data and form.initial.get("slug"):
                # The tag's page keeps working at its old address (and so do older ones).
                TagRedirect.objects.filter(old_slug=obj.slug).delete()
                TagRedirect.objects.update_or_create(
                    old_slug=form.initial["slug"], defaults={"tag": obj}
                )
            if change and "name" in form.changed_data:
                # Search finds annotations by their tag names; many are indexed on the worker.
                if CodebookJob.needed_for(TaggedAnnotation.objects.filter(tag=obj).count()):
                    CodebookJob.submit_tag_reindex(obj, form.initial["name"], actor=request.user)
                    self.message_user(
                        request,
                        f"“{obj.name}” is being indexed under its new name in the background; "
                        "it is listed under Codebook jobs in the admin.",
                        messages.INFO,
                    )
                else:
                    reindex(Annotation.objects.filter(tags=obj))

    @admin.action(description="Merge selected tags…")
    def merge_tags(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        """Ask which of the selected tags survives, saying how many annotations each carries;
        then move every annotation (and code) of the others onto it and delete them."""
        tags = sorted(queryset, key=lambda t: (-t.use_count, t.name.casefold(), t.pk))
        if len(tags) < 2:
            self.message_user(request, "Select at least two tags to merge.", messages.WARNING)
            return None
        if request.POST.get("confirmed") == "yes":
            chosen = request.POST.get("survivor", "")
            survivor = next((t for t in tags if str(t.pk) == chosen), None)
            if survivor is not None:
                others = [t for t in tags if t.pk != survivor.pk]
                names = ", ".join(f"“{t.name}”" for t in others)
                passages = TaggedAnnotation.objects.filter(tag__in=others).count()
                try:
                    if CodebookJob.needed_for(passages):
                        CodebookJob.submit_tag_merge(survivor, others, actor=request.user)
                        self.message_user(
                            request,
                            f"{names} {'is' if len(others) == 1 else 'are'} being merged into "
                            f"“{survivor.name}” in the background; it is listed under Codebook "
                            "jobs in the admin.",
                            messages.INFO,
                        )
                        return None
                    moved, dropped = merge_tags_everywhere(survivor, others, actor=request.user)
                except CodebookError as exc:
                    self.message_user(request, f"Nothing was merged: {exc}", messages.ERROR)
                    return None
                self.message_user(
                    request,
                    f"Merged {names} into “{survivor.name}”. {moved} annotations moved to it; "
                    f"{dropped} already had it. The merged tags' pages lead to its page.",
                    messages.SUCCESS,
                )
                return None
            self.message_user(request, "Choose which tag survives.", messages.WARNING)
        context = {
            **self.admin_site.each_context(request),
            "title": "Merge tags",
            "opts": self.model._meta,
            "tags": tags,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/taggit/tag/merge_confirmation.html", context)


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    """Replies and notes on whole sources: curators read, moderate (edit the text, delete)."""

    list_display = ("__str__", "author", "short_note", "visibility", "created")
    list_filter = ("visibility",)
    search_fields = ("note", "uuid", "author__username")
    list_select_related = ("author",)
    fields = (
        "uuid",
        "source",
        "reply_to_annotation",
        "reply_to_note",
        "collection",
        "visibility",
        "author",
        "note",
        "created",
        "modified",
    )
    # What it answers, where and by whom never change; nor does a reply take an audience.
    readonly_fields = (
        "uuid",
        "source",
        "reply_to_annotation",
        "reply_to_note",
        "collection",
        "visibility",
        "author",
        "created",
        "modified",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written from the reading page or the API, by their authors

    @admin.display(description="text")
    def short_note(self, obj: Comment) -> str:
        return Truncator(obj.note).chars(80)


@admin.register(CodebookJob)
class CodebookJobAdmin(JobAdmin):
    """Codebook changes too large for a request, made by the worker in batches."""

    list_display = ["change", "collection", "user", "status", "progress", "created_at"]
    list_filter = [*JobAdmin.list_filter, "action"]
    search_fields = ["collection__slug", "old_name", "new_name", "user__username", "uuid"]
    list_select_related = ["user", "collection"]
    readonly_fields = [
        *JobAdmin.job_fields,
        "collection",
        "action",
        "code",
        "other",
        "from_tag",
        "to_tag",
        "old_name",
        "new_name",
        "total",
        "done",
        "cursor",
        "summary",
    ]
