from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from taggit.managers import TaggableManager
from taggit.models import TaggedItemBase

from archive.models import Collection, Source

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

QUOTE_CONTEXT = 32  # characters of prefix and suffix kept with each quote


class AnchorError(ValueError):
    """An anchor that does not fit the source's text layer; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class TaggedAnnotation(TaggedItemBase):
    content_object = models.ForeignKey("Annotation", on_delete=models.CASCADE)


class AnnotationQuerySet(models.QuerySet):
    def visible_to(self, user: AbstractBaseUser | AnonymousUser) -> AnnotationQuerySet:
        """The one rule for who may read an annotation.

        The source must be visible to the user; then the author always sees it, members of
        its collection see "collection" annotations, and anyone sees "public" annotations in
        a public collection.
        """
        if getattr(user, "is_staff", False):
            return self.all()
        visible_sources = Source.objects.visible_to(user)
        rule = Q(visibility=Annotation.Visibility.PUBLIC, collection__is_public=True)
        if user.is_authenticated:
            member_collections = Collection.objects.filter(
                Q(owner=user) | Q(memberships__user=user)
            )
            rule |= Q(author=user)
            rule |= Q(
                visibility__in=[Annotation.Visibility.COLLECTION, Annotation.Visibility.PUBLIC],
                collection__in=member_collections,
            )
        return self.filter(rule, source__in=visible_sources)

    def with_related(self) -> AnnotationQuerySet:
        # The source comes along for its IRI and title, never its (large) text layer.
        return (
            self.select_related("author", "source", "collection")
            .defer("source__text", "source__blocks")
            .prefetch_related("tags")
        )

    def in_text_order(self) -> AnnotationQuerySet:
        return self.order_by("start", "-end", "created")


class Annotation(models.Model):
    class Visibility(models.TextChoices):
        PRIVATE = "private", "Private (only me)"
        COLLECTION = "collection", "Collection members"
        PUBLIC = "public", "Public"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="annotations")
    collection = models.ForeignKey(
        Collection, on_delete=models.PROTECT, null=True, blank=True, related_name="annotations"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations"
    )
    # Anchor: W3C TextPositionSelector (code points) + TextQuoteSelector. Never edited.
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    exact = models.TextField()
    prefix = models.CharField(max_length=QUOTE_CONTEXT, blank=True)
    suffix = models.CharField(max_length=QUOTE_CONTEXT, blank=True)

    note = models.TextField(blank=True)
    tags = TaggableManager(through=TaggedAnnotation, blank=True)
    visibility = models.CharField(
        max_length=12, choices=Visibility.choices, default=Visibility.COLLECTION
    )
    created = models.DateTimeField(default=timezone.now, editable=False)
    modified = models.DateTimeField(default=timezone.now, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = AnnotationQuerySet.as_manager()

    class Meta:
        ordering = ["source", "start", "-end"]
        indexes = [models.Index(fields=["source", "start"])]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="anchor_not_empty")
        ]

    def __str__(self) -> str:
        return f"“{self.exact[:60]}” on {self.source_id}"

    def get_absolute_url(self) -> str:
        return reverse("archive:source_detail", args=[self.source.uuid]) + f"#a-{self.uuid}"

    @classmethod
    def create_anchored(
        cls,
        *,
        author,
        source: Source,
        start: int,
        end: int,
        exact: str | None = None,
        note: str = "",
        tags: list[str] | None = None,
        visibility: str | None = None,
    ) -> Annotation:
        """Anchor a new annotation on the source's text layer (the server is the authority)."""
        quote = cls.anchor(source.text, start, end, exact)
        with transaction.atomic():
            annotation = cls.objects.create(
                source=source,
                collection=cls.collection_for(author, source),
                author=author,
                start=start,
                end=end,
                note=note,
                visibility=visibility or cls.Visibility.COLLECTION,
                **quote,
            )
            if tags:
                annotation.tags.set(tags)
            from search.index import index_annotation  # search imports this module

            index_annotation(annotation)
        return annotation

    def update_content(self, *, editor, note: str, tags: list[str], visibility: str) -> None:
        """Change note, tags and visibility, keeping the previous state as a revision."""
        with transaction.atomic():
            AnnotationRevision.objects.create(
                annotation=self,
                version=self.version,
                edited_by=editor,
                note=self.note,
                tags=[t.name for t in self.tags.all()],
                visibility=self.visibility,
            )
            self.note = note
            self.visibility = visibility
            self.version += 1
            self.modified = timezone.now()
            self.save(update_fields=["note", "visibility", "version", "modified"])
            self.tags.set(tags)
            from search.index import index_annotation

            index_annotation(self)

    @staticmethod
    def can_annotate(user, source: Source) -> bool:
        """Annotators, editors and owners of a collection holding the source, and its archiver."""
        if not user.is_authenticated:
            return False
        if user.is_staff or source.archived_by_id == user.pk:
            return True
        return Annotation.collection_for(user, source) is not None

    @staticmethod
    def collection_for(user, source: Source) -> Collection | None:
        """The collection a new annotation by ``user`` on ``source`` belongs to."""
        from archive.models import Membership

        writers = [Membership.Role.ANNOTATOR, Membership.Role.EDITOR, Membership.Role.OWNER]
        return (
            source.collections.filter(
                Q(owner=user) | Q(memberships__user=user, memberships__role__in=writers)
            )
            .order_by("title", "pk")
            .first()
        )

    @property
    def note_html(self):
        from annotations.markdown import render_markdown

        return render_markdown(self.note)

    @property
    def etag(self) -> str:
        return f'"{self.uuid}-{self.version}"'

    @staticmethod
    def anchor(text: str, start: int, end: int, exact: str | None = None) -> dict:
        """Check an anchor against a text layer; return exact, prefix and suffix from it.

        The server is the authority: offsets must fall inside the text and a client's quote
        must equal the text at those offsets.
        """
        if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool):
            raise AnchorError("start", "start and end must be whole numbers (code points).")
        if start < 0 or end > len(text):
            raise AnchorError(
                "start" if start < 0 else "end",
                f"The range {start}-{end} lies outside the text (0-{len(text)}).",
            )
        if end <= start:
            raise AnchorError("end", "The range is empty: end must be greater than start.")
        actual = text[start:end]
        if exact is not None and exact != actual:
            raise AnchorError(
                "exact",
                "The quote (exact) differs from the source's text at those offsets.",
            )
        return {
            "exact": actual,
            "prefix": text[max(0, start - QUOTE_CONTEXT) : start],
            "suffix": text[end : end + QUOTE_CONTEXT],
        }


class AnnotationRevision(models.Model):
    """The state of an annotation before an edit, so its history can be shown."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    edited_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)
    tags = models.JSONField(default=list)
    visibility = models.CharField(max_length=12)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["annotation", "version"], name="one_revision_per_version"
            )
        ]
