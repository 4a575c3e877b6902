from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from types import EllipsisType
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from taggit.managers import TaggableManager
from taggit.models import Tag, TaggedItemBase

from annotations.citekeys import KeyTarget
from annotations.markdown import link_citations, render_markdown, render_note
from annotations.signals import annotation_written, annotations_retagged
from archive.jobs import Job
from archive.models import DOI_RE, Collection, Source, validate_date_published

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

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


class AnnotationGone(StaleAnnotation):
    """The annotation was deleted meanwhile (a caller that only knows StaleAnnotation still
    refuses the change; one that can say "not found" should catch this first)."""


class TaggedAnnotation(TaggedItemBase):
    # Indexed with the tag (below), not alone: one index then answers both "this
    # annotation's tags" and, without reading the row, "does it carry this tag".
    content_object: models.ForeignKey[Annotation, Annotation] = models.ForeignKey(
        "Annotation", on_delete=models.CASCADE, db_index=False
    )

    class Meta:
        indexes = [
            models.Index(fields=["content_object", "tag"], name="annotations_tagged_with_tag")
        ]


class TagRef(NamedTuple):
    name: str
    slug: str
    # Its code's colour in the annotation's collection (the reading page), if it has one.
    colour: str = ""


class AnnotationQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> AnnotationQuerySet:
        """The one rule for who may read an annotation.

        The source must be visible to the user; then the author always sees it, members of
        its collection see "collection" annotations, and anyone sees "public" annotations in
        a public collection.
        """
        if getattr(user, "is_staff", False):
            return self.all()
        visible_sources = Source.objects.visible_to(user)
        return self.filter(audience_rule(user), source__in=visible_sources)

    def tag_counts(self, name_contains: str = "") -> list[Tag]:
        """The tags these annotations carry (those with ``name_contains`` in their name), in
        name order, each with ``count``: how many of the annotations carry it. One grouped
        pass over the annotations, so that a visibility rule is worked out once, not once
        per tag."""
        counts = dict(
            self.filter(tags__isnull=False)
            .order_by()
            .values_list("tags")
            .annotate(count=models.Count("pk"))
        )
        named = Tag.objects.order_by("name")
        if name_contains:
            named = named.filter(name__icontains=name_contains)
        tags = [tag for tag in named if tag.pk in counts]
        for tag in tags:
            tag.count = counts[tag.pk]
        return tags

    def with_related(self, viewer=None) -> AnnotationQuerySet:
        """Author, source, tags and citations in a fixed number of queries.

        The source comes along for its IRI and title, never its (large) text layer. Citations
        are flagged with what ``viewer`` may see of their targets; without a viewer (an export
        by the server itself) every target counts as visible.
        """
        return (
            self.select_related("author", "source", "collection")
            # note_plain is for search results only.
            .defer("source__text", "source__blocks", "note_plain")
            .prefetch_related(
                "tags",
                models.Prefetch("citations", queryset=Citation.objects.for_display(viewer)),
            )
        )

    def for_listing(self) -> AnnotationQuerySet:
        """What a list of passages shows (source title, author, tags) in a fixed number of
        queries: ``with_related`` without the citations, which lists do not show."""
        return (
            self.select_related("author", "source", "collection")
            .defer("source__text", "source__blocks", "note_plain")
            .prefetch_related("tags")
        )

    def in_text_order(self) -> AnnotationQuerySet:
        return self.order_by("start", "-end", "created")


# taggit is untyped, so the plugin cannot see TaggedAnnotation as a model, nor find the
# taggedannotation_set that its content_object gives this one.
class Annotation(models.Model):  # type: ignore[django-manager-missing]
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
    # The note rendered when it is written (annotations.markdown.render_note), never at read
    # time: its HTML with citation placeholders, and its plain text for search results.
    # Nullable for the same reason as ``canonical`` below; every save fills them.
    note_rendered = models.TextField(null=True, blank=True, editable=False)
    note_plain = models.TextField(null=True, blank=True, editable=False)
    # In tagging order (the order given, as create answers), on every engine: taggit's
    # prefetch (with_related) has no order of its own, and PostgreSQL's DISTINCT in it
    # returned tags in any order.
    tags = TaggableManager(
        through=TaggedAnnotation, blank=True, ordering=["annotations_taggedannotation_items__id"]
    )
    visibility = models.CharField(
        max_length=12, choices=Visibility.choices, default=Visibility.COLLECTION
    )
    created = models.DateTimeField(default=timezone.now, editable=False)
    modified = models.DateTimeField(default=timezone.now, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    # W3C provenance links (model 3.3.7), kept as the client sent them when the annotation
    # was created and never changed after (protocol 5.1, 5.3): its canonical IRI, and the
    # IRIs of the copies it came from; None when none was sent. Nullable because adding a
    # NOT NULL column makes SQLite rebuild the table: every annotation rewritten, and
    # the index search_annotation_access (annotations migration 0007) lost. A nullable one is
    # an ADD COLUMN.
    canonical = models.CharField(max_length=2000, null=True, blank=True, editable=False)
    via = models.JSONField(null=True, blank=True, editable=False)

    objects = AnnotationQuerySet.as_manager()

    class Meta:
        ordering = ["source", "start", "-end"]
        indexes = [
            models.Index(fields=["source", "start"]),
            # A collection's passages newest first (a search by collection alone), read in
            # order and stopped at the listing's end, where all were read and sorted
            # (bench/NOTES.md). PostgreSQL's planner, which reckons reads out of order dear,
            # finds them through it but still sorts them.
            models.Index(
                fields=["collection", "created", "id"], name="annotation_collection_new_idx"
            ),
            # And search_annotation_access, what visible_to decides by: a different index on
            # each engine, which Meta cannot declare, so migration 0007 makes it.
        ]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="anchor_not_empty")
        ]

    def __str__(self) -> str:
        return f"“{self.exact[:60]}” on {self.source_id}"

    def get_absolute_url(self) -> str:
        return f"{self.source.get_absolute_url()}#{self.fragment}"

    def save(self, *args, **kwargs) -> None:
        # Every way of writing a note through the ORM but QuerySet.update (update_content
        # renders itself) comes here: create, the admin, imports, restore.
        kwargs["update_fields"] = _with_rendered_note(self, kwargs.get("update_fields"))
        super().save(*args, **kwargs)

    @property
    def fragment(self) -> str:
        """Its id on its source's reading page (the URL's #fragment)."""
        return f"a-{self.uuid}"

    @property
    def lead_in(self) -> str:
        """The prefix as a list of passages shows it: from a whole word, after "…" where the
        text goes on further back (the prefix is cut at a fixed length, often mid-word)."""
        if self.start <= len(self.prefix):  # the text starts here
            return self.prefix
        if self.prefix[:1].isspace():
            return "…" + self.prefix.lstrip()
        words = self.prefix.split(maxsplit=1)
        return "…" + (words[1] if len(words) == 2 else self.prefix)

    @property
    def lead_out(self) -> str:
        """The suffix as shown: up to a whole word, "…" after it where the text goes on."""
        if len(self.suffix) < QUOTE_CONTEXT:  # the text ends here
            return self.suffix
        if self.suffix[-1:].isspace():
            return self.suffix.rstrip() + "…"
        words = self.suffix.rsplit(maxsplit=1)
        return (words[0] if len(words) == 2 else self.suffix) + "…"

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
        citations: list[Citation] | None = None,
        canonical: str | None = None,
        via: list[str] | None = None,
        keep_related: bool = False,
    ) -> Annotation:
        """Anchor a new annotation on the source's text layer (the server is the authority).

        With offsets, ``exact`` (if given) must match the text there. Without offsets, the
        quote is looked up in the text, ``prefix``/``suffix`` choosing between occurrences.
        ``collection`` defaults to ``collection_for(author, source)``; pass it when the
        caller has just looked it up. With ``keep_related``, the tags and citations written
        stay loaded as ``with_related`` would load them, so a caller that answers with the
        whole annotation need not read it back (they are not refreshed after that).
        """
        if start is None and end is None:
            if exact is None:
                raise AnchorError("start", "Give offsets (start and end) or a quote (exact).")
            start, end = cls.locate_quote(source.text, exact, prefix, suffix)
        quote = cls.anchor(source.text, start, end, exact)
        render_note(note)  # before the write lock; save finds it memoised
        with transaction.atomic():
            annotation, tag_objects = cls.write_anchored(
                quote,
                tags=tags or [],
                citations=citations,
                source=source,
                collection=(
                    cls.collection_for(author, source) if collection is ... else collection
                ),
                author=author,
                start=start,
                end=end,
                note=note,
                visibility=visibility or cls.Visibility.COLLECTION,
                canonical=canonical or None,
                via=via or None,
            )
        if keep_related:
            annotation.keep_loaded(tag_objects, citations or [])
        return annotation

    @classmethod
    def write_anchored(
        cls, quote: dict, *, tags: list[str], citations: list[Citation] | None = None, **fields
    ) -> tuple[Annotation, list[Tag]]:
        """Write a new annotation, its tags and citations, and have it indexed: the steps
        every way of adding one shares (``create_anchored``, the importer). ``quote`` is
        ``anchor``'s, already checked against the source's text; ``fields`` are the other
        columns. Call it inside a transaction: it opens none of its own."""
        annotation = cls.objects.create(**fields, **quote)
        tag_objects = annotation.add_first_tags(tags)
        if citations:
            for position, citation in enumerate(citations):
                citation.annotation, citation.position = annotation, position
            Citation.objects.bulk_create(citations)
        annotation_written.send(
            cls, annotation=annotation, tag_names=[t.name for t in tag_objects], new=True
        )
        return annotation, tag_objects

    def add_first_tags(self, names: list[str]) -> list[Tag]:
        """Tag a new (untagged) annotation: taggit's ``tags.set`` result, in two queries
        instead of about four per tag. Tags are attached in the order given."""
        tags = self.tags_named(names)
        TaggedAnnotation.objects.bulk_create(
            [TaggedAnnotation(content_object=self, tag=tag) for tag in tags]
        )
        return tags

    def _replace_tags(self, tagged: list[TaggedAnnotation], names: list[str]) -> list[Tag]:
        """Change an annotation's tags (``tagged``, its rows in order) to ``names`` as
        taggit's ``tags.set`` does, in at most three queries instead of about four per tag:
        tags kept keep their place, tags dropped lose it, new ones follow in the order given.
        Return the tags in their new order (the order ``tags.all()`` gives).
        """
        wanted = self.tags_named(names)
        wanted_pks = {tag.pk for tag in wanted}
        kept = [row for row in tagged if row.tag_id in wanted_pks]
        dropped = [row.pk for row in tagged if row.tag_id not in wanted_pks]
        if dropped:
            TaggedAnnotation.objects.filter(pk__in=dropped).delete()
        kept_pks = {row.tag_id for row in kept}
        added = [tag for tag in wanted if tag.pk not in kept_pks]
        if added:
            TaggedAnnotation.objects.bulk_create(
                [TaggedAnnotation(content_object=self, tag=tag) for tag in added]
            )
        # As tags.set does: a prefetched list of the old tags must not be read again.
        getattr(self, "_prefetched_objects_cache", {}).pop("tags", None)
        return [row.tag for row in kept] + added

    @staticmethod
    def tags_named(names: list[str]) -> list[Tag]:
        """The tags ``tags.set(names)`` would attach, in order, each once: one query when
        they all exist, three more when some are new, however many.

        Names match existing tags case-insensitively (TAGGIT_CASE_INSENSITIVE), the oldest
        tag winning; a name that matches none becomes a new tag, with the slug taggit's
        ``Tag.save`` would give it.
        """
        if not names:
            return []
        lookup = Q()
        for name in names:
            lookup |= Q(name__iexact=name)
        existing: dict[str, Tag] = {}
        for tag in Tag.objects.filter(lookup).order_by("pk"):
            existing.setdefault(tag.name.upper(), tag)
        missing: dict[str, str] = {}  # first spelling of each new name, in order
        for name in names:
            if name.upper() not in existing:
                missing.setdefault(name.upper(), name)
        if missing:
            for tag in Annotation._create_tags(list(missing.values())):
                existing.setdefault(tag.name.upper(), tag)
        ordered: dict[int, Tag] = {}
        for name in names:
            tag = existing.get(name.upper())
            if tag is None:
                # Case rules the database and Python disagree on, a slug we left to
                # taggit, or a tag another request just made: as taggit does,
                # get_or_create survives a concurrent request creating it too.
                tag, _ = Tag.objects.get_or_create(name__iexact=name, defaults={"name": name})
                existing[name.upper()] = tag
            ordered.setdefault(tag.pk, tag)
        return list(ordered.values())

    @staticmethod
    def _create_tags(names: list[str]) -> list[Tag]:
        """New tags for ``names`` in three queries, slugged as taggit's ``Tag.save`` slugs
        them one by one (the first free of ``slug``, ``slug_1``, ``slug_2``...). Tags
        another request made meanwhile under these names are returned as they are; a name
        missing from the answer (its slug taken meanwhile, or empty or too long) is left to
        the caller's get_or_create, that is to taggit."""
        slug_field = Tag._meta.get_field("slug")
        bases = {name: Tag().slugify(name) for name in names}
        bases = {name: slug for name, slug in bases.items() if slug}
        if not bases:
            return []
        near = Q()  # the slugs a name could get: its own, or it followed by _1, _2...
        for slug in set(bases.values()):
            near |= Q(slug=slug) | Q(slug__startswith=f"{slug}_")
        taken = set(Tag.objects.filter(near).values_list("slug", flat=True))
        fresh = []
        for name, base in bases.items():
            slug, i = base, 0
            while slug in taken:
                i += 1
                slug = Tag().slugify(name, i)
            if len(slug) <= slug_field.max_length:
                taken.add(slug)
                fresh.append(Tag(name=name, slug=slug))
        Tag.objects.bulk_create(fresh, ignore_conflicts=True)
        return list(Tag.objects.filter(name__in=[tag.name for tag in fresh]).order_by("pk"))

    def keep_loaded(self, tags: list[Tag], citations: list[Citation]) -> None:
        """Remember tags and citations as ``with_related`` would have loaded them (a
        prefetch cache: later changes to them do not show here)."""
        cache = self.__dict__.setdefault("_prefetched_objects_cache", {})
        for name, rows in (("tags", tags), ("citations", citations)):
            cache.pop(name, None)
            loaded = getattr(self, name).all()  # lazy: no query
            # Filled in as Django's prefetch_related_objects fills its querysets.
            loaded._result_cache, loaded._prefetch_done = list(rows), True
            cache[name] = loaded

    def update_content(
        self,
        *,
        editor,
        note: str,
        tags: list[str],
        visibility: str,
        expected_version: int | None = None,
        citations: list[Citation] | None = None,
    ) -> bool:
        """Change note, tags and visibility, keeping the previous state as a revision.

        The previous state is read from the database inside the transaction, not from this
        instance (whose fields a form may already have overwritten). With
        ``expected_version``, raise StaleAnnotation unless the stored version is still that
        one: the version is claimed by a conditional UPDATE, so of two concurrent edits from
        the same version exactly one wins, on SQLite as on PostgreSQL. Raise AnnotationGone,
        whatever the version, if the annotation was deleted. Return False (and change
        nothing, not even the version) when the content is already as asked.
        ``citations`` (from ``Citation.build_all``) replace the current ones; None keeps them.
        """
        rendered = render_note(note)  # before the lock: a long note takes a while to parse
        with transaction.atomic():
            try:
                current = (
                    Annotation.objects.select_for_update()
                    .only("pk", "note", "visibility", "version")
                    .get(pk=self.pk)
                )
            except Annotation.DoesNotExist:
                raise AnnotationGone("deleted before this edit") from None
            if expected_version is not None and current.version != expected_version:
                raise StaleAnnotation(f"stored version is {current.version}")
            tagged = list(
                TaggedAnnotation.objects.filter(content_object_id=self.pk)
                .select_related("tag")
                .order_by("pk")
            )
            previous_tags = [row.tag.name for row in tagged]
            previous_citations = list(current.citations.for_display(None))
            citations_same = citations is None or [c.content_key() for c in previous_citations] == [
                c.content_key() for c in citations
            ]
            if (
                current.note == note
                and current.visibility == visibility
                and sorted(t.casefold() for t in previous_tags)
                == sorted(t.casefold() for t in tags)
                and citations_same
            ):
                self.note, self.visibility, self.version = note, visibility, current.version
                return False
            now = timezone.now()
            claimed = Annotation.objects.filter(pk=self.pk, version=current.version).update(
                note=note,
                note_rendered=rendered.html,
                note_plain=rendered.plain,
                visibility=visibility,
                version=current.version + 1,
                modified=now,
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
                citations=[c.as_ref() for c in previous_citations],
            )
            self.note, self.visibility = note, visibility
            self.note_rendered, self.note_plain = rendered
            self.version, self.modified = current.version + 1, now
            tag_objects = self._replace_tags(tagged, tags)
            if citations is not None and not citations_same:
                self.replace_citations(citations)
            annotation_written.send(
                Annotation, annotation=self, tag_names=[t.name for t in tag_objects]
            )
        return True

    def delete_if_current(self, expected_version: int | None = None) -> None:
        """Delete the annotation with its tags, citations, revisions and search entry.

        With ``expected_version``, raise StaleAnnotation unless the stored version is still
        that one; raise AnnotationGone if it is already deleted. The version is checked on
        the locked row and the delete commits with the check, so an edit confirmed in between
        is never deleted unseen.
        """
        with transaction.atomic():
            # The annotation is locked before its tags and revisions, in the order
            # update_content takes them: Django deletes those rows first, and taking them in
            # the opposite order, PostgreSQL deadlocked an edit and a delete sent together.
            # (SQLite ignores FOR UPDATE; its transactions begin IMMEDIATE, holding the
            # write lock from the first read.)
            try:
                current = (
                    Annotation.objects.select_for_update()
                    .values_list("version", flat=True)
                    .get(pk=self.pk)
                )
            except Annotation.DoesNotExist:
                raise AnnotationGone("already deleted") from None
            if expected_version is not None and current != expected_version:
                raise StaleAnnotation(f"stored version is {current}")
            DeletedAnnotation.keep(self)
            self.delete()

    def replace_citations(self, citations: list[Citation]) -> None:
        """Keep these citations (built by ``Citation.build_all``) in place of the current ones."""
        with transaction.atomic():
            self.citations.all().delete()
            for position, citation in enumerate(citations):
                citation.annotation, citation.position = self, position
            Citation.objects.bulk_create(citations)

    @staticmethod
    def can_annotate(user, source: Source) -> bool:
        """Annotators, editors and owners of a collection holding the source, and its
        archiver, when it has a text layer to select passages of."""
        return source.has_text_layer and Annotation.may_write(user, source)

    @staticmethod
    def may_write(user, source: Source) -> bool:
        """Who may write on ``source``: annotators, editors and owners of a collection holding
        it, and its archiver. A note on the whole source needs no text layer (a scanned PDF
        is discussed too); a passage does."""
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
            # An archived collection takes no new annotations.
            Collection.objects.filter(sources=source, archived_at__isnull=True)
            .filter(Q(owner=user) | Q(memberships__user=user, memberships__role__in=writers))
            .order_by("title", "pk")
            .first()
        )

    @property
    def note_html(self) -> SafeString:
        """The note as HTML; its [@key] citations are links once ``link_note_keys`` ran."""
        return note_html(self.note, self.note_rendered, getattr(self, "note_keys", None))

    @property
    def etag(self) -> str:
        return f'"{self.uuid}-{self.version}"'

    @staticmethod
    def anchor(text: str, start: object, end: object, exact: str | None = None) -> dict:
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
    # What it cited, by identifier (see Citation.as_ref): no title or quote of a source, which
    # a later reader of the history may not be allowed to see.
    citations = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["annotation", "version"], name="one_revision_per_version"
            )
        ]

    def __str__(self) -> str:
        return f"Version {self.version} of annotation {self.annotation_id}"


class RestoreRefused(Exception):
    """A deleted annotation that cannot come back; the message says why, to its author."""


def _columns(obj: models.Model, skip: tuple[str, ...]) -> dict:
    return {
        f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if f.name not in skip
    }


def _from_columns(model: type[models.Model], columns: dict) -> dict:
    """``_columns`` back from JSON: dates and UUIDs parsed by their own fields."""
    fields = {f.attname: f for f in model._meta.concrete_fields}
    return {name: fields[name].to_python(value) for name, value in columns.items()}


class DeletedAnnotationQuerySet(models.QuerySet):
    def expired(self) -> DeletedAnnotationQuerySet:
        """Copies past their undo window, which nothing may restore any more."""
        return self.filter(deleted_at__lt=timezone.now() - DeletedAnnotation.UNDO_WINDOW)


class DeletedAnnotation(models.Model):
    """An annotation its author deleted, kept for ``UNDO_WINDOW`` so the delete can be undone.

    A soft delete would have every query that reads annotations (access, search, exports,
    counts) remember to skip the deleted ones; instead the row goes, as the W3C protocol
    expects (a GET after DELETE answers 404), and this copy can write it back whole: the same
    uuid, anchor, tags, citations, version and history. Past the window it is purged (by the
    next delete, and by the daily cleanup), so a delete is a delete.
    """

    UNDO_WINDOW = timedelta(minutes=10)

    uuid = models.UUIDField(unique=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="+")
    deleted_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The annotation's columns, tag names in order, its citations' and revisions' columns, and
    # the citations elsewhere that pointed at it (set to NULL by the delete).
    data = models.JSONField(encoder=DjangoJSONEncoder)

    objects = DeletedAnnotationQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Deleted annotation {self.uuid}"

    @classmethod
    def keep(cls, annotation: Annotation) -> DeletedAnnotation:
        """Copy an annotation about to be deleted; call it in the deleting transaction."""
        # Not its rendered note: save renders it again on restore.
        columns = _columns(
            annotation,
            skip=("id", "uuid", "author", "source", "note_rendered", "note_plain"),
        )
        tags = list(
            TaggedAnnotation.objects.filter(content_object_id=annotation.pk)
            .order_by("pk")
            .values_list("tag__name", flat=True)
        )
        citations = [
            _columns(c, skip=("id", "annotation"))
            for c in Citation.objects.filter(annotation=annotation).order_by("position")
        ]
        revisions = [
            _columns(r, skip=("id", "annotation"))
            for r in AnnotationRevision.objects.filter(annotation=annotation)
        ]
        cited_by = list(
            Citation.objects.filter(cited_annotation=annotation).values_list("pk", flat=True)
        )
        now = timezone.now()
        cls.objects.expired().delete()
        cls.objects.filter(uuid=annotation.uuid).delete()
        return cls.objects.create(
            uuid=annotation.uuid,
            author_id=annotation.author_id,
            source_id=annotation.source_id,
            deleted_at=now,
            data={
                "annotation": columns,
                "tags": tags,
                "citations": citations,
                "revisions": revisions,
                "cited_by": cited_by,
            },
        )

    @property
    def expired(self) -> bool:
        return timezone.now() - self.deleted_at > self.UNDO_WINDOW

    def restore(self, user) -> Annotation:
        """Write the annotation back as it was, its author being ``user``; raise
        RestoreRefused when it cannot come back."""
        if self.expired:
            raise RestoreRefused("The time to undo this delete has passed.")
        source = Source.objects.defer("text", "blocks").filter(pk=self.source_id).first()
        if source is None or not Annotation.can_annotate(user, source):
            raise RestoreRefused(
                "You can no longer annotate this source, so the annotation cannot come back."
            )
        fields = _from_columns(Annotation, self.data["annotation"])
        # The collection it was in, if it still takes annotations; else where the author's
        # new annotations on this source would go.
        was_in = fields.pop("collection_id")
        collection = (
            Collection.objects.filter(pk=was_in, archived_at__isnull=True, sources=source).first()
            if was_in
            else None
        )
        fields["collection"] = collection or Annotation.collection_for(user, source)
        quote = {name: fields.pop(name) for name in ("exact", "prefix", "suffix")}
        citations = [Citation(**_from_columns(Citation, c)) for c in self.data["citations"]]
        cited = {c.cited_annotation_id for c in citations if c.cited_annotation_id}
        present = set(Annotation.objects.filter(pk__in=cited).values_list("pk", flat=True))
        cited_sources = {c.source_id for c in citations if c.source_id}
        if len(set(Source.objects.filter(pk__in=cited_sources).values_list("pk", flat=True))) < len(
            cited_sources
        ):
            raise RestoreRefused("A source it cites was deleted, so it cannot come back.")
        for citation in citations:
            if citation.cited_annotation_id not in present:
                citation.cited_annotation_id = None  # as the delete of that one left it
        with transaction.atomic():
            # Under the lock of this copy, so that of two undos sent together one writes.
            if not DeletedAnnotation.objects.select_for_update().filter(pk=self.pk).exists():
                raise RestoreRefused("This annotation is already back.")
            annotation, _ = Annotation.write_anchored(
                quote,
                tags=self.data["tags"],
                citations=citations,
                uuid=self.uuid,
                source=source,
                author_id=self.author_id,
                **fields,
            )
            AnnotationRevision.objects.bulk_create(
                AnnotationRevision(annotation=annotation, **_from_columns(AnnotationRevision, r))
                for r in self.data["revisions"]
            )
            Citation.objects.filter(
                pk__in=self.data["cited_by"], cited_annotation__isnull=True
            ).update(cited_annotation=annotation)
            self.delete()
        return annotation


# --- Citations: what a note cites -----------------------------------------------------------

URL_MAX = 2000
DOI_IN_TEXT = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)", re.I)
MAX_CITATIONS = 100


class CitationError(ValueError):
    """A citation that cannot be kept; ``index`` is its position, ``field`` the culprit."""

    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.field = field
        self.message = message


class CitationSpec(TypedDict, total=False):
    """What a client asks to cite (from the API or the reading page's editor).

    Exactly one of ``source`` (a source's IRI, UUID or passage link), ``annotation`` (an
    annotation's IRI or UUID) or ``url``/``doi`` (an external reference).
    """

    source: str
    start: int | None
    end: int | None
    exact: str | None
    annotation: str
    url: str
    doi: str
    title: str
    creators: list[str]
    publisher: str
    date_published: str
    date_accessed: str
    reference_type: str
    locator: str
    locator_label: str
    comment: str


PASSAGE_PATH_RE = re.compile(
    r"/sources/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/"
    r"(?:passages/(\d+)-(\d+)/?)?",
    re.I,
)
UUID_ONLY_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def parse_source_ref(ref: str) -> tuple[str, int | None, int | None] | None:
    """A source's UUID (and passage offsets) from a UUID, its IRI or a passage link."""
    ref = ref.strip()
    if UUID_ONLY_RE.match(ref):
        return ref.lower(), None, None
    path = urlsplit(ref).path if "://" in ref else ref
    match = PASSAGE_PATH_RE.search(path)
    if not match:
        return None
    start = int(match.group(2)) if match.group(2) else None
    end = int(match.group(3)) if match.group(3) else None
    return match.group(1).lower(), start, end


def annotation_uuid_from_ref(ref: str) -> str | None:
    ref = ref.strip()
    if UUID_ONLY_RE.match(ref):
        return ref.lower()
    path = urlsplit(ref).path if "://" in ref else ref
    match = re.search(r"/(?:api/annotations/|annotations/)([0-9a-f-]{36})", path, re.I)
    if match is None:
        match = re.search(r"#a-([0-9a-f-]{36})$", ref, re.I)
    return match.group(1).lower() if match and UUID_ONLY_RE.match(match.group(1)) else None


def normalise_doi(value: str) -> str:
    """``10.1234/x`` from a bare DOI, ``doi:…`` or a doi.org link; raise ValidationError."""
    doi = DOI_IN_TEXT.sub("", value.strip())
    if not DOI_RE.match(doi) or len(doi) > 200:
        raise ValidationError(
            "A DOI looks like 10.1234/abc.def (a doi.org link or doi: prefix is fine too)."
        )
    return doi


def validate_web_url(value: str) -> str:
    """An absolute http(s) URL and nothing else: no javascript:, data:, file: or ftp:."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValidationError("The URL must start with http:// or https://.")
    if len(value) > URL_MAX:
        raise ValidationError(f"The URL is longer than {URL_MAX:,} characters.")
    URLValidator(schemes=["http", "https"])(value)
    return value


class CitationQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> CitationQuerySet:
        """Citations in annotations the user may read. What they cite may still be hidden
        from the user: ``for_display`` says so per row."""
        return self.filter(annotation__in=Annotation.objects.visible_to(user))

    def for_display(self, user: User | AnonymousUser | None) -> CitationQuerySet:
        """Targets joined in one query (never a text layer), each flagged ``target_visible``.

        With ``user=None`` (exports by the server itself) every target counts as visible.
        """
        rows = self.select_related("source", "cited_annotation", "cited_annotation__source").defer(
            "source__text",
            "source__blocks",
            "cited_annotation__source__text",
            "cited_annotation__source__blocks",
        )
        if user is None:
            return rows.annotate(
                source_visible=models.Value(True), cited_visible=models.Value(True)
            )
        return rows.annotate(
            source_visible=Exists(Source.objects.visible_to(user).filter(pk=OuterRef("source_id"))),
            cited_visible=Exists(
                Annotation.objects.visible_to(user).filter(pk=OuterRef("cited_annotation_id"))
            ),
        )

    def citing_source(
        self, source: Source, passage: tuple[int, int] | None = None
    ) -> CitationQuerySet:
        """Citations of ``source``; with ``passage``, those whose passage overlaps it."""
        rows = self.filter(kind=Citation.Kind.SOURCE, source=source)
        if passage is not None:
            rows = rows.filter(start__lt=passage[1], end__gt=passage[0])
        return rows

    def backlinks(self, user, source: Source, passage: tuple[int, int] | None = None) -> list:
        """ "Cited by" for a reading page: visible citing annotations, one query."""
        return list(
            self.citing_source(source, passage)
            .visible_to(user)
            .select_related("annotation__source", "annotation__author")
            .defer("annotation__source__text", "annotation__source__blocks")
            .order_by("annotation__source__title", "annotation__start", "position", "pk")
        )


class Citation(models.Model):
    """One thing an annotation cites: an archived source (or a passage of it), another
    annotation, or a reference outside the archive. ``position`` keeps the author's order."""

    class Kind(models.TextChoices):
        SOURCE = "source", "Archived source"
        ANNOTATION = "annotation", "Annotation"
        EXTERNAL = "external", "External reference"

    class LocatorLabel(models.TextChoices):
        PAGE = "page", "p."
        PARAGRAPH = "paragraph", "para."
        SECTION = "section", "sec."
        CHAPTER = "chapter", "ch."  # as the reading page marks an EPUB's chapters
        LINE = "line", "l."
        FOLIO = "folio", "fol."

    class ReferenceType(models.TextChoices):
        WEBPAGE = "webpage", "Web page"
        ARTICLE_JOURNAL = "article-journal", "Journal article"
        ARTICLE_NEWSPAPER = "article-newspaper", "Newspaper article"
        REPORT = "report", "Report"
        BOOK = "book", "Book"
        DOCUMENT = "document", "Other document"

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="citations")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)

    # An archived source, optionally narrowed to a passage (code points of its text layer).
    source = models.ForeignKey(
        Source, on_delete=models.PROTECT, null=True, blank=True, related_name="citations"
    )
    start = models.PositiveIntegerField(null=True, blank=True)
    end = models.PositiveIntegerField(null=True, blank=True)
    exact = models.TextField(blank=True)

    # Another annotation; if it is deleted, the citation says so rather than vanishing.
    cited_annotation = models.ForeignKey(
        Annotation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cited_by",
    )

    # A reference outside the archive.
    url = models.URLField("URL", max_length=URL_MAX, blank=True)
    doi = models.CharField("DOI", max_length=200, blank=True)
    title = models.CharField(max_length=500, blank=True)
    creators = models.JSONField(default=list, blank=True)
    publisher = models.CharField(max_length=300, blank=True)
    date_published = models.CharField(max_length=10, blank=True)
    date_accessed = models.DateField(null=True, blank=True)
    reference_type = models.CharField(
        max_length=20, choices=ReferenceType.choices, default=ReferenceType.WEBPAGE
    )

    # Any kind.
    locator = models.CharField(max_length=100, blank=True)
    locator_label = models.CharField(
        max_length=10, choices=LocatorLabel.choices, default=LocatorLabel.PAGE
    )
    comment = models.CharField(max_length=1000, blank=True)

    objects = CitationQuerySet.as_manager()

    class Meta:
        ordering = ["annotation", "position"]
        indexes = [models.Index(fields=["source", "start"])]
        constraints = [
            models.UniqueConstraint(
                fields=["annotation", "position"], name="one_citation_per_position"
            ),
            models.CheckConstraint(
                condition=~Q(kind="source") | Q(source__isnull=False),
                name="source_citation_has_source",
            ),
            models.CheckConstraint(
                condition=Q(start__isnull=True, end__isnull=True)
                | Q(start__isnull=False, end__gt=models.F("start")),
                name="citation_passage_not_empty",
            ),
            models.CheckConstraint(
                condition=~Q(kind="external") | ~Q(url="") | ~Q(doi=""),
                name="external_citation_has_url_or_doi",
            ),
        ]

    def __str__(self) -> str:
        return self.as_text()

    # --- Reading ---------------------------------------------------------------------------

    @property
    def is_passage(self) -> bool:
        return self.start is not None

    @property
    def locator_text(self) -> str:
        if not self.locator:
            return ""
        ranges = {"page": "pp.", "chapter": "chs."}
        if self.locator_label in ranges and re.search(r"\d\s*[–-]", self.locator):
            return f"{ranges[self.locator_label]} {self.locator}"  # a range of pages, chapters
        return f"{self.get_locator_label_display()} {self.locator}"

    @property
    def shown_locator(self) -> str:
        """The locator, unless it is the page of a passage the viewer may not see (filled in
        from that source's pages, it would tell them where the passage is). A locator the
        author typed is their words, shown like the comment. Reads ``source_visible``
        (``CitationQuerySet.for_display``)."""
        if not self.locator or getattr(self, "source_visible", True):
            return self.locator
        if self.kind == self.Kind.SOURCE and self.start is not None and self.end is not None:
            assert self.source is not None
            pages = self.source.text_divisions
            if self.locator_label == pages.unit and self.locator == pages.labels(
                self.start, self.end
            ):
                return ""
        return self.locator

    @property
    def external_href(self) -> str:
        return f"https://doi.org/{self.doi}" if self.doi else self.url

    def target_path(self) -> str:
        """Where the citation leads on this server (or the external IRI); "" if nowhere."""
        if self.kind == self.Kind.SOURCE:
            assert self.source is not None, "a source citation has a source (check constraint)"
            if self.is_passage:
                return reverse("annotations:passage", args=[self.source.uuid, self.start, self.end])
            return reverse("annotations:source_detail", args=[self.source.uuid])
        if self.kind == self.Kind.ANNOTATION:
            return self.cited_annotation.get_absolute_url() if self.cited_annotation else ""
        return self.external_href

    def as_text(self) -> str:
        """One line for a CSV cell or a revision: what is cited, with locator and comment.

        Server-side (exports): every target is named; hide what a reader may not see
        before calling it for them.
        """
        if self.kind == self.Kind.SOURCE:
            assert self.source is not None, "a source citation has a source (check constraint)"
            what = f"{self.source.title} [@{self.source.citation_key}]"
            if self.is_passage:
                quote = self.exact if len(self.exact) <= 80 else self.exact[:79] + "…"
                what += f", “{quote}” ({self.start}–{self.end})"
        elif self.kind == self.Kind.ANNOTATION:
            if self.cited_annotation is None:
                what = "a deleted annotation"
            else:
                what = f"annotation {self.cited_annotation.uuid}"
        else:
            names = "; ".join(self.creators)
            year = self.date_published[:4]
            what = ", ".join(p for p in (names, year, self.title) if p) or self.external_href
            what += f" <{self.external_href}>"
        parts = [what]
        if self.locator:
            parts.append(self.locator_text)
        if self.comment:
            parts.append(f"({self.comment})")
        return ", ".join(parts[:2]) + (f" {parts[2]}" if len(parts) > 2 else "")

    def as_ref(self) -> dict:
        """What is cited, by identifier only, in the shape ``Citation.build_all`` takes."""
        ref: dict = {"kind": self.kind}
        if self.kind == self.Kind.SOURCE:
            assert self.source is not None, "a source citation has a source (check constraint)"
            ref["source"] = str(self.source.uuid)
            if self.is_passage:
                ref["start"], ref["end"] = self.start, self.end
        elif self.kind == self.Kind.ANNOTATION:
            ref["annotation"] = str(self.cited_annotation.uuid) if self.cited_annotation else ""
        else:
            ref.update(
                {
                    "url": self.url,
                    "doi": self.doi,
                    "title": self.title,
                    "creators": self.creators,
                    "publisher": self.publisher,
                    "date_published": self.date_published,
                    "date_accessed": self.date_accessed.isoformat() if self.date_accessed else "",
                    "reference_type": self.reference_type,
                }
            )
        ref.update(
            {"locator": self.locator, "locator_label": self.locator_label, "comment": self.comment}
        )
        return ref

    def csl_json(self) -> dict:
        """A CSL-JSON item for an external reference (archived sources: archive.cite)."""
        if self.kind != self.Kind.EXTERNAL:
            raise ValueError("csl_json() is for external references; use archive.cite.csl_json.")
        from archive.cite import csl_date, csl_name

        item: dict = {"id": f"ref-{self.annotation_id}-{self.position}"}
        item["type"] = self.reference_type
        if self.title:
            item["title"] = self.title
        if self.creators:
            item["author"] = [csl_name(c) for c in self.creators]
        if self.date_published:
            item["issued"] = csl_date(self.date_published)
        if self.publisher:
            key = "container-title" if self.reference_type != "book" else "publisher"
            if self.reference_type == "report":
                key = "publisher"
            item[key] = self.publisher
        if self.doi:
            item["DOI"] = self.doi
        if self.url:
            item["URL"] = self.url
        if self.date_accessed:
            item["accessed"] = csl_date(self.date_accessed.isoformat())
        if self.comment:
            item["note"] = self.comment
        return item

    def same_as(self, other: Citation) -> bool:
        return self.content_key() == other.content_key()

    def content_key(self) -> tuple:
        return tuple(
            getattr(self, f)
            for f in (
                "kind",
                "source_id",
                "start",
                "end",
                "cited_annotation_id",
                "url",
                "doi",
                "title",
                "publisher",
                "date_published",
                "date_accessed",
                "reference_type",
                "locator",
                "locator_label",
                "comment",
            )
        ) + (tuple(self.creators),)

    # --- Writing ---------------------------------------------------------------------------

    @classmethod
    def build_all(
        cls,
        specs: list[CitationSpec],
        *,
        user,
        citing: Annotation | None = None,
    ) -> list[Citation]:
        """Validate what ``user`` asks to cite; unsaved citations, in order, or CitationError.

        Targets are looked up through ``visible_to(user)``: what the user cannot see cannot
        be cited (and the refusal does not say whether it exists). Two queries in all,
        however many citations.
        """
        if not isinstance(specs, list):
            raise CitationError(0, "citations", "Citations must be a list.")
        if len(specs) > MAX_CITATIONS:
            raise CitationError(
                MAX_CITATIONS, "citations", f"An annotation can cite at most {MAX_CITATIONS}."
            )
        source_refs: dict[int, tuple[str, int | None, int | None]] = {}
        annotation_refs: dict[int, str] = {}
        for i, spec in enumerate(specs):
            if not isinstance(spec, dict):
                raise CitationError(i, "citation", "Each citation must be an object.")
            # Typed by CitationSpec, but a client's JSON may hold values of any type.
            fields: Mapping[str, object] = spec
            kinds = [k for k in ("source", "annotation") if spec.get(k)]
            if spec.get("url") or spec.get("doi"):
                kinds.append("external")
            if len(kinds) != 1:
                raise CitationError(
                    i,
                    "citation",
                    "Cite exactly one thing: a source, an annotation, or a URL/DOI.",
                )
            if kinds == ["source"]:
                ref = fields["source"]
                parsed = parse_source_ref(ref) if isinstance(ref, str) else None
                if parsed is None:
                    raise CitationError(
                        i, "source", "source must be a source's UUID, IRI or passage link."
                    )
                source_refs[i] = parsed
            elif kinds == ["annotation"]:
                ref = fields["annotation"]
                uuid_ = annotation_uuid_from_ref(ref) if isinstance(ref, str) else None
                if uuid_ is None:
                    raise CitationError(i, "annotation", "annotation must be an IRI or UUID.")
                annotation_refs[i] = uuid_
        sources = {}
        if source_refs:
            # The text layer is needed to check passages; only for the sources cited.
            sources = {
                str(s.uuid): s
                for s in Source.objects.visible_to(user)
                .filter(uuid__in={ref[0] for ref in source_refs.values()})
                .defer("blocks")
            }
        annotations = {}
        if annotation_refs:
            annotations = {
                str(a.uuid): a
                for a in Annotation.objects.visible_to(user)
                .filter(uuid__in=set(annotation_refs.values()))
                .select_related("source")
                .defer("source__text", "source__blocks")
            }
        built = []
        for i, spec in enumerate(specs):
            citation = cls(position=i, annotation=citing)
            if i in source_refs:
                cls._fill_source(citation, i, spec, source_refs[i], sources)
            elif i in annotation_refs:
                target = annotations.get(annotation_refs[i])
                if target is None:
                    raise CitationError(i, "annotation", "No annotation you can see has that id.")
                if citing is not None and target.pk == citing.pk:
                    raise CitationError(i, "annotation", "An annotation cannot cite itself.")
                citation.kind = cls.Kind.ANNOTATION
                citation.cited_annotation = target
            else:
                cls._fill_external(citation, i, spec)
            cls._fill_common(citation, i, spec)
            built.append(citation)
        return built

    @classmethod
    def _fill_source(cls, citation: Citation, i: int, spec, ref, sources) -> None:
        uuid_, link_start, link_end = ref
        source = sources.get(uuid_)
        if source is None:
            raise CitationError(i, "source", "No source you can see has that IRI.")
        citation.kind = cls.Kind.SOURCE
        citation.source = source
        start, end = spec.get("start"), spec.get("end")
        if start is None and end is None:
            start, end = link_start, link_end
        exact = spec.get("exact")
        if start is None and end is None and exact:
            try:
                start, end = Annotation.locate_quote(
                    source.text, exact, spec.get("prefix"), spec.get("suffix")
                )
            except AnchorError as exc:
                raise CitationError(i, "exact", exc.message) from None
        if start is None and end is None:
            return
        if start is None or end is None:
            raise CitationError(i, "start", "Give both start and end of the cited passage.")
        try:
            quote = Annotation.anchor(source.text, start, end, exact or None)
        except AnchorError as exc:
            raise CitationError(i, exc.field, f"Cited passage: {exc.message}") from None
        citation.start, citation.end, citation.exact = start, end, quote["exact"]

    @classmethod
    def _fill_external(cls, citation: Citation, i: int, spec) -> None:
        citation.kind = cls.Kind.EXTERNAL
        for name, limit in (
            ("title", 500),
            ("publisher", 300),
            ("url", URL_MAX),
            ("doi", 300),
            ("date_published", 10),
            ("date_accessed", 10),
            ("reference_type", 20),
        ):
            value = spec.get(name, "")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise CitationError(i, name, f"{name} must be a string.")
            if len(value) > limit:
                raise CitationError(i, name, f"{name} is longer than {limit} characters.")
        try:
            if spec.get("url"):
                citation.url = validate_web_url(spec["url"])
            if spec.get("doi"):
                citation.doi = normalise_doi(spec["doi"])
        except ValidationError as exc:
            field = "url" if spec.get("url") and not citation.url else "doi"
            raise CitationError(i, field, exc.messages[0]) from None
        citation.title = (spec.get("title") or "").strip()
        citation.publisher = (spec.get("publisher") or "").strip()
        creators = spec.get("creators") or []
        if isinstance(creators, str):
            creators = [c.strip() for c in creators.split(";")]
        if not isinstance(creators, list) or not all(isinstance(c, str) for c in creators):
            raise CitationError(i, "creators", "creators must be a list of names.")
        creators = [c.strip()[:300] for c in creators if c.strip()]
        if len(creators) > 100:
            raise CitationError(i, "creators", "At most 100 creators.")
        citation.creators = creators
        published = (spec.get("date_published") or "").strip()
        try:
            validate_date_published(published)
        except ValidationError as exc:
            raise CitationError(i, "date_published", exc.messages[0]) from None
        citation.date_published = published
        accessed = (spec.get("date_accessed") or "").strip()
        if accessed:
            try:
                citation.date_accessed = date.fromisoformat(accessed)
            except ValueError:
                raise CitationError(
                    i, "date_accessed", "Write the access date as YYYY-MM-DD."
                ) from None
        kind = spec.get("reference_type") or cls.ReferenceType.WEBPAGE
        if kind not in cls.ReferenceType.values:
            raise CitationError(
                i,
                "reference_type",
                f"reference_type must be one of {', '.join(cls.ReferenceType.values)}.",
            )
        citation.reference_type = kind

    @classmethod
    def _fill_common(cls, citation: Citation, i: int, spec) -> None:
        for name, limit in (("locator", 100), ("comment", 1000), ("locator_label", 10)):
            value = spec.get(name) or ""
            if not isinstance(value, str):
                raise CitationError(i, name, f"{name} must be a string.")
            if len(value) > limit:
                raise CitationError(i, name, f"The {name} is longer than {limit} characters.")
        citation.locator = (spec.get("locator") or "").strip()
        citation.comment = (spec.get("comment") or "").strip()
        label = spec.get("locator_label") or cls.LocatorLabel.PAGE
        if label not in cls.LocatorLabel.values:
            raise CitationError(
                i,
                "locator_label",
                f"locator_label must be one of {', '.join(cls.LocatorLabel.values)}.",
            )
        citation.locator_label = label
        if not citation.locator and citation.kind == cls.Kind.SOURCE and citation.is_passage:
            # A passage of a paged source is cited by its page unless the person said where.
            assert citation.source is not None and citation.start is not None
            pages = citation.source.text_divisions
            assert citation.end is not None
            citation.locator = pages.labels(citation.start, citation.end)
            if citation.locator:
                citation.locator_label = pages.unit


def tags_and_citations(pks: Sequence[int], viewer) -> dict[int, tuple[list[TagRef], list]]:
    """The tags and citations of the annotations ``pks``, by primary key, in a query or two
    (Django's prefetch builds a queryset per annotation for each relation, taggit's for the
    tags, which was most of the time of a page of the API and of an export: bench/NOTES.md).

    Tags keep the order they were added in, as everywhere else. Citations are flagged with
    what ``viewer`` may see of their targets, as ``with_related`` flags them (``viewer=None``:
    every target visible); most annotations cite nothing, and those flags (two subqueries of
    the visibility rules, dearer to build than the rest of a page's queries) are worked out
    only when some of these do.
    """
    found: dict[int, tuple[list[TagRef], list]] = {pk: ([], []) for pk in pks}
    if not found:
        return found
    tagged = (
        TaggedAnnotation.objects.filter(content_object_id__in=pks)
        .order_by("pk")
        .values_list("content_object_id", "tag__name", "tag__slug")
    )
    for pk, name, slug in tagged:
        found[pk][0].append(TagRef(name, slug))
    citations = Citation.objects.filter(annotation_id__in=pks)
    if citations.exists():
        for citation in citations.for_display(viewer).order_by("annotation_id", "position"):
            found[citation.annotation_id][1].append(citation)
    return found


def attach_tags_and_citations(annotations: Sequence[Annotation], viewer) -> None:
    """Load the tags and citations of ``annotations`` (``tags_and_citations``) where
    ``tags.all()`` and ``citations.all()`` find them: the cache prefetch_related fills."""
    found = tags_and_citations([a.pk for a in annotations], viewer)
    for annotation in annotations:
        tags, cited = found[annotation.pk]
        cache = {"tags": tags, "citations": cited}
        annotation._prefetched_objects_cache = cache  # type: ignore[attr-defined]


class ContentRevision(models.Model):
    """One row: a number that grows whenever anything a reading page shows may have changed.

    Database triggers (annotations migration 0008) bump it on every write to the tables of
    archive, annotations and taggit, and to a user's name or standing, so no way of writing
    (a view, the admin, ``QuerySet.update``, an import, raw SQL) can forget to; and it moves
    in the writer's own transaction. The reading page's cache is keyed by it
    (annotations.reading).
    """

    number = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"content revision {self.number}"

    @classmethod
    def current(cls) -> int | None:
        """The number now; None when the row is missing (a flushed database) until the next
        write makes it again."""
        # Speed device (bench/NOTES.md): read on every reading page, where building the
        # ORM's statement took longer than running it.
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT number FROM {cls._meta.db_table} WHERE id = 1")  # noqa: S608
            row = cursor.fetchone()
        return None if row is None else row[0]


# --- The codebook ------------------------------------------------------------------------
# Tags are global (taggit's Tag); a collection's codebook gives some of them a meaning there:
# a description, a colour, a parent. A tag used in a collection but not in its codebook is a
# personal tag. Curating a codebook changes only that collection's passages: a tag that other
# collections use keeps its name and page for them.


class CodeColour(NamedTuple):
    label: str
    # The highlight's tint behind body text (#1f2328): contrast at least 7:1 (WCAG AAA).
    background: str
    # Its underline and the tag's swatch against the white page: at least 3:1 (WCAG 1.4.11).
    border: str


CODE_COLOURS: dict[str, CodeColour] = {
    "amber": CodeColour("Amber", "#fde68a", "#b45309"),
    "green": CodeColour("Green", "#bbf7d0", "#15803d"),
    "teal": CodeColour("Teal", "#99f6e4", "#0f766e"),
    "blue": CodeColour("Blue", "#bfdbfe", "#1d4ed8"),
    "purple": CodeColour("Purple", "#e9d5ff", "#7e22ce"),
    "pink": CodeColour("Pink", "#fbcfe8", "#be185d"),
    "red": CodeColour("Red", "#fecaca", "#b91c1c"),
    "grey": CodeColour("Grey", "#e5e7eb", "#4b5563"),
}


def validate_code_colour(value: str) -> None:
    if value and value not in CODE_COLOURS:
        raise ValidationError(
            f"“{value}” is not one of the codebook's colours ({', '.join(CODE_COLOURS)})."
        )


class CodebookError(Exception):
    """A codebook change that cannot be made; the message says why, in words for the curator."""


class CodeQuerySet(models.QuerySet):
    def of(self, collection: Collection) -> CodeQuerySet:
        return self.filter(collection=collection).select_related("tag")

    def with_counts(self, user: User | AnonymousUser) -> CodeQuerySet:
        """Each code with ``passage_count``: how many of its collection's annotations that
        ``user`` may read carry it (a count of others' private passages would tell of them)."""
        carried = TaggedAnnotation.objects.filter(
            tag=OuterRef("tag"),
            content_object__collection=OuterRef("collection"),
            content_object__in=Annotation.objects.visible_to(user).values("pk"),
        )
        return self.annotate(
            passage_count=models.Subquery(
                carried.order_by().values("tag").annotate(n=models.Count("pk")).values("n")[:1],
                output_field=models.IntegerField(),
            )
        )


class Code(models.Model):
    # with_counts() sets it.
    passage_count: int | None

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="codes")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="codes")
    description = models.TextField(blank=True)
    colour = models.CharField(max_length=12, blank=True, validators=[validate_code_colour])
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CodeQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["collection", "tag"], name="one_code_per_tag")
        ]

    def __str__(self) -> str:
        return f"{self.tag.name} in {self.collection_id}"

    @property
    def name(self) -> str:
        return self.tag.name

    @property
    def colour_label(self) -> str:
        return CODE_COLOURS[self.colour].label if self.colour else ""

    # --- Reading -----------------------------------------------------------------------

    @staticmethod
    def tree(codes: Sequence[Code]) -> list[tuple[Code, int]]:
        """``codes`` (one collection's, all of them) depth first, each with its depth;
        siblings by name. No queries: the parent of each is found among ``codes``."""
        children: dict[int | None, list[Code]] = {}
        for code in codes:
            children.setdefault(code.parent_id, []).append(code)
        for siblings in children.values():
            siblings.sort(key=lambda c: c.tag.name.casefold())
        out: list[tuple[Code, int]] = []
        names = {code.pk: code.tag.name for code in codes}

        def walk(parent: int | None, depth: int) -> None:
            for code in children.get(parent, []):
                # For a list of options, where only spaces can show the depth.
                code.indent = "\u2003" * depth  # type: ignore[attr-defined]
                code.parent_name = names.get(parent) if parent else ""  # type: ignore[attr-defined]
                out.append((code, depth))
                walk(code.pk, depth + 1)

        walk(None, 0)
        return out

    def passages(
        self, user: User | AnonymousUser | None = None
    ) -> models.QuerySet[TaggedAnnotation]:
        """The rows that tag this collection's annotations with this code's tag; with
        ``user``, only those on annotations ``user`` may read.

        A curator's rename, merge or delete changes only those: passages that members keep
        private keep their tag (then one of their own, outside the codebook), for a curator
        may not change, nor learn of, what they cannot read.
        """
        rows = TaggedAnnotation.objects.filter(
            tag_id=self.tag_id, content_object__collection_id=self.collection_id
        )
        if user is not None:
            rows = rows.filter(content_object__in=Annotation.objects.visible_to(user).values("pk"))
        return rows

    # --- Curating (every change is recorded in the collection's history) ----------------
    # The history says what changed, not on how many passages: whoever reads the codebook
    # reads it, and may read fewer of the collection's passages than the curator did.

    @classmethod
    def add(
        cls,
        collection: Collection,
        name: str,
        *,
        actor=None,
        description: str = "",
        colour: str = "",
        parent: Code | None = None,
    ) -> Code:
        """Put a tag (made if no tag has that name yet) in the collection's codebook."""
        name = _checked_tag_name(name)
        validate_code_colour(colour)
        if parent is not None and parent.collection_id != collection.pk:
            raise CodebookError("The parent must be a code of the same codebook.")
        with transaction.atomic():
            tag = Tag.objects.filter(name__iexact=name).first() or Tag.objects.create(name=name)
            if cls.objects.filter(collection=collection, tag=tag).exists():
                raise CodebookError(f"“{tag.name}” is already in this codebook.")
            code = cls.objects.create(
                collection=collection,
                tag=tag,
                description=description.strip(),
                colour=colour,
                parent=parent,
            )
            code._record(actor, "code_added", f"added the code “{tag.name}”")
        return code

    def edit(self, *, actor=None, description: str, colour: str, parent: Code | None) -> list[str]:
        """Change what the code says; return what changed (empty: nothing did)."""
        validate_code_colour(colour)
        self.check_parent(parent)
        changed = []
        if description.strip() != self.description:
            changed.append("description")
        if colour != self.colour:
            changed.append("colour")
        if (parent.pk if parent else None) != self.parent_id:
            changed.append("parent")
        if not changed:
            return changed
        with transaction.atomic():
            self.check_not_busy()
            self.description, self.colour, self.parent = description.strip(), colour, parent
            self.save(update_fields=["description", "colour", "parent"])
            where = f", now under “{parent.tag.name}”" if parent else ""
            if "parent" in changed and parent is None:
                where = ", now at the top"
            self._record(
                actor,
                "code_changed",
                f"changed the {' and '.join(changed)} of the code “{self.tag.name}”{where}",
            )
        return changed

    def check_parent(self, parent: Code | None) -> None:
        if parent is None:
            return
        if parent.collection_id != self.collection_id:
            raise CodebookError("The parent must be a code of the same codebook.")
        # Walk up from the new parent: reaching this code would make a loop.
        parents = dict(
            Code.objects.filter(collection_id=self.collection_id).values_list("pk", "parent_id")
        )
        seen: set[int] = set()
        step: int | None = parent.pk
        while step is not None and step not in seen:
            if step == self.pk:
                raise CodebookError(
                    f"“{parent.tag.name}” is under “{self.tag.name}”: a code cannot be placed "
                    "under itself or one of its own sub-codes."
                )
            seen.add(step)
            step = parents.get(step)

    def rename(self, new_name: str, *, actor=None) -> int:
        """Give the code a new name; the collection's passages follow. Return how many.

        The tag's old page redirects to the new one once no passage anywhere carries the old
        tag; a tag other collections still use keeps its name and page for them.
        """
        new_name = _checked_tag_name(new_name)
        old = self.tag
        if new_name == old.name:
            return 0
        with transaction.atomic():
            self.check_not_busy()
            target = self.rename_target(new_name)
            if target is None and new_name.casefold() == old.name.casefold():
                old_name, old.name = old.name, new_name
                old.save(update_fields=["name"])
                moved = self.passages(actor).count()
                _reindex(self.passages().values_list("content_object_id", flat=True))
                self._record(
                    actor,
                    "code_renamed",
                    f"renamed the code “{old_name}” to “{new_name}”",
                )
                return moved
            new = target or _new_tag(new_name)
            moved = _move_passages(self.passages(actor), new, actor)
            self.tag = new
            self.save(update_fields=["tag"])
            self._renamed(old, actor)
        return moved

    def rename_target(self, new_name: str) -> Tag | None:
        """The tag that already has ``new_name`` (None if none but this code's own, whose
        name then changes only in case). Raises CodebookError if the rename may not be made."""
        old = self.tag
        target = Tag.objects.filter(name__iexact=new_name).exclude(pk=old.pk).first()
        if target and Code.objects.filter(collection_id=self.collection_id, tag=target):
            raise CodebookError(
                f"“{target.name}” is already in this codebook: merge the two instead."
            )
        # Only the case changes, and tags ignore case: the tag itself is renamed (its slug,
        # and so its page's address, stays), which other collections would see.
        case_only = target is None and new_name.casefold() == old.name.casefold()
        if case_only and (old.codes.exclude(pk=self.pk).exists() or _carried_elsewhere(self)):
            raise CodebookError(
                f"“{old.name}” is used outside this collection too, where its name "
                "stays; give it a name that differs by more than capital letters."
            )
        return target

    def _renamed(self, old: Tag, actor) -> None:
        """What follows once the passages carry the code's new tag."""
        _retire(old, self.tag)
        self._record(
            actor,
            "code_renamed",
            f"renamed the code “{old.name}” to “{self.tag.name}”",
        )

    def merge(self, other: Code, *, actor=None) -> int:
        """Merge ``other`` into this code, which survives: ``other``'s passages in the
        collection take this code's tag, its sub-codes come under this one, and it leaves
        the codebook. Return how many passages it carried."""
        if other.collection_id != self.collection_id or other.pk == self.pk:
            raise CodebookError("Choose two different codes of the same codebook to merge.")
        with transaction.atomic():
            self.check_not_busy()
            other.check_not_busy()
            moved = _move_passages(other.passages(actor), self.tag, actor)
            self._absorb(other, actor)
        return moved

    def _absorb(self, other: Code, actor) -> None:
        """What follows once ``other``'s passages carry this code's tag: its sub-codes
        come under this one, and it leaves the codebook. In the caller's transaction."""
        if self.parent_id == other.pk:
            self.parent_id = other.parent_id
            self.save(update_fields=["parent"])
        other.children.exclude(pk=self.pk).update(parent=self)
        if not self.description and other.description:
            self.description = other.description
            self.save(update_fields=["description"])
        old = other.tag
        other.delete()
        _retire(old, self.tag)
        self._record(
            actor,
            "codes_merged",
            f"merged the code “{old.name}” into “{self.tag.name}”",
        )

    def remove(self, *, actor=None) -> int:
        """Take the code out of the codebook and its tag off the collection's passages;
        its sub-codes move up a level. Return from how many passages it was removed."""
        with transaction.atomic():
            self.check_not_busy()
            removed = _untag_passages(self.passages(actor), actor)
            self._take_out(actor)
        return removed

    def _take_out(self, actor) -> None:
        """What follows once the code's tag is off the passages: its sub-codes move up a
        level and it leaves the codebook. In the caller's transaction."""
        self.children.update(parent=self.parent_id)
        old = self.tag
        self.delete()
        _retire(old, None)
        Code._record_for(
            self.collection_id,
            actor,
            "code_deleted",
            f"deleted the code “{old.name}”",
        )

    def check_not_busy(self) -> None:
        """Refuse a change while the worker changes this code (CodebookJob)."""
        job = CodebookJob.objects.active().touching(self).first()
        if job is not None:
            # An admin's change may name a tag only other collections use: it is not named.
            change = "by an administrator, in every collection" if job.everywhere else job.change
            raise CodebookError(
                f"“{self.tag.name}” is being changed in the background ({change}); "
                "change it again once that is done."
            )

    def _record(self, actor, kind: str, detail: str) -> None:
        Code._record_for(self.collection_id, actor, kind, detail)

    @staticmethod
    def _record_for(collection_id: int, actor, kind: str, detail: str) -> None:
        from archive.models import CollectionEvent

        CollectionEvent.objects.create(
            collection_id=collection_id, kind=kind, actor=actor, detail=detail[:500]
        )


# --- Codebook changes too large for a request, made by the worker ---------------------------

CODEBOOK_JOB_STOPPED = (
    "The change stopped before it was complete, because the worker making it was stopped (for"
    " example by a server restart). What it did is kept: try again to finish it."
)
CODEBOOK_UNEXPECTED_ERROR = (
    "The change could not be completed because of an unexpected error; the administrators"
    " have been told. The passages changed so far keep their new tags."
)
NO_LONGER_CURATOR = "you may no longer change this collection's codebook"
NO_LONGER_STAFF = "you may no longer change tags in the admin"
# How long the codebook page lists a finished change.
CODEBOOK_JOBS_SHOWN = timedelta(days=1)


class _Superseded(Exception):
    """This run is no longer the job's current one (it was retried): stop, changing nothing."""


class CodebookJobQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> CodebookJobQuerySet:
        """Only the curator who asked, while they may read the collection: the page counts
        the passages they may read, and another curator may read fewer."""
        if not user.is_authenticated:
            return self.none()
        # An admin's change of a tag everywhere has no collection: it is followed in the admin.
        return self.filter(user=user, collection__in=Collection.objects.visible_to(user))

    def active(self) -> CodebookJobQuerySet:
        """Queued or running (a stopped run too: it holds its codes until it is tried again)."""
        return self.filter(state__in=[CodebookJob.State.QUEUED, CodebookJob.State.RUNNING])

    def touching(self, code: Code) -> CodebookJobQuerySet:
        # An admin's change of a tag everywhere holds every code with that tag.
        everywhere = Q(collection__isnull=True) & (Q(from_tag=code.tag_id) | Q(to_tag=code.tag_id))
        return self.filter(Q(code=code) | Q(other=code) | everywhere)

    def on_tags(self, tags: Iterable[Tag]) -> CodebookJobQuerySet:
        """Jobs changing the passages of any of ``tags``, or moving passages onto one."""
        pks = [tag.pk for tag in tags]
        return self.filter(Q(from_tag__in=pks) | Q(to_tag__in=pks))

    def for_codebook(self, collection: Collection, limit: int = 10) -> CodebookJobQuerySet:
        """The collection's changes under way, then those finished lately."""
        recent = timezone.now() - CODEBOOK_JOBS_SHOWN
        under_way = Q(state__in=[CodebookJob.State.QUEUED, CodebookJob.State.RUNNING])
        return (
            self.filter(collection=collection)
            .filter(under_way | Q(finished_at__gte=recent))
            .order_by(models.Case(models.When(under_way, then=0), default=1), "-created_at", "-id")
            .select_related("user")[:limit]
        )


class CodebookJob(Job):
    """A rename, merge or delete of a code carried by more passages than a request can
    retag (SCHOLION_CODEBOOK_INLINE_PASSAGES), made by the worker in batches.

    Each batch is a transaction of its own that also records how far the job has got
    (``cursor``): a run killed mid-batch leaves that batch undone, and the next run begins
    after the last batch committed, so no passage is changed twice. The codebook's own
    change (the code's new tag, the merged or deleted code leaving) is made once, at the
    end, in the transaction that marks the job done.

    Without a collection, it is the admin's rename or merge of a tag everywhere (TagAdmin):
    every passage changes, and its requester must stay on the staff.
    """

    class Action(models.TextChoices):
        RENAME = "rename", "Rename"
        MERGE = "merge", "Merge"
        DELETE = "delete", "Delete"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="codebook_jobs"
    )
    # None: an admin's rename or merge of a tag everywhere (TagAdmin), not one codebook's.
    collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    action = models.CharField(max_length=6, choices=Action.choices)
    # The code renamed or deleted, or the one that survives a merge.
    code = models.ForeignKey(Code, null=True, on_delete=models.SET_NULL, related_name="+")
    # A merge: the code merged into ``code``.
    other = models.ForeignKey(
        Code, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The tag whose passages change, and (a rename once begun, a merge) the tag they take.
    from_tag = models.ForeignKey(Tag, null=True, on_delete=models.SET_NULL, related_name="+")
    to_tag = models.ForeignKey(
        Tag, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    old_name = models.CharField(max_length=100)
    new_name = models.CharField(max_length=100, blank=True)
    # Passages the requester could read when they asked, and those changed so far.
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    # The last annotation whose passage was dealt with (annotations in order of their id).
    cursor = models.PositiveBigIntegerField(default=0)
    summary = models.CharField(max_length=700, blank=True)

    objects = CodebookJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["collection", "state"], name="codebookjob_collection")]

    def __str__(self) -> str:
        return f"{self.change} ({self.get_state_display().lower()})"

    def get_absolute_url(self) -> str:
        return reverse("annotations:codebook_job", args=[self.uuid])

    @property
    def change(self) -> str:
        """The change in words, as the codebook's curators may read it."""
        if self.everywhere:
            if self.action == self.Action.RENAME:
                return f"renaming the tag “{self.old_name}” to “{self.new_name}” everywhere"
            return f"merging the tag “{self.old_name}” into “{self.new_name}” everywhere"
        if self.action == self.Action.RENAME:
            return f"renaming “{self.old_name}” to “{self.new_name}”"
        if self.action == self.Action.MERGE:
            return f"merging “{self.old_name}” into “{self.new_name}”"
        return f"deleting “{self.old_name}”"

    @property
    def everywhere(self) -> bool:
        return self.collection_id is None

    # --- Asking ---------------------------------------------------------------------------

    @staticmethod
    def needed_for(passages: int | None) -> bool:
        """Whether a change to this many passages is too long to make within a request."""
        return (passages or 0) > settings.SCHOLION_CODEBOOK_INLINE_PASSAGES

    @classmethod
    def submit_rename(cls, code: Code, new_name: str, *, actor) -> CodebookJob:
        new_name = _checked_tag_name(new_name)
        code.rename_target(new_name)  # refused now rather than on the worker
        return cls._submit(
            actor, code, action=cls.Action.RENAME, from_tag=code.tag, new_name=new_name
        )

    @classmethod
    def submit_merge(cls, survivor: Code, merged: Code, *, actor) -> CodebookJob:
        if merged.collection_id != survivor.collection_id or merged.pk == survivor.pk:
            raise CodebookError("Choose two different codes of the same codebook to merge.")
        return cls._submit(
            actor,
            survivor,
            action=cls.Action.MERGE,
            other=merged,
            from_tag=merged.tag,
            to_tag=survivor.tag,
            old_name=merged.tag.name,
            new_name=survivor.tag.name,
            total=merged.passage_count or 0,
        )

    @classmethod
    def submit_delete(cls, code: Code, *, actor) -> CodebookJob:
        return cls._submit(actor, code, action=cls.Action.DELETE, from_tag=code.tag)

    @classmethod
    def _submit(cls, actor, code: Code, **fields) -> CodebookJob:
        fields.setdefault("old_name", code.tag.name)
        fields.setdefault("total", code.passage_count or 0)
        with transaction.atomic():
            # Locked, so that two requests cannot both find the codes free and both queue.
            codes = [code, *([fields["other"]] if "other" in fields else [])]
            list(Code.objects.select_for_update().filter(pk__in=[c.pk for c in codes]))
            for each in codes:
                each.check_not_busy()
            job = cls.objects.create(
                user=actor, collection_id=code.collection_id, code=code, **fields
            )
            transaction.on_commit(job.enqueue)
        return job

    @classmethod
    def submit_tag_merge(cls, survivor: Tag, others: Sequence[Tag], *, actor) -> list[CodebookJob]:
        """The admin's merge of ``others`` into ``survivor`` everywhere, one job per tag merged
        (merge_tags_everywhere, made in batches)."""
        with transaction.atomic():
            tags = [survivor, *others]
            # Locked, so that two requests cannot both find the tags free and both queue.
            list(Tag.objects.select_for_update().filter(pk__in=[t.pk for t in tags]))
            check_tags_free(tags)
            jobs = [
                cls.objects.create(
                    user=actor,
                    action=cls.Action.MERGE,
                    from_tag=other,
                    to_tag=survivor,
                    old_name=other.name,
                    new_name=survivor.name,
                    total=TaggedAnnotation.objects.filter(tag=other).count(),
                )
                for other in others
                if other.pk != survivor.pk
            ]
            for job in jobs:
                transaction.on_commit(job.enqueue)
        return jobs

    @classmethod
    def submit_tag_reindex(cls, tag: Tag, old_name: str, *, actor) -> CodebookJob:
        """The admin renamed ``tag`` (already saved): its passages are indexed again under the
        new name in batches. Call it in the transaction that renames the tag."""
        job = cls.objects.create(
            user=actor,
            action=cls.Action.RENAME,
            from_tag=tag,
            to_tag=tag,
            old_name=old_name,
            new_name=tag.name,
            total=TaggedAnnotation.objects.filter(tag=tag).count(),
        )
        transaction.on_commit(job.enqueue)
        return job

    def enqueue(self) -> None:
        from annotations.tasks import run_codebook_job  # the task module imports this one

        run_codebook_job.enqueue(str(self.uuid), self.attempt)

    # --- What the requester sees ----------------------------------------------------------

    @property
    def progress_text(self) -> str:
        return f"{self.done:,} of {max(self.total, self.done):,} passages"

    @property
    def status_text(self) -> str:
        if self.stalled:
            return CODEBOOK_JOB_STOPPED
        if self.state == self.State.QUEUED:
            return "Waiting for the worker to start it."
        if self.state == self.State.RUNNING:
            # A run tried again shows how far the last one got until its first batch.
            return self.progress or (self.progress_text if self.done else "Starting.")
        if self.state == self.State.DONE:
            return self.summary
        return self.error

    def status(self) -> dict[str, Any]:
        return {
            "state": self.display_state,
            "label": self.status_label,
            "text": self.status_text,
            "finished": self.finished,
        }

    # --- What the worker does (annotations.tasks) -----------------------------------------

    def run(self) -> None:
        """Make the change, batch by batch, as its requester; CodebookError says why not."""
        try:
            self._check_permission()
            self._begin()
            while self._next_batch():
                self._check_permission()
            if self._merged_away_behind_cursor():
                # A passage given the merged tag meanwhile, behind the cursor: one more pass
                # (over these few only: the rest no longer carry it) so the tag can go.
                with transaction.atomic():
                    self._record_run(cursor=0)
                while self._next_batch():
                    self._check_permission()
            self._complete()
        except _Superseded:
            return

    def _merged_away_behind_cursor(self) -> bool:
        if not self.everywhere or self.from_tag_id in (None, self.to_tag_id):
            return False
        return TaggedAnnotation.objects.filter(
            tag_id=self.from_tag_id, content_object_id__lte=self.cursor
        ).exists()

    def _check_permission(self) -> None:
        if self.everywhere:
            self._check_still_staff()
            return
        # The requester may have lost the role (or the collection been archived) meanwhile.
        if not Collection.objects.writable_by(self.user).filter(pk=self.collection_id).exists():
            if self.done:
                raise CodebookError(
                    f"Stopped after {self.progress_text}: {NO_LONGER_CURATOR}. The passages "
                    "changed so far keep their new tags."
                )
            raise CodebookError(f"Nothing was changed: {NO_LONGER_CURATOR}.")

    def _check_still_staff(self) -> None:
        # Read afresh: the requester may have left the staff (or lost the permission) meanwhile.
        user = (
            type(self.user)
            ._default_manager.filter(pk=self.user_id, is_active=True, is_staff=True)
            .first()
        )
        if user is None or not user.has_perm("taggit.change_tag"):
            if self.done:
                raise CodebookError(
                    f"Stopped after {self.progress_text}: {NO_LONGER_STAFF}. The passages "
                    "changed so far keep their new tags."
                )
            raise CodebookError(f"Nothing was changed: {NO_LONGER_STAFF}.")

    def _code(self, pk: int | None) -> Code:
        code = Code.objects.select_related("tag").filter(pk=pk).first() if pk else None
        if code is None or self.from_tag_id is None:
            raise CodebookError(
                f"Nothing more was changed: the code is no longer in the codebook"
                f" ({self.progress_text} were changed)."
            )
        return code

    def _record_run(self, **changes: Any) -> None:
        """Record on this run's row, in the caller's transaction; a run retried meanwhile
        rolls back what it did instead."""
        if not self._this_run().filter(state=self.State.RUNNING).update(**changes):
            raise _Superseded
        for name, value in changes.items():
            setattr(self, name, value)

    def _begin(self) -> None:
        """A rename, first time: the code takes its new tag (a case-only rename renames the
        tag itself), so the codebook shows the new name while the passages follow."""
        if self.action != self.Action.RENAME or self.to_tag_id is not None:
            return
        with transaction.atomic():
            code = self._code(self.code_id)
            new_name = _checked_tag_name(self.new_name)
            target = code.rename_target(new_name)
            old = code.tag
            if target is None and new_name.casefold() == old.name.casefold():
                old.name = new_name
                old.save(update_fields=["name"])
                self._record_run(to_tag_id=old.pk)
                return
            new = target or _new_tag(new_name)
            code.tag = new
            code.save(update_fields=["tag"])
            self._record_run(to_tag_id=new.pk)

    def _next_batch(self) -> bool:
        """Change the next SCHOLION_CODEBOOK_BATCH_PASSAGES passages; False once none are
        left. Of each batch, only the passages the requester may read change (those kept
        private by others keep their tag, as inline); a case-only rename indexes all again."""
        rows = TaggedAnnotation.objects.filter(tag_id=self.from_tag_id)
        if not self.everywhere:
            rows = rows.filter(content_object__collection_id=self.collection_id)
        with transaction.atomic():
            if self.everywhere and self.to_tag_id != self.from_tag_id:
                # Several merges into one tag take turns, so that a passage carrying two of
                # the merged tags cannot be given the survivor twice.
                list(Tag.objects.select_for_update().filter(pk=self.to_tag_id))
            batch = list(
                rows.filter(content_object_id__gt=self.cursor)
                .order_by("content_object_id")
                .values_list("content_object_id", flat=True)[
                    : settings.SCHOLION_CODEBOOK_BATCH_PASSAGES
                ]
            )
            if not batch:
                return False
            readable = rows.filter(content_object_id__in=batch)
            if not self.everywhere:
                # The admin's change reaches every passage, as it does when made at once.
                readable = readable.filter(
                    content_object__in=Annotation.objects.visible_to(self.user).values("pk")
                )
            if self.action == self.Action.DELETE:
                changed = _untag_passages(readable, self.user)
            elif self.to_tag_id == self.from_tag_id:
                changed = readable.count()
                _reindex(batch)
            else:
                assert self.to_tag is not None
                changed = _move_passages(readable, self.to_tag, self.user)
            self.done += changed
            self._record_run(cursor=batch[-1], done=self.done, progress=self.progress_text)
        return True

    def _complete(self) -> None:
        """The codebook's own change, made with the job's outcome in one transaction."""
        if self.everywhere:
            self._complete_everywhere()
            return
        with transaction.atomic():
            code = self._code(self.code_id)
            moved = _passages(self.done)
            if self.action == self.Action.RENAME:
                assert self.from_tag is not None
                if self.to_tag_id == self.from_tag_id:
                    code._record(
                        self.user,
                        "code_renamed",
                        f"renamed the code “{self.old_name}” to “{code.tag.name}”",
                    )
                else:
                    code._renamed(self.from_tag, self.user)
                summary = (
                    f"Renamed “{self.old_name}” to “{code.tag.name}” on {moved} of this collection."
                )
            elif self.action == self.Action.MERGE:
                code._absorb(self._code(self.other_id), self.user)
                summary = f"Merged “{self.old_name}” into “{code.tag.name}”: {moved} moved."
            else:
                code._take_out(self.user)
                summary = f"Deleted the code “{self.old_name}” and removed it from {moved}."
            if not self._finish(state=self.State.DONE, summary=summary[:700], progress=""):
                raise _Superseded

    def _complete_everywhere(self) -> None:
        """The end of an admin's change: a rename is done once its passages are indexed again;
        a merge's codes follow and the merged tag's page redirects, as when made at once."""
        moved = _passages(self.done)
        old, new = self.old_name, self.new_name
        with transaction.atomic():
            if self.action == self.Action.RENAME:
                summary = f"Renamed the tag “{old}” to “{new}”: {moved} indexed again."
            else:
                if self.from_tag is not None and self.to_tag is not None:
                    _merge_codes(self.from_tag, self.to_tag)
                summary = f"Merged the tag “{old}” into “{new}” everywhere: {moved} moved."
            if not self._finish(state=self.State.DONE, summary=summary[:700], progress=""):
                raise _Superseded


def check_tags_free(tags: Iterable[Tag]) -> None:
    """Refuse a change to ``tags`` while the worker changes one of them (CodebookJob)."""
    job = CodebookJob.objects.active().on_tags(tags).first()
    if job is not None:
        raise CodebookError(
            f"A tag involved is being changed in the background ({job.change}); "
            "change it again once that is done."
        )


class TagRedirect(models.Model):
    """A tag's old page address (its slug before a rename or merge) and the tag it became."""

    old_slug = models.CharField(max_length=100, unique=True)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="redirects_from")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"{self.old_slug} → {self.tag_id}"

    @classmethod
    def target(cls, slug: str) -> Tag | None:
        found = cls.objects.filter(old_slug=slug).select_related("tag").first()
        return found.tag if found else None


def _checked_tag_name(name: str) -> str:
    from annotations.w3c import tag_name_error

    name = (name or "").strip()
    problem = tag_name_error(name)
    if problem:
        raise CodebookError(problem)
    return name


def _passages(n: int) -> str:
    return f"{n} passage{'' if n == 1 else 's'}"


def _new_tag(name: str) -> Tag:
    # A slug that an old tag's page used (a redirect) must not be taken by a new tag.
    tag = Tag(name=name)
    tag.save()
    TagRedirect.objects.filter(old_slug=tag.slug).delete()
    return tag


def _carried_elsewhere(code: Code) -> bool:
    return (
        TaggedAnnotation.objects.filter(tag_id=code.tag_id)
        .exclude(content_object__collection_id=code.collection_id)
        .exists()
    )


def _move_passages(rows: models.QuerySet[TaggedAnnotation], to: Tag, actor=None) -> int:
    """Retag ``rows`` with ``to`` (an annotation that already carries it keeps one row);
    the annotations are indexed again. Return how many annotations were retagged."""
    pks = list(rows.values_list("content_object_id", flat=True))
    _revise_tags(pks, actor)
    already = TaggedAnnotation.objects.filter(tag=to, content_object_id__in=pks)
    rows.filter(content_object_id__in=already.values("content_object_id")).delete()
    rows.update(tag=to)
    _reindex(pks)
    return len(pks)


def _untag_passages(rows: models.QuerySet[TaggedAnnotation], actor=None) -> int:
    """Take ``rows`` off their annotations, which are indexed again. Return how many."""
    pks = list(rows.values_list("content_object_id", flat=True))
    _revise_tags(pks, actor)
    removed = rows.delete()[0]
    _reindex(pks)
    return removed


def _revise_tags(pks: Sequence[int], actor) -> None:
    """Before a codebook change retags the annotations ``pks``, keep each one's state as a
    revision by ``actor`` and give it a new version, as an edit would: its history says who
    changed its tags, and a client editing from the old version is told it changed."""
    if not pks:
        return
    tags: dict[int, list[str]] = {}
    for annotation_id, name in (
        TaggedAnnotation.objects.filter(content_object_id__in=pks)
        .order_by("pk")
        .values_list("content_object_id", "tag__name")
    ):
        tags.setdefault(annotation_id, []).append(name)
    cited: dict[int, list[dict]] = {}
    for citation in Citation.objects.filter(annotation_id__in=pks).for_display(None):
        cited.setdefault(citation.annotation_id, []).append(citation.as_ref())
    now = timezone.now()
    rows = Annotation.objects.filter(pk__in=pks)
    AnnotationRevision.objects.bulk_create(
        AnnotationRevision(
            annotation_id=pk,
            version=version,
            edited_by=actor,
            edited_at=now,
            note=note,
            tags=tags.get(pk, []),
            visibility=visibility,
            citations=cited.get(pk, []),
        )
        for pk, version, note, visibility in rows.values_list("pk", "version", "note", "visibility")
    )
    rows.update(version=models.F("version") + 1, modified=now)


def _retire(old: Tag, successor: Tag | None) -> None:
    """Delete ``old`` if nothing carries it any more; its page then redirects to
    ``successor`` (and so do the addresses that redirected to it)."""
    if TaggedAnnotation.objects.filter(tag=old).exists() or Code.objects.filter(tag=old).exists():
        return
    if successor is not None:
        TagRedirect.objects.filter(tag=old).update(tag=successor)
        TagRedirect.objects.update_or_create(old_slug=old.slug, defaults={"tag": successor})
    old.delete()


def _reindex(pks: Iterable[int]) -> None:
    """Index the annotations ``pks`` again: search finds them by their tags' names."""
    annotations_retagged.send(Annotation, pks=list(pks))


def merge_tags_everywhere(survivor: Tag, others: Sequence[Tag], *, actor=None) -> tuple[int, int]:
    """Merge ``others`` into ``survivor`` everywhere (the curator's merge, across every
    collection): their passages take ``survivor``, codes follow (a codebook that has both
    keeps ``survivor``'s, with the other's sub-codes under it), and their pages redirect to
    ``survivor``'s. Return (passages moved, passages that already carried it)."""
    moved = dropped = 0
    with transaction.atomic():
        check_tags_free([survivor, *others])
        for other in others:
            if other.pk == survivor.pk:
                continue
            items = TaggedAnnotation.objects.filter(tag=other)
            pks = list(items.values_list("content_object_id", flat=True))
            _revise_tags(pks, actor)
            # An annotation with both tags keeps one: drop the duplicate, move the rest.
            dropped += items.filter(
                content_object__in=TaggedAnnotation.objects.filter(tag=survivor).values(
                    "content_object_id"
                )
            ).delete()[0]
            moved += items.update(tag=survivor)
            _merge_codes(other, survivor)
            _reindex(pks)
    return moved, dropped


def _merge_codes(other: Tag, survivor: Tag) -> None:
    """Once no passage carries ``other``: its codes take ``survivor`` (a codebook that has
    both keeps ``survivor``'s, with the other's sub-codes under it), and its page redirects."""
    for code in Code.objects.filter(tag=other):
        kept = Code.objects.filter(collection_id=code.collection_id, tag=survivor).first()
        if kept is None:
            code.tag = survivor
            code.save(update_fields=["tag"])
            continue
        if kept.parent_id == code.pk:
            kept.parent_id = code.parent_id
            kept.save(update_fields=["parent"])
        code.children.exclude(pk=kept.pk).update(parent=kept)
        code.delete()
    _retire(other, survivor)


# --- Comments: notes on a whole source, and replies -----------------------------------------


def audience_rule(user: User | AnonymousUser) -> Q:
    """Who reads something with its own ``visibility``, ``collection`` and ``author``
    (an annotation, a note on a whole source), the source aside: the author always,
    members of its collection "collection" and "public" ones, anyone "public" ones in a
    public collection."""
    rule = Q(visibility=Annotation.Visibility.PUBLIC, collection__is_public=True)
    if user.is_authenticated:
        member_collections = Collection.objects.filter(Q(owner=user) | Q(memberships__user=user))
        rule |= Q(author=user)
        rule |= Q(
            visibility__in=[Annotation.Visibility.COLLECTION, Annotation.Visibility.PUBLIC],
            collection__in=member_collections,
        )
    return rule


class CommentError(ValueError):
    """A comment that cannot be written; ``status`` is what the API answers (403, 400)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class CommentQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> CommentQuerySet:
        """The one rule for who may read a comment.

        A note on a whole source is read as an annotation is (its own visibility, in its
        collection, on a source the user may see). A reply has no audience of its own: it
        is read by exactly whoever reads what it answers, so it can never show more of a
        discussion than its start, and it follows the start when that is made private.
        """
        if getattr(user, "is_staff", False):
            return self.all()
        notes = self.model.objects.filter(
            audience_rule(user),
            reply_to_annotation__isnull=True,
            reply_to_note__isnull=True,
            source__in=Source.objects.visible_to(user),
        )
        return self.filter(
            Q(pk__in=notes.values("pk"))
            | Q(reply_to_annotation__in=Annotation.objects.visible_to(user).values("pk"))
            | Q(reply_to_note__in=notes.values("pk"))
        )

    def source_notes(self) -> CommentQuerySet:
        return self.filter(reply_to_annotation__isnull=True, reply_to_note__isnull=True)

    def replies(self) -> CommentQuerySet:
        return self.exclude(reply_to_annotation__isnull=True, reply_to_note__isnull=True)


class Comment(models.Model):
    """An annotation without a passage: a note on a whole source (W3C target: the source
    itself), or a reply (W3C ``motivation: replying``, target: what it answers) to a passage
    annotation or to a note on a source.

    A model of its own, not a nullable anchor on Annotation: the passage's columns and their
    constraint stay as they were, and the reading page, the API's list, the search index and
    the exports, which read passages by the hundred thousand, read no row they must skip.
    Replies are one level deep under what they answer (a thread in time order); deleting an
    annotation or a note deletes its replies with it (its confirmation says how many).
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # A reply's source is the source of what it answers: one query finds a reading page's.
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="comments")
    reply_to_annotation = models.ForeignKey(
        Annotation, on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )
    reply_to_note = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )
    # A note's own audience; a reply has none ("" and no collection): it has its parent's.
    collection = models.ForeignKey(
        Collection, on_delete=models.PROTECT, null=True, blank=True, related_name="comments"
    )
    visibility = models.CharField(
        max_length=12, choices=Annotation.Visibility.choices, blank=True, default=""
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="comments"
    )
    note = models.TextField()
    # Rendered when written, as Annotation.note_rendered is.
    note_rendered = models.TextField(null=True, blank=True, editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)
    modified = models.DateTimeField(default=timezone.now, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = CommentQuerySet.as_manager()

    class Meta:
        ordering = ["created", "pk"]
        indexes = [models.Index(fields=["source", "created"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(reply_to_annotation__isnull=True) | Q(reply_to_note__isnull=True),
                name="comment_answers_one_thing",
            ),
            # A note on a source has an audience; a reply takes its parent's.
            models.CheckConstraint(
                condition=(
                    Q(reply_to_annotation__isnull=True, reply_to_note__isnull=True)
                    & ~Q(visibility="")
                )
                | (
                    (Q(reply_to_annotation__isnull=False) | Q(reply_to_note__isnull=False))
                    & Q(visibility="", collection__isnull=True)
                ),
                name="comment_note_or_reply",
            ),
            models.CheckConstraint(condition=~Q(note=""), name="comment_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{'Reply' if self.is_reply else 'Note'} {self.uuid} on {self.source_id}"

    @property
    def is_reply(self) -> bool:
        return self.reply_to_annotation_id is not None or self.reply_to_note_id is not None

    @property
    def fragment(self) -> str:
        return f"c-{self.uuid}"

    def get_absolute_url(self) -> str:
        return f"{self.source.get_absolute_url()}#{self.fragment}"

    def save(self, *args, **kwargs) -> None:
        kwargs["update_fields"] = _with_rendered_note(self, kwargs.get("update_fields"))
        super().save(*args, **kwargs)

    @property
    def note_html(self) -> SafeString:
        return note_html(self.note, self.note_rendered, None)

    @property
    def etag(self) -> str:
        return f'"{self.uuid}-{self.version}"'

    @staticmethod
    def clean_note(note: object) -> str:
        if not isinstance(note, str) or not note.strip():
            raise CommentError("Write something: a reply or note cannot be empty.")
        if len(note) > MAX_COMMENT:
            raise CommentError(f"A reply or note is at most {MAX_COMMENT:,} characters.")
        return note.strip()

    @staticmethod
    def may_reply(user, collection: Collection | None, author_id: int) -> bool:
        """Replying is annotating: the author of what is answered, curators, and those who
        may annotate in its collection (not viewers, not visitors of a public one)."""
        if not user.is_authenticated:
            return False
        if user.is_staff or user.pk == author_id:
            return True
        if collection is None or collection.archived_at is not None:
            return False
        from archive.models import Membership

        writers = [Membership.Role.ANNOTATOR, Membership.Role.EDITOR, Membership.Role.OWNER]
        return (
            collection.owner_id == user.pk
            or collection.memberships.filter(user=user, role__in=writers).exists()
        )

    @classmethod
    def reply(cls, *, author, to: Annotation | Comment, note: object) -> Comment:
        """A reply by ``author`` to ``to``, which the caller found through ``visible_to``
        (so seeing it is settled). CommentError(403) if they may not reply."""
        if isinstance(to, Comment) and to.is_reply:
            # One level: answering a reply continues the thread it is in.
            assert to.reply_to_note is not None or to.reply_to_annotation is not None
            parent = to.reply_to_annotation or to.reply_to_note
            assert parent is not None
            to = parent
        if not cls.may_reply(author, to.collection, to.author_id):
            raise CommentError("You may read this but not reply to it.", status=403)
        text = cls.clean_note(note)
        render_note(text)  # before the write lock; save finds it memoised
        fields: dict = {"source_id": to.source_id, "author": author, "note": text}
        if isinstance(to, Annotation):
            fields["reply_to_annotation"] = to
        else:
            fields["reply_to_note"] = to
        return cls.objects.create(**fields)

    @classmethod
    def note_on(
        cls, *, author, source: Source, note: object, visibility: str | None = None
    ) -> Comment:
        """A note by ``author`` on the whole of ``source`` (which they may read), in the
        collection a new annotation of theirs would go to. CommentError(403) if they may
        not annotate it."""
        if not Annotation.may_write(author, source):
            raise CommentError("You may read this source but not annotate it.", status=403)
        visibility = visibility or Annotation.Visibility.COLLECTION
        if visibility not in Annotation.Visibility.values:
            raise CommentError(
                f"visibility must be one of {', '.join(Annotation.Visibility.values)}."
            )
        text = cls.clean_note(note)
        render_note(text)  # before the write lock; save finds it memoised
        return cls.objects.create(
            source=source,
            author=author,
            note=text,
            visibility=visibility,
            collection=Annotation.collection_for(author, source),
        )

    def change(self, *, note: object, visibility: str | None = None) -> None:
        """The author's edit: the text, and a note's visibility (a reply has none)."""
        self.note = self.clean_note(note)
        render_note(self.note)  # before the save's write lock; save finds it memoised
        if visibility is not None and not self.is_reply:
            if visibility not in Annotation.Visibility.values:
                raise CommentError(
                    f"visibility must be one of {', '.join(Annotation.Visibility.values)}."
                )
            self.visibility = visibility
        self.version += 1
        self.modified = timezone.now()
        self.save(update_fields=["note", "visibility", "version", "modified"])


MAX_COMMENT = 100_000


def _with_rendered_note(row: Annotation | Comment, update_fields) -> list[str] | None:
    """Render ``row``'s note into its stored forms before a save that writes the note; the
    save's ``update_fields`` with them added."""
    if update_fields is not None and "note" not in update_fields:
        return update_fields
    rendered = render_note(row.note)
    row.note_rendered = rendered.html
    stored = ["note_rendered"]
    if isinstance(row, Annotation):
        row.note_plain = rendered.plain
        stored.append("note_plain")
    return None if update_fields is None else [*update_fields, *stored]


def note_html(note: str, rendered: str | None, keys: Mapping[str, KeyTarget] | None) -> SafeString:
    """A written note as a reader sees it, from its stored form. A row written before the
    stored forms existed and not yet filled (the migration fills them) is rendered here."""
    if rendered is None:
        return render_markdown(note, keys)
    return link_citations(rendered, keys)
