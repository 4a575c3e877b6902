from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.utils.text import Truncator
from taggit.models import Tag

from annotations.models import Annotation, AnnotationRevision, TaggedAnnotation

ANCHOR_FIELDS = ("uuid", "source", "start", "end", "exact", "prefix", "suffix")


class RevisionInline(admin.TabularInline):
    model = AnnotationRevision
    extra = 0
    can_delete = False
    fields = ("version", "edited_by", "edited_at", "note", "tags", "visibility")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
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
        "visibility",
        ("source", admin.RelatedOnlyFieldListFilter),
        ("author", admin.RelatedOnlyFieldListFilter),
        "tags",
    )
    search_fields = ("exact", "note")
    list_select_related = ("source", "author")
    readonly_fields = (*ANCHOR_FIELDS, "author", "collection", "created", "modified", "version")
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
    )
    inlines = [RevisionInline]
    date_hierarchy = "created"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related("tags")
            .defer("source__text", "source__blocks")
        )

    def has_add_permission(self, request) -> bool:
        # Anchors are checked against the text layer; annotations are made on the reading page.
        return False

    @admin.display(description="Quote")
    def quote_excerpt(self, obj: Annotation) -> str:
        return Truncator(obj.exact).chars(80)

    @admin.display(description="Tags")
    def tag_list(self, obj: Annotation) -> str:
        return ", ".join(t.name for t in obj.tags.all())


admin.site.unregister(Tag)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    """Rename a tag on its change page; merge duplicates with the action."""

    list_display = ("name", "slug", "uses")
    search_fields = ("name",)
    ordering = ("name",)
    actions = ["merge_tags"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(use_count=Count("annotations_taggedannotation_items", distinct=True))
        )

    @admin.display(description="Annotations", ordering="use_count")
    def uses(self, obj) -> int:
        return obj.use_count

    @admin.action(description="Merge selected tags into the most used one")
    def merge_tags(self, request, queryset):
        tags = sorted(queryset, key=lambda t: (-t.use_count, t.name.lower()))
        if len(tags) < 2:
            self.message_user(request, "Select at least two tags to merge.", messages.WARNING)
            return
        survivor, others = tags[0], tags[1:]
        with transaction.atomic():
            moved = 0
            for other in others:
                items = TaggedAnnotation.objects.filter(tag=other)
                already = TaggedAnnotation.objects.filter(tag=survivor).values("content_object_id")
                # An annotation with both tags keeps one: drop the duplicate, move the rest.
                items.filter(content_object_id__in=already).delete()
                moved += items.update(tag=survivor)
                other.delete()
            from search.index import index_annotation

            for annotation in Annotation.objects.filter(tags=survivor).prefetch_related("tags"):
                index_annotation(annotation)
        names = ", ".join(f"“{t.name}”" for t in others)
        self.message_user(
            request,
            f"Merged {names} into “{survivor.name}” (the most used); {moved} annotations moved.",
            messages.SUCCESS,
        )
