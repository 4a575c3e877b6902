from __future__ import annotations

import uuid
from types import EllipsisType
from typing import TYPE_CHECKING, NamedTuple

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
QUOTE_CANDIDATES = 10_000  # occurrences of a bare quote weighed against its prefix/suffix


class AnchorError(ValueError):
    """An anchor that does not fit the source's text layer; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class StaleAnnotation(Exception):
    """The annotation changed since the client loaded it (its version moved on)."""


class TaggedAnnotation(TaggedItemBase):
    content_object = models.ForeignKey("Annotation", on_delete=models.CASCADE)


class TagRef(NamedTuple):
    name: str
    slug: str


class ReadingRow:
    """One annotation as the reading page shows it (see AnnotationQuerySet.reading_rows).

    ``uuid`` is text here: the page writes each id into every highlight run it covers.
    """

    __slots__ = (
        "pk",
        "uuid",
        "start",
        "end",
        "exact",
        "note",
        "visibility",
        "created",
        "version",
        "author_id",
        "username",
        "tag_list",
        "visibility_label",
    )
    COLUMNS = (*__slots__[:10], "author__username")

    def __init__(self, values: tuple, labels: dict[str, str]) -> None:
        (
            self.pk,
            uuid,
            self.start,
            self.end,
            self.exact,
            self.note,
            self.visibility,
            self.created,
            self.version,
            self.author_id,
            self.username,
        ) = values
        self.uuid = str(uuid)
        self.tag_list: list[TagRef] = []
        self.visibility_label = labels[self.visibility]

    def get_visibility_display(self) -> str:
        return self.visibility_label

    @property
    def note_html(self):
        from annotations.markdown import render_markdown

        return render_markdown(self.note)


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

    def reading_rows(self) -> list[ReadingRow]:
        """What a reading page shows of each annotation, in two queries and without model
        instances: building 2,000 annotations, their authors and tags as objects cost the
        page more than everything else together (bench/reader.py)."""
        labels = {v.value: str(v.label) for v in Annotation.Visibility}
        rows = [ReadingRow(values, labels) for values in self.values_list(*ReadingRow.COLUMNS)]
        if rows:
            by_pk = {row.pk: row for row in rows}
            tagged = (
                TaggedAnnotation.objects.filter(content_object__in=self.values("pk"))
                .order_by("pk")
                .values_list("content_object_id", "tag__name", "tag__slug")
            )
            for pk, name, slug in tagged:
                by_pk[pk].tag_list.append(TagRef(name, slug))
        return rows


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
        start: int | None = None,
        end: int | None = None,
        exact: str | None = None,
        prefix: str | None = None,
        suffix: str | None = None,
        note: str = "",
        tags: list[str] | None = None,
        visibility: str | None = None,
        collection: Collection | None | EllipsisType = ...,
    ) -> Annotation:
        """Anchor a new annotation on the source's text layer (the server is the authority).

        With offsets, ``exact`` (if given) must match the text there. Without offsets, the
        quote is looked up in the text, ``prefix``/``suffix`` choosing between occurrences.
        ``collection`` defaults to ``collection_for(author, source)``; pass it when the
        caller has just looked it up.
        """
        if start is None and end is None:
            if exact is None:
                raise AnchorError("start", "Give offsets (start and end) or a quote (exact).")
            start, end = cls.locate_quote(source.text, exact, prefix, suffix)
        quote = cls.anchor(source.text, start, end, exact)
        with transaction.atomic():
            annotation = cls.objects.create(
                source=source,
                collection=(
                    cls.collection_for(author, source) if collection is ... else collection
                ),
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

    def update_content(
        self,
        *,
        editor,
        note: str,
        tags: list[str],
        visibility: str,
        expected_version: int | None = None,
    ) -> bool:
        """Change note, tags and visibility, keeping the previous state as a revision.

        The previous state is read from the database inside the transaction, not from this
        instance (whose fields a form may already have overwritten). With
        ``expected_version``, raise StaleAnnotation unless the stored version is still that
        one: the version is claimed by a conditional UPDATE, so of two concurrent edits from
        the same version exactly one wins, on SQLite as on PostgreSQL. Return False (and
        change nothing, not even the version) when the content is already as asked.
        """
        with transaction.atomic():
            current = (
                Annotation.objects.select_for_update()
                .only("pk", "note", "visibility", "version")
                .get(pk=self.pk)
            )
            if expected_version is not None and current.version != expected_version:
                raise StaleAnnotation(f"stored version is {current.version}")
            previous_tags = [t.name for t in current.tags.all()]
            if (
                current.note == note
                and current.visibility == visibility
                and sorted(t.casefold() for t in previous_tags)
                == sorted(t.casefold() for t in tags)
            ):
                self.note, self.visibility, self.version = note, visibility, current.version
                return False
            now = timezone.now()
            claimed = Annotation.objects.filter(pk=self.pk, version=current.version).update(
                note=note, visibility=visibility, version=current.version + 1, modified=now
            )
            if not claimed:
                raise StaleAnnotation("changed while being edited")
            AnnotationRevision.objects.create(
                annotation=self,
                version=current.version,
                edited_by=editor,
                edited_at=now,
                note=current.note,
                tags=previous_tags,
                visibility=current.visibility,
            )
            self.note, self.visibility = note, visibility
            self.version, self.modified = current.version + 1, now
            self.tags.set(tags)
            from search.index import index_annotation

            index_annotation(self)
        return True

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

    @staticmethod
    def locate_quote(
        text: str, exact: str, prefix: str | None = None, suffix: str | None = None
    ) -> tuple[int, int]:
        """The offsets of a W3C TextQuoteSelector in a text layer.

        Of several occurrences, the one whose surroundings match the most of ``prefix`` (read
        backwards from the quote) and ``suffix`` wins; ties go to the first occurrence.
        """
        if not exact:
            raise AnchorError("exact", "The quote (exact) is empty.")
        best, best_score = -1, -1
        position = text.find(exact)
        if not prefix and not suffix:
            best, position = position, -1
        # A short quote may occur a million times in a long text; the context of the first
        # thousands is plenty to choose from.
        looked_at = 0
        while position != -1 and looked_at < QUOTE_CANDIDATES:
            looked_at += 1
            end = position + len(exact)
            score = _common_suffix(text[max(0, position - QUOTE_CONTEXT) : position], prefix or "")
            score += _common_prefix(text[end : end + QUOTE_CONTEXT], suffix or "")
            if score > best_score:
                best, best_score = position, score
            position = text.find(exact, position + 1)
        if best == -1:
            raise AnchorError("exact", "The quote (exact) does not occur in the source's text.")
        return best, best + len(exact)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _common_suffix(a: str, b: str) -> int:
    return _common_prefix(a[::-1], b[::-1])


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

    def __str__(self) -> str:
        return f"Version {self.version} of annotation {self.annotation_id}"
