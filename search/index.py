"""Keeping the search index in step with sources and annotations.

Text becomes words here, once, in Python: split into runs of letters and digits, folded to
lower case without accents ("Résistance" -> "resistance"). Both engines then index these
words as given (SQLite FTS5 splits them on spaces with its ``unicode61`` tokenizer,
PostgreSQL takes them as lexemes verbatim), so a query matches exactly the same rows on
either, and the highlighter in ``search.query`` finds the same words the engine matched.
Changing how words are made means running ``manage.py rebuild_search_index``.

Call ``index_source`` in the transaction that archives a source or edits its metadata
(archiving indexes a very long text layer right after its row commits instead, in short
transactions: see ``archive.ingest.INLINE_INDEX_CHARS``); call ``index_annotation`` in
the transaction that creates or edits an annotation (once its tags are set). Deleting a
source or an annotation removes its index rows by cascade; ``unindex_*`` do it explicitly.
Withdrawal changes nothing here: searches only ever look at ``visible_to(user)``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from itertools import islice

from django.db import connection, transaction

from annotations.models import Annotation
from archive.models import Source
from search.models import AnnotationEntry, SourceSegment, SourceVocabulary

# Longer "words" are base64, hashes and the like; PostgreSQL would refuse them anyway.
MAX_WORD_LENGTH = 60
# A text stretch is cut at the first paragraph end after this many words...
SEGMENT_WORDS = 600
INDEX_BATCH = 200  # index rows written per INSERT while indexing one source
# ...and inside a paragraph that alone runs past this many.
SEGMENT_MAX_WORDS = 1200


def _mark_ranges() -> str:
    """A regex character class body for the combining marks of the Basic Multilingual Plane."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x300, 0x10000):
        if unicodedata.category(chr(code)) in ("Mn", "Mc", "Me"):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "".join(rf"\u{a:04x}-\u{b:04x}" if a != b else rf"\u{a:04x}" for a, b in ranges)


_MARKS = _mark_ranges()
# A word in the original text: a letter or digit, then letters, digits and combining marks
# (so "é" written as "e" + U+0301 stays one word).
RAW_WORD_RE = re.compile(rf"[^\W_](?:[^\W_]|[{_MARKS}])*")
_MARKS_RE = re.compile(f"[{_MARKS}]+")
# A folded word: letters and digits only, at most MAX_WORD_LENGTH of them.
_WORD_RE = re.compile(rf"(?<![^\W_])[^\W_]{{1,{MAX_WORD_LENGTH}}}(?![^\W_])")


def fold(text: str) -> str:
    """Lower case, compatibility forms decomposed ("ﬁ" -> "fi"), accents dropped."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text).casefold()
    return _MARKS_RE.sub("", text)


def index_words(text: str) -> list[str]:
    """The words of ``text`` as the index holds them, in order."""
    # Folding the raw words joined by spaces equals folding each word on its own (the
    # mappings are per character), and runs at C speed.
    return _WORD_RE.findall(fold(" ".join(RAW_WORD_RE.findall(text))))


@lru_cache(maxsize=50_000)
def fold_word(raw: str) -> tuple[str, ...]:
    """The index words one raw word becomes: usually one, sometimes none ("x" * 99) or two."""
    return tuple(_WORD_RE.findall(fold(raw)))


class _SameLengthFold(dict):
    """str.translate table: each character to its one-character fold, else to U+FFFF."""

    def __missing__(self, code: int) -> int:
        folded = fold(chr(code))
        value = ord(folded) if len(folded) == 1 else 0xFFFF
        self[code] = value
        return value


_SAME_LENGTH_FOLD = _SameLengthFold()


def fold_in_place(text: str) -> str | None:
    """``fold(text)`` with every character where it was, so offsets carry over; None when
    some character folds to more or fewer than one ("ß" -> "ss", a combining accent)."""
    if text.isascii():
        return text.lower()
    folded = text.translate(_SAME_LENGTH_FOLD)
    return None if "\uffff" in folded else folded


def word_spans(text: str) -> Iterator[tuple[str, int, int]]:
    """(index word, start, end) for each word of ``text``; offsets are code points."""
    for match in RAW_WORD_RE.finditer(text):
        for word in fold_word(match.group()):
            yield word, match.start(), match.end()


def text_stretches(text: str, blocks: Sequence[dict]) -> list[tuple[int, int]]:
    """(start, end) stretches covering ``text``: whole paragraphs, some hundreds of words each."""
    length = len(text)
    paragraph_ends = sorted({b["e"] for b in blocks if 0 < b["e"] < length})
    cuts: list[int] = []
    count = 0
    pos = 0
    for end in [*paragraph_ends, length]:
        if end <= pos:
            continue
        n = len(RAW_WORD_RE.findall(text, pos, end))
        if count + n > SEGMENT_MAX_WORDS:
            if count:
                cuts.append(pos)
                count = 0
            if n > SEGMENT_MAX_WORDS:
                # One very long paragraph (or a text without any): cut between words.
                for i, match in enumerate(RAW_WORD_RE.finditer(text, pos, end)):
                    if i and i % SEGMENT_MAX_WORDS == 0:
                        cuts.append(match.start())
                n %= SEGMENT_MAX_WORDS
        count += n
        pos = end
        if count >= SEGMENT_WORDS and end < length:
            cuts.append(end)
            count = 0
    bounds = [0, *cuts, length]
    return [(s, e) for s, e in zip(bounds, bounds[1:], strict=False) if e > s]


def metadata_words(source: Source) -> str:
    fields = [
        source.title,
        *source.creators,
        source.container_title,
        source.publisher,
        source.citation_key,
    ]
    return " ".join(index_words(" ".join(f for f in fields if f)))


def _metadata_segment(source: Source) -> SourceSegment:
    return SourceSegment(
        id=source.pk * SourceSegment.SEGMENT_ID_BASE,
        source_id=source.pk,
        kind=SourceSegment.Kind.METADATA,
        words=metadata_words(source),
    )


def _vocabulary(metadata: SourceSegment, text_words: set[str]) -> SourceVocabulary:
    return SourceVocabulary(
        source_id=metadata.source_id,
        text_words=" ".join(sorted(text_words)),
        metadata_words=metadata.words,
    )


def _text_segments(source: Source) -> Iterator[SourceSegment]:
    base = source.pk * SourceSegment.SEGMENT_ID_BASE
    number = 0
    for start, end in text_stretches(source.text, source.blocks):
        words = index_words(source.text[start:end])
        if words:
            number += 1
            if number == SourceSegment.SEGMENT_ID_BASE:
                raise ValueError(f"Source {source.pk} has too many stretches of text to index.")
            yield SourceSegment(
                id=base + number,
                source_id=source.pk,
                kind=SourceSegment.Kind.TEXT,
                start=start,
                end=end,
                words=" ".join(words),
            )


def index_source(source: Source) -> None:
    """Index a newly archived source, or re-index its metadata after an edit.

    The text layer never changes, so once indexed only the metadata row (and the metadata
    words of the source's vocabulary) is rewritten. The metadata row is written last, with
    the vocabulary, and marks a complete index: a source whose indexing was cut short (no
    metadata row) has its partial text rows dropped and is indexed again.

    Outside a transaction (as archiving calls it, after the source row is committed) the
    text rows are written in batches of short transactions, so a huge text layer never
    holds SQLite's single write lock for long and other writers interleave.
    """
    segments = SourceSegment.objects.filter(source_id=source.pk)
    metadata = _metadata_segment(source)
    if segments.filter(kind=SourceSegment.Kind.METADATA).exists():
        with transaction.atomic():
            segments.filter(kind=SourceSegment.Kind.METADATA).delete()
            metadata.save(force_insert=True)
            SourceVocabulary.objects.filter(source_id=source.pk).update(
                metadata_words=metadata.words
            )
        return
    segments.delete()
    text_words: set[str] = set()
    rows = _text_segments(source)
    while True:
        with transaction.atomic():
            batch = list(islice(rows, INDEX_BATCH))
            SourceSegment.objects.bulk_create(batch)
        for segment in batch:
            text_words.update(segment.words.split())
        if len(batch) < INDEX_BATCH:
            break
    with transaction.atomic():
        SourceVocabulary.objects.filter(source_id=source.pk).delete()
        _vocabulary(metadata, text_words).save(force_insert=True)
        metadata.save(force_insert=True)


def unindexed_sources():
    """Sources without a complete index (indexing failed or was cut short)."""
    indexed = SourceSegment.objects.filter(kind=SourceSegment.Kind.METADATA)
    return Source.objects.exclude(pk__in=indexed.values("source_id"))


def unindex_source(source_id: int) -> None:
    SourceVocabulary.objects.filter(source_id=source_id).delete()
    SourceSegment.objects.filter(source_id=source_id).delete()


def _annotation_entry(annotation: Annotation, tag_names: Sequence[str]) -> AnnotationEntry:
    return AnnotationEntry(
        annotation_id=annotation.pk,
        quote=" ".join(index_words(annotation.exact)),
        note=" ".join(index_words(annotation.note)),
        tags=" ".join(index_words(" ".join(tag_names))),
    )


def index_annotation(
    annotation: Annotation, tag_names: Sequence[str] | None = None, *, new: bool = False
) -> None:
    """Index a new annotation, or re-index an edited one; call it after its tags are set.

    ``tag_names``, when the caller has them, spares reading them back; ``new`` says the
    annotation was created in this transaction, so it has no entry to replace yet.
    """
    if tag_names is None:
        tag_names = list(annotation.tags.names())
    # No savepoint: a failure here fails the caller's transaction anyway.
    with transaction.atomic(savepoint=False):
        if not new:
            AnnotationEntry.objects.filter(annotation_id=annotation.pk).delete()
        _annotation_entry(annotation, tag_names).save(force_insert=True)


def reindex_annotations(pks: Sequence[int], batch_size: int = 500) -> None:
    """Index the annotations ``pks`` again, a batch at a time: a codebook change retags
    thousands, and three statements for each one kept a request past its timeout."""
    with transaction.atomic(savepoint=False):
        for at in range(0, len(pks), batch_size):
            batch = pks[at : at + batch_size]
            rows = Annotation.objects.filter(pk__in=batch).only("pk", "exact", "note")
            entries = [
                _annotation_entry(a, [t.name for t in a.tags.all()])
                for a in rows.prefetch_related("tags")
            ]
            AnnotationEntry.objects.filter(annotation_id__in=batch).delete()
            AnnotationEntry.objects.bulk_create(entries)


def unindex_annotation(annotation_id: int) -> None:
    AnnotationEntry.objects.filter(annotation_id=annotation_id).delete()


def rebuild_index(
    batch_size: int = 500, progress: Callable[[str], None] | None = None
) -> tuple[int, int, int]:
    """Rewrite the whole index from the sources and annotations; returns
    (sources, text stretches, annotations) indexed. One transaction: searches keep seeing
    the old index until the new one is complete."""
    sources = stretches = annotations = 0
    with transaction.atomic():
        SourceVocabulary.objects.all().delete()
        SourceSegment.objects.all().delete()
        AnnotationEntry.objects.all().delete()

        batch: list[SourceSegment] = []
        vocabularies: list[SourceVocabulary] = []
        source_rows = Source.objects.only(
            "pk",
            "title",
            "creators",
            "container_title",
            "publisher",
            "citation_key",
            "text",
            "blocks",
        ).order_by("pk")
        for source in source_rows.iterator(chunk_size=100):
            segments = list(_text_segments(source))
            metadata = _metadata_segment(source)
            vocabularies.append(
                _vocabulary(metadata, {w for s in segments for w in s.words.split()})
            )
            batch.extend(segments)
            batch.append(metadata)
            sources += 1
            stretches += len(segments)
            if len(batch) >= batch_size:
                SourceSegment.objects.bulk_create(batch)
                SourceVocabulary.objects.bulk_create(vocabularies)
                batch, vocabularies = [], []
                if progress and sources % 1000 == 0:
                    progress(f"{sources} sources")
        SourceSegment.objects.bulk_create(batch)
        SourceVocabulary.objects.bulk_create(vocabularies)

        entries: list[AnnotationEntry] = []
        annotation_rows = (
            Annotation.objects.only("pk", "exact", "note").prefetch_related("tags").order_by("pk")
        )
        for annotation in annotation_rows.iterator(chunk_size=2000):
            entries.append(_annotation_entry(annotation, [t.name for t in annotation.tags.all()]))
            annotations += 1
            if len(entries) >= batch_size * 4:
                AnnotationEntry.objects.bulk_create(entries)
                entries = []
                if progress and annotations % 20000 == 0:
                    progress(f"{annotations} annotations")
        AnnotationEntry.objects.bulk_create(entries)
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                # Merge the index's many freshly written b-trees into one, for faster queries.
                for table in (
                    "search_segment_fts",
                    "search_metadata_fts",
                    "search_vocabulary_fts",
                    "search_annotation_fts",
                ):
                    cursor.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")  # noqa: S608
            else:
                # Fresh statistics, so the planner knows which words are rare.
                cursor.execute(
                    "ANALYZE search_sourcesegment, search_sourcevocabulary, search_annotationentry"
                )
    return sources, stretches, annotations
