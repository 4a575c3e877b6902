"""The search index's own rows: what each source and annotation contributes, as words.

The words are folded by ``search.index.index_words`` (lower case, no accents) so that
SQLite and PostgreSQL match exactly the same things. Each engine indexes these rows its own
way, set up by this app's migrations: SQLite through FTS5 tables that read them as external
content (kept in step by triggers), PostgreSQL through generated ``tsvector`` columns with
GIN indexes. Neither is ever edited by hand: ``search.index`` writes them, and
``manage.py rebuild_search_index`` rewrites them all.
"""

from __future__ import annotations

from django.db import models

from annotations.models import Annotation
from archive.models import Source


class SourceSegment(models.Model):
    """A source's metadata, or one stretch of its text layer (a run of whole paragraphs).

    Long texts are indexed in stretches of some hundreds of words so that a match can be
    shown and linked where it occurs, and so that PostgreSQL's limits on positions within
    one ``tsvector`` never cut into phrase search.
    """

    # The id is SEGMENT_ID_BASE * source id + the segment's number (0 for the metadata), so
    # an engine's hits give their source without reading this table.
    SEGMENT_ID_BASE = 2**20

    class Kind(models.TextChoices):
        METADATA = "meta", "Metadata"
        TEXT = "text", "Text layer"

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="search_segments")
    kind = models.CharField(max_length=4, choices=Kind.choices)
    # Code-point offsets of the stretch in source.text (0, 0 for metadata).
    start = models.PositiveIntegerField(default=0)
    end = models.PositiveIntegerField(default=0)
    words = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["source", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.start}-{self.end} of source {self.source_id}"


class SourceVocabulary(models.Model):
    """Each distinct word of a source, once: its text layer's and its metadata's.

    A word or a prefix is looked up here to find, and count, the sources it occurs in: one
    short row per source rather than every occurrence in every stretch of text, which for a
    common word is most of the index. The engines index these rows without positions
    (FTS5 ``detail=none``, a ``tsvector`` of bare lexemes). Phrases still need positions, so
    they are matched against ``SourceSegment``.

    The text layer never changes, so ``text_words`` is written once; ``metadata_words`` is
    rewritten with the metadata row.
    """

    source = models.OneToOneField(
        Source, on_delete=models.CASCADE, primary_key=True, related_name="search_vocabulary"
    )
    text_words = models.TextField(blank=True)
    metadata_words = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"vocabulary of source {self.source_id}"


class AnnotationEntry(models.Model):
    """An annotation's quote, note and tags, as words."""

    annotation = models.OneToOneField(
        Annotation, on_delete=models.CASCADE, primary_key=True, related_name="search_entry"
    )
    quote = models.TextField()
    note = models.TextField(blank=True)
    tags = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"search entry of annotation {self.annotation_id}"
