"""Importing annotations made with Hypothesis (hypothes.is) into a collection.

Two file shapes are read: the API's search results (``{"rows": [...]}``, as ``GET
/api/search`` answers) and the Hypothesis client's own export (``{"export_date": ...,
"annotations": [...]}``). The whole file is read and checked before anything is written, so a
malformed file is refused and leaves nothing.

Each annotation's page (``uri``) is matched to a source of the collection by the URL it was
archived from (its original URL, its metadata URL, or a capture's requested or final URL).
Its passage is then found in the source's text layer by its TextQuoteSelector: the exact
quote first (prefix, suffix and position choosing between occurrences), then ignoring
whitespace, then a fuzzy match near its TextPositionSelector. An annotation that cannot be
placed with confidence is an orphan, listed in the report and never attached elsewhere.

Replies become Comment replies by their own authors (a private one, its author's private note).
Every UUID (annotation, note, reply) is derived from the collection and the Hypothesis id, so
importing the same file again finds what the first import wrote and adds nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rapidfuzz import fuzz

from annotations.models import Annotation, Comment, CommentError
from archive.jobs import Job
from archive.models import Capture, Collection, Source

# The import's annotation UUIDs: uuid5(this, "<collection pk>:<Hypothesis id>").
HYPOTHESIS_UUIDS = uuid.UUID("0b7e4f55-3c1a-4f0e-8d52-6a9f1e2c7d40")
# Bounds on the fuzzy match, which compares the quote with a stretch of text around its old
# position: its cost grows with both lengths.
FUZZY_MIN_QUOTE = 12  # shorter quotes match too many places to be placed approximately
FUZZY_MAX_QUOTE = 2000
FUZZY_REACH = 2000  # characters searched either side of the recorded position
FUZZY_THRESHOLD = 85.0  # similarity (0-100) a fuzzy match needs
EXACT_CANDIDATES = 1000  # occurrences of a quote weighed against each other
TAG_MAX = 100  # taggit's Tag.name
PROGRESS_EVERY = 100  # annotations between two reports of progress
WHITESPACE = re.compile(r"\s+")
VIA_PROXY = re.compile(r"^https?://via\.hypothes\.is/(?=https?://)", re.I)


def max_bytes() -> int:
    return settings.SCHOLION_HYPOTHESIS_MAX_BYTES


class HypothesisError(ValueError):
    """A file that cannot be imported; the message says why, in words for its uploader."""


# --- Reading the file -------------------------------------------------------------------------


@dataclass
class HypothesisAnnotation:
    id: str
    uri: str
    user: str  # acct:name@authority
    text: str = ""
    tags: list[str] = field(default_factory=list)
    created: datetime | None = None
    updated: datetime | None = None
    group: str = ""
    read: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    exact: str | None = None
    prefix: str = ""
    suffix: str = ""
    position: tuple[int, int] | None = None
    target_source: str = ""

    @property
    def is_reply(self) -> bool:
        return bool(self.references)

    @property
    def is_private(self) -> bool:
        """Hypothesis keeps an annotation private by letting only its author read it."""
        return self.read == [self.user]

    @property
    def link(self) -> str:
        return f"https://hypothes.is/a/{self.id}"


@dataclass
class HypothesisFile:
    annotations: list[HypothesisAnnotation]
    shape: str  # "API search results" or "Hypothesis client export"
    exporter: str = ""  # acct of the client export's author


def read_file(data: bytes) -> HypothesisFile:
    """Parse and check a whole Hypothesis file; raise HypothesisError naming the first fault."""
    limit = max_bytes()
    if len(data) > limit:
        raise HypothesisError(
            f"The file is {len(data):,} bytes, more than the {limit:,} a Hypothesis import"
            " accepts (SCHOLION_HYPOTHESIS_MAX_BYTES). Split it, for example by date."
        )
    try:
        document = json.loads(data)
    except UnicodeDecodeError:
        raise HypothesisError("The file is not text (UTF-8 JSON).") from None
    except json.JSONDecodeError as exc:
        raise HypothesisError(
            f"The file is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from None
    if isinstance(document, dict) and isinstance(document.get("rows"), list):
        rows, shape, exporter = document["rows"], "API search results", ""
        # /api/search with _separate_replies=true answers the replies beside the rows.
        if isinstance(document.get("replies"), list):
            rows = rows + document["replies"]
    elif (
        isinstance(document, dict)
        and "export_date" in document
        and isinstance(document.get("annotations"), list)
    ):
        rows, shape = document["annotations"], "Hypothesis client export"
        exporter = document.get("export_userid") or ""
        if not isinstance(exporter, str):
            raise HypothesisError("export_userid must be a string (acct:name@authority).")
    else:
        raise HypothesisError(
            "This is not a Hypothesis file: expected the API's search results"
            ' ({"rows": [...]}) or the Hypothesis client\'s export'
            ' ({"export_date": ..., "annotations": [...]}).'
        )
    annotations = [_annotation(row, n) for n, row in enumerate(rows, 1)]
    seen: set[str] = set()
    for annotation in annotations:
        if annotation.id in seen:
            raise HypothesisError(f"Annotation {annotation.id} appears twice in the file.")
        seen.add(annotation.id)
    return HypothesisFile(annotations=annotations, shape=shape, exporter=exporter)


def _annotation(row: object, n: int) -> HypothesisAnnotation:
    where = f"Annotation {n}"
    if not isinstance(row, dict):
        raise HypothesisError(f"{where} is not an object.")
    hid = row.get("id")
    if not isinstance(hid, str) or not hid.strip() or len(hid) > 100:
        raise HypothesisError(f"{where} has no id.")
    where = f"Annotation {n} ({hid})"

    def text(name: str, *, required: bool = False) -> str:
        value = row.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            raise HypothesisError(f"{where}: “{name}” must be a string.")
        return value

    def strings(name: str) -> list[str]:
        value = row.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise HypothesisError(f"{where}: “{name}” must be a list of strings.")
        return value

    user = text("user", required=True)
    if not _username(user):
        raise HypothesisError(f"{where}: user “{user[:100]}” is not an acct:name@authority.")
    tags = [t.strip() for t in strings("tags") if t.strip()]
    for tag in tags:
        if len(tag) > TAG_MAX:
            raise HypothesisError(f"{where}: the tag “{tag[:40]}…” is longer than {TAG_MAX}.")
    permissions = row.get("permissions") or {}
    if not isinstance(permissions, dict):
        raise HypothesisError(f"{where}: “permissions” must be an object.")
    read = permissions.get("read") or []
    if not isinstance(read, list) or not all(isinstance(r, str) for r in read):
        raise HypothesisError(f"{where}: “permissions.read” must be a list of strings.")
    annotation = HypothesisAnnotation(
        id=hid,
        uri=text("uri", required=True),
        user=user,
        text=text("text"),
        tags=tags,
        created=_moment(row.get("created"), where, "created"),
        updated=_moment(row.get("updated"), where, "updated"),
        group=text("group"),
        read=read,
        references=strings("references"),
    )
    targets = row.get("target") or []
    if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
        raise HypothesisError(f"{where}: “target” must be a list of objects.")
    for target in targets[:1]:
        source = target.get("source")
        annotation.target_source = source if isinstance(source, str) else ""
        selectors = target.get("selector") or []
        if not isinstance(selectors, list):
            raise HypothesisError(f"{where}: “target.selector” must be a list.")
        for selector in selectors:
            if not isinstance(selector, dict):
                raise HypothesisError(f"{where}: each selector must be an object.")
            kind = selector.get("type")
            if kind == "TextQuoteSelector":
                exact = selector.get("exact")
                if not isinstance(exact, str):
                    raise HypothesisError(f"{where}: its TextQuoteSelector has no “exact”.")
                annotation.exact = exact
                prefix, suffix = selector.get("prefix") or "", selector.get("suffix") or ""
                if not isinstance(prefix, str) or not isinstance(suffix, str):
                    raise HypothesisError(f"{where}: prefix and suffix must be strings.")
                annotation.prefix, annotation.suffix = prefix, suffix
            elif kind == "TextPositionSelector":
                start, end = selector.get("start"), selector.get("end")
                if (
                    isinstance(start, int)
                    and isinstance(end, int)
                    and not isinstance(start, bool)
                    and 0 <= start <= end
                ):
                    annotation.position = (start, end)
    return annotation


def _moment(value: object, where: str, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise HypothesisError(f"{where}: “{name}” must be a date and time.")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HypothesisError(
            f"{where}: “{name}” is not a date and time: “{value[:40]}”."
        ) from None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def _username(acct: str) -> str:
    """Scholion's username for a Hypothesis account: its name, or name@authority for an
    account of another Hypothesis service than hypothes.is (so the two never meet)."""
    match = re.fullmatch(r"acct:([^@\s]+)@([^@\s]+)", acct)
    if match is None:
        return ""
    name, authority = match.groups()
    username = name if authority.lower() == "hypothes.is" else f"{name}@{authority}"
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        return ""
    return username if len(username) <= 150 else ""


# --- Matching pages to sources ----------------------------------------------------------------


def normalise_url(url: str) -> str:
    """The form two URLs of the same page share: no fragment, no trailing slash, the
    scheme and host in lower case, no default port, no via.hypothes.is proxy in front."""
    url = VIA_PROXY.sub("", url.strip())
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if parts.port and (scheme, parts.port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{parts.port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, host, path, parts.query, ""))


def sources_by_url(sources: Iterable[Source], collection: Collection) -> dict[str, list[Source]]:
    """The collection's sources under each normalised address they were archived from,
    newest first (a page captured twice is tried in its latest form first)."""
    found: dict[str, list[Source]] = defaultdict(list)
    by_pk = {source.pk: source for source in sources}
    addresses: list[tuple[str, int]] = []
    for source in by_pk.values():
        addresses += [(source.original_url, source.pk), (source.url, source.pk)]
    captures = Capture.objects.filter(state=Job.State.DONE, source_id__in=list(by_pk))
    for url, final, pk in captures.values_list("url", "url_final", "source_id"):
        addresses += [(url, pk), (final, pk)]
    for address, pk in addresses:
        if address:
            key = normalise_url(address)
            if by_pk[pk] not in found[key]:
                found[key].append(by_pk[pk])
    for listed in found.values():
        listed.sort(key=lambda s: (s.archived_at, s.pk), reverse=True)
    return found


# --- Anchoring --------------------------------------------------------------------------------


@dataclass
class Anchor:
    start: int
    end: int
    how: str  # exact, whitespace, fuzzy
    score: float = 100.0


class Orphan(Exception):
    """An annotation that cannot be placed with confidence; the message says why."""


def anchor_quote(
    text: str, exact: str, prefix: str, suffix: str, position: tuple[int, int] | None
) -> Anchor:
    """Where a TextQuoteSelector lies in ``text``, or Orphan.

    The exact quote first; then the quote ignoring whitespace (a page's text and its text
    layer often break lines and paragraphs differently); then, near the recorded position,
    the passage most like the quote (words changed since it was made). Between several equally
    good places the prefix and suffix choose, then the recorded position; if they cannot,
    the annotation is an orphan rather than attached to what may be the wrong passage.
    """
    if not exact.strip():
        raise Orphan("its quote is empty")
    hint = position[0] if position else None
    starts = _occurrences(text, exact)
    if starts:
        start = _choose(starts, text, len(exact), prefix, suffix, hint)
        return Anchor(start, start + len(exact), "exact")
    found = _without_whitespace_choice(text, exact, prefix, suffix, hint)
    if found is not None:
        return found
    return _fuzzy(text, exact, position)


def _occurrences(text: str, quote: str) -> list[int]:
    found: list[int] = []
    at = text.find(quote)
    while at != -1 and len(found) < EXACT_CANDIDATES:
        found.append(at)
        at = text.find(quote, at + 1)
    return found


def _choose(
    starts: list[int], text: str, length: int, prefix: str, suffix: str, hint: int | None
) -> int:
    if len(starts) == 1:
        return starts[0]
    scores = {
        start: _common_end(text[max(0, start - len(prefix)) : start], prefix)
        + _common_start(text[start + length : start + length + len(suffix)], suffix)
        for start in starts
    }
    return _choose_by_score(starts, scores, hint)


def _choose_by_score(starts: list[int], scores: dict[int, int], hint: int | None) -> int:
    """The occurrence whose context matches best; of several alike, the one nearest the
    recorded position; else Orphan."""
    best = max(scores.values())
    leaders = [start for start in starts if scores[start] == best]
    if len(leaders) == 1:
        return leaders[0]
    if hint is not None:
        distances = sorted((abs(start - hint), start) for start in leaders)
        if distances[0][0] < distances[1][0]:
            return distances[0][1]
    raise Orphan(
        f"its quote occurs {len(starts)} times{'+' if len(starts) >= EXACT_CANDIDATES else ''}"
        " and neither its context nor its position tells which one it is"
    )


def _common_start(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _common_end(a: str, b: str) -> int:
    return _common_start(a[::-1], b[::-1])


def _squeeze(text: str) -> str:
    return WHITESPACE.sub("", text)


def _without_whitespace_choice(
    text: str, exact: str, prefix: str, suffix: str, hint: int | None
) -> Anchor | None:
    """The quote found with any whitespace, or none, between its characters. A pattern
    rather than a copy of the text without whitespace: it finds offsets in the text itself,
    and costs no memory in proportion to a long text."""
    letters = _squeeze(exact)
    pattern = re.compile(r"\s*".join(re.escape(char) for char in letters))
    matches = []
    for match in pattern.finditer(text):
        matches.append((match.start(), match.end()))
        if len(matches) >= EXACT_CANDIDATES:
            break
    if not matches:
        return None
    if len(matches) > 1:
        prefix, suffix = _squeeze(prefix), _squeeze(suffix)
        # Context compared without whitespace too, read from enough text to hold it.
        reach = 4 * max(len(prefix), len(suffix)) + 64
        scores = {
            start: _common_end(_squeeze(text[max(0, start - reach) : start]), prefix)
            + _common_start(_squeeze(text[end : end + reach]), suffix)
            for start, end in matches
        }
        ends = dict(matches)
        chosen = _choose_by_score([start for start, _ in matches], scores, hint)
        return Anchor(chosen, ends[chosen], "whitespace")
    return Anchor(matches[0][0], matches[0][1], "whitespace")


def _fuzzy(text: str, exact: str, position: tuple[int, int] | None) -> Anchor:
    if position is None:
        raise Orphan("its quote is not in the text, and it records no position to look near")
    quote = exact.strip()
    if len(quote) < FUZZY_MIN_QUOTE:
        raise Orphan("its quote is not in the text, and is too short to look for approximately")
    if len(quote) > FUZZY_MAX_QUOTE:
        raise Orphan("its quote is not in the text, and is too long to look for approximately")
    low = max(0, position[0] - FUZZY_REACH)
    high = min(len(text), position[0] + len(quote) + FUZZY_REACH)
    window = text[low:high]
    found = fuzz.partial_ratio_alignment(quote, window, score_cutoff=FUZZY_THRESHOLD)
    if found is None:
        raise Orphan("its quote is not in the text, and nothing near its position is like it")
    start, end, score = _widen(quote, window, found.dest_start, found.dest_end)
    # A second passage as like the quote elsewhere in the window: no way to tell which.
    masked = window[:start] + "\0" * (end - start) + window[end:]
    rival = fuzz.partial_ratio_alignment(quote, masked, score_cutoff=FUZZY_THRESHOLD)
    if rival is not None and rival.score >= score - 2:
        raise Orphan("its quote is not in the text, and two passages near its position are like it")
    return Anchor(low + start, low + end, "fuzzy", round(score, 1))


def _widen(quote: str, window: str, start: int, end: int) -> tuple[int, int, float]:
    """The alignment has the quote's length; words inserted or deleted since shift its ends.
    Try nearby ends and keep the most similar passage, without whitespace at either end."""
    reach = min(16, max(2, len(quote) // 10))
    best = (start, end, fuzz.ratio(quote, window[start:end]))
    for s in range(max(0, start - reach), min(len(window), start + reach) + 1):
        for e in range(max(s + 1, end - reach), min(len(window), end + reach) + 1):
            score = fuzz.ratio(quote, window[s:e])
            if score > best[2]:
                best = (s, e, score)
    s, e, score = best
    while s < e and window[s].isspace():
        s += 1
    while e > s and window[e - 1].isspace():
        e -= 1
    return s, e, score


# --- Writing ----------------------------------------------------------------------------------


@dataclass
class HypothesisResult:
    collection: Collection
    shape: str = ""
    anchored: Counter = field(default_factory=Counter)
    existing: int = 0
    replies_added: int = 0  # replies in the thread they answer
    replies_private: int = 0  # kept as their author's private notes
    replies_existing: int = 0
    page_notes: int = 0
    orphans: list[str] = field(default_factory=list)
    # Replies not kept, a line per thread (or per reply) saying why.
    reply_orphans: list[str] = field(default_factory=list)
    replies_orphaned: int = 0
    captures: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    others_skipped: int = 0
    people_created: list[str] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(self.anchored.values())

    @property
    def how_anchored(self) -> list[str]:
        """How many annotations were anchored each way, in words ("3 by their exact quote")."""
        return [
            f"{self.anchored[kind]} {label}"
            for kind, label in (
                ("exact", "by their exact quote"),
                ("whitespace", "ignoring whitespace"),
                ("fuzzy", "by a fuzzy match near their position"),
            )
            if self.anchored[kind]
        ]

    def summary(self) -> str:
        how = ", ".join(self.how_anchored)
        lines = [
            f"Read {self.shape} into “{self.collection.title}”:"
            f" {_count(self.created, 'annotation')} added{f' ({how})' if how else ''},"
            f" {self.existing} already here;"
            f" {_count(self.page_notes, 'page note')} kept as notes on their source;"
            f" {_count(len(self.orphans), 'orphan')}.",
            f"Replies: {self.replies_added:,} imported as replies,"
            f" {self.replies_private:,} private ones kept as their authors' private notes,"
            f" {self.replies_orphaned:,} orphaned, {self.replies_existing:,} already here.",
        ]
        if self.people_created:
            lines.append(
                f"Inactive accounts created for {len(self.people_created)} authors:"
                f" {', '.join(self.people_created)}."
            )
        if self.others_skipped:
            lines.append(
                f"{self.others_skipped} annotations and replies by other Hypothesis users were"
                " left out: only a curator may import other people's annotations under their"
                " names."
            )
        if self.captures:
            lines.append(
                "Pages with no source in the collection, queued for capture (import the file"
                " again once they are archived to add their annotations):"
            )
            lines += [f"  {url}" for url in self.captures]
        if self.unmatched:
            lines.append(
                "Pages with no source in the collection (archive them, then import again):"
            )
            lines += [f"  {url}" for url in self.unmatched]
        if self.orphans:
            lines.append("Orphans (not attached to any passage):")
            lines += [f"  {orphan}" for orphan in self.orphans]
        if self.reply_orphans:
            lines.append("Orphaned replies (not imported):")
            lines += [f"  {orphan}" for orphan in self.reply_orphans]
        return "\n".join(lines)


def _count(n: int, word: str, plural: str = "") -> str:
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


class _Import:
    def __init__(
        self,
        collection: Collection,
        importer,
        document: HypothesisFile,
        progress: Callable[[str], None],
    ) -> None:
        self.progress = progress
        self.collection = collection
        self.importer = importer
        self.document = document
        self.result = HypothesisResult(collection=collection, shape=document.shape)
        self.people: dict[str, Any] = {}
        self.texts: dict[int, str] = {}
        # Why each annotation of the file that was not imported was not, for its replies.
        self.why_not: dict[str, str] = {}

    @property
    def trusted(self) -> bool:
        """The command line (no importer) and curators may import other people's work."""
        return self.importer is None or self.importer.is_staff

    def uuid_for(self, hid: str) -> uuid.UUID:
        return uuid.uuid5(HYPOTHESIS_UUIDS, f"{self.collection.pk}:{hid}")

    def run(self) -> HypothesisResult:
        sources = Source.objects.filter(
            collections=self.collection, withdrawn_at__isnull=True
        ).defer("text", "blocks")
        if not self.trusted:
            sources = sources.visible_to(self.importer)
        by_url = sources_by_url(sources, self.collection)
        roots = [a for a in self.document.annotations if not a.is_reply]
        replies = [a for a in self.document.annotations if a.is_reply]
        existing = set(
            Annotation.objects.filter(
                uuid__in=[self.uuid_for(a.id) for a in self.document.annotations]
            ).values_list("uuid", flat=True)
        )
        pages_missing: dict[str, str] = {}
        written: dict[str, Annotation | Comment] = {}
        for n, annotation in enumerate(roots):
            if n % PROGRESS_EVERY == 0:
                self.progress(f"Adding annotations: {n:,} of {len(roots):,}")
            if self.uuid_for(annotation.id) in existing:
                self.result.existing += 1
                continue
            author = self.author(annotation.user)
            if author is None:
                self.result.others_skipped += 1
                self.why_not[annotation.id] = OTHERS
                continue
            page = normalise_url(annotation.uri)
            candidates = by_url.get(page) or by_url.get(normalise_url(annotation.target_source))
            if not candidates:
                # Captured without its fragment, once however many ways it is written.
                address = VIA_PROXY.sub("", annotation.uri.strip()).split("#", 1)[0]
                pages_missing.setdefault(page, address)
                self.orphan(annotation, "no source in the collection was archived from its page")
                continue
            made = self.write(annotation, author, candidates)
            if made is not None:
                written[annotation.id] = made
        self.missing_pages(list(pages_missing.values()))
        self.progress(f"Adding {len(replies):,} replies")
        self.add_replies(replies, written)
        return self.result

    def orphan(self, annotation: HypothesisAnnotation, reason: str) -> None:
        quote = (annotation.exact or "").strip().replace("\n", " ")
        shown = f"“{quote[:60]}{'…' if len(quote) > 60 else ''}” " if quote else ""
        self.result.orphans.append(f"{annotation.link} {shown}on {annotation.uri}: {reason}.")
        self.why_not[annotation.id] = reason

    def text_of(self, source: Source) -> str:
        if source.pk not in self.texts:
            self.texts[source.pk] = (
                Source.objects.filter(pk=source.pk).values_list("text", flat=True).get()
            )
        return self.texts[source.pk]

    def write(
        self, annotation: HypothesisAnnotation, author, candidates: list[Source]
    ) -> Annotation | Comment | None:
        if annotation.exact is None:
            return self.note_on_page(annotation, author, candidates[0])
        reasons = []
        for source in candidates:
            if not source.has_text_layer:
                reasons.append("its source has no text layer")
                continue
            text = self.text_of(source)
            try:
                found = anchor_quote(
                    text,
                    annotation.exact,
                    annotation.prefix,
                    annotation.suffix,
                    annotation.position,
                )
            except Orphan as exc:
                reasons.append(str(exc))
                continue
            quote = Annotation.anchor(text, found.start, found.end)
            private = Annotation.Visibility.PRIVATE
            with transaction.atomic():
                made, _tags = Annotation.write_anchored(
                    quote,
                    tags=annotation.tags,
                    uuid=self.uuid_for(annotation.id),
                    source=source,
                    collection=self.collection,
                    author=author,
                    start=found.start,
                    end=found.end,
                    note=annotation.text,
                    visibility=(
                        private if annotation.is_private else Annotation.Visibility.COLLECTION
                    ),
                    created=annotation.created or timezone.now(),
                    modified=annotation.updated or annotation.created or timezone.now(),
                    canonical=annotation.link,
                )
            self.result.anchored[found.how] += 1
            return made
        self.orphan(annotation, "; ".join(dict.fromkeys(reasons)))
        return None

    def note_on_page(
        self, annotation: HypothesisAnnotation, author, source: Source
    ) -> Comment | None:
        """A page note (no quote) becomes a note on the whole source, once."""
        made = self.uuid_for(annotation.id)
        there = Comment.objects.filter(uuid=made).first()
        if there is not None:
            self.result.existing += 1
            return there
        try:
            note = Comment.clean_note(annotation.text)
        except CommentError as exc:
            self.orphan(annotation, f"a page note that cannot be kept: {exc}")
            return None
        private = Annotation.Visibility.PRIVATE
        self.result.page_notes += 1
        return Comment.objects.create(
            uuid=made,
            source=source,
            author=author,
            note=note,
            visibility=private if annotation.is_private else Annotation.Visibility.COLLECTION,
            collection=self.collection,
            created=annotation.created or timezone.now(),
            modified=annotation.updated or annotation.created or timezone.now(),
        )

    def author(self, acct: str):
        """The Scholion account an annotation by ``acct`` belongs to, or None when the
        importer may not import it (another person's, and the importer is no curator)."""
        if acct in self.people:
            return self.people[acct]
        username = _username(acct)
        if self.is_own(acct):
            person = self.importer
        elif not self.trusted:
            person = None
        else:
            User = get_user_model()
            person = User.objects.filter(username=username).first()
            if person is None:
                person = User.objects.create_user(
                    username,
                    password=None,  # unusable: the account exists to carry authorship
                    is_active=False,
                )
                self.result.people_created.append(username)
        self.people[acct] = person
        return person

    def is_own(self, acct: str) -> bool:
        return self.importer is not None and (
            acct == self.document.exporter or _username(acct) == self.importer.get_username()
        )

    def missing_pages(self, urls: list[str]) -> None:
        """Queue a capture of each page with no source, where the importer may archive into
        the collection; otherwise list it."""
        may_capture = (
            self.importer is None
            or Collection.objects.writable_by(self.importer).filter(pk=self.collection.pk).exists()
        ) and self.collection.archived_at is None
        under_way = set(
            Capture.objects.filter(
                collection=self.collection, state__in=[Job.State.QUEUED, Job.State.RUNNING]
            ).values_list("url", flat=True)
        )
        room = Capture.room_for(self.importer) if self.importer is not None else len(urls)
        for url in urls:
            capturable = urlsplit(url).scheme.lower() in ("http", "https") and len(url) <= 2000
            if not may_capture or not capturable:
                self.result.unmatched.append(url)
            elif url in under_way:
                self.result.captures.append(url)
            elif room > 0:
                Capture.submit(self.importer, url, collection=self.collection)
                room -= 1
                self.result.captures.append(url)
            else:
                self.result.unmatched.append(f"{url} (too many captures waiting: try later)")

    def add_replies(
        self, replies: list[HypothesisAnnotation], written: dict[str, Annotation | Comment]
    ) -> None:
        """Each reply joins, in time order, the thread its first reference starts: Scholion's
        threads are one level deep, so a reply to a reply answers the thread's start."""
        threads: dict[str, list[HypothesisAnnotation]] = defaultdict(list)
        for reply in replies:
            threads[reply.references[0]].append(reply)
        earlier = {self.uuid_for(hid): hid for hid in threads if hid not in written}
        starts: dict[str, Annotation | Comment] = dict(written)
        for annotation in Annotation.objects.filter(uuid__in=list(earlier)):
            starts[earlier[annotation.uuid]] = annotation
        for note in Comment.objects.source_notes().filter(uuid__in=list(earlier)):
            starts[earlier[note.uuid]] = note
        there = set(
            Comment.objects.filter(
                uuid__in=[self.uuid_for(reply.id) for reply in replies]
            ).values_list("uuid", flat=True)
        )
        in_file = {a.id for a in self.document.annotations}
        for hid, thread in threads.items():
            thread.sort(key=lambda r: (r.created or timezone.now(), r.id))
            mine = [r for r in thread if self.trusted or self.is_own(r.user)]
            self.result.others_skipped += len(thread) - len(mine)
            start = starts.get(hid)
            if start is None:
                if mine:
                    self.orphan_replies(hid, mine, in_file)
                continue
            for reply in mine:
                if self.uuid_for(reply.id) in there or (
                    # Appended to the note by an import made before Scholion had replies.
                    isinstance(start, Annotation) and reply.link in start.note
                ):
                    self.result.replies_existing += 1
                else:
                    self.add_reply(start, reply)

    def add_reply(self, start: Annotation | Comment, reply: HypothesisAnnotation) -> None:
        """A reply by its own author in the thread of ``start``, or, if it was private on
        Hypothesis, its author's private note on the same source: a reply has no audience
        of its own (whoever reads the thread reads it), so it cannot stay private."""
        body = reply.text.strip()
        if reply.tags:
            body += f"\n\nTags on Hypothesis: {', '.join(reply.tags)}"
        try:
            text = Comment.clean_note(body)
        except CommentError as exc:
            why = "it has no text, and a reply cannot be empty" if not body else exc.message
            self.result.replies_orphaned += 1
            self.result.reply_orphans.append(f"{reply.link}: {why.rstrip('.')}.")
            return
        author = self.author(reply.user)
        fields: dict[str, Any] = {
            "uuid": self.uuid_for(reply.id),
            "source_id": start.source_id,
            "author": author,
            "created": reply.created or timezone.now(),
            "modified": reply.updated or reply.created or timezone.now(),
        }
        if reply.is_private:
            Comment.objects.create(
                **fields,
                note=f"{private_reply_heading(reply, start, author)}\n\n{text}",
                visibility=Annotation.Visibility.PRIVATE,
                collection=self.collection,
            )
            self.result.replies_private += 1
            return
        if isinstance(start, Annotation):
            fields["reply_to_annotation"] = start
        else:
            fields["reply_to_note"] = start
        Comment.objects.create(**fields, note=text)
        self.result.replies_added += 1

    def orphan_replies(
        self, hid: str, thread: list[HypothesisAnnotation], in_file: set[str]
    ) -> None:
        """Report a thread whose start was not imported: how many replies, and why."""
        link = f"https://hypothes.is/a/{hid}"
        if hid in self.why_not:
            why = f"which was not imported: {self.why_not[hid]}"
        elif hid in in_file:
            why = "which is itself a reply, not the start of a thread"
        else:
            why = "which is not in this file and was not imported from an earlier one"
        replies = ", ".join(reply.link for reply in thread)
        self.result.replies_orphaned += len(thread)
        self.result.reply_orphans.append(
            f"{_count(len(thread), 'reply', 'replies')} ({replies})"
            f" {'answers' if len(thread) == 1 else 'answer'} {link}, {why}."
        )


OTHERS = "it is another Hypothesis user's, and only a curator may import other people's"
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~-])")


def private_reply_heading(reply: HypothesisAnnotation, start: Annotation | Comment, author) -> str:
    """What a private reply kept as a note says it answered. The passage's words only when
    its author may read the annotation (its own, or one not private): the note must not
    tell of a private annotation it cannot see."""
    what = "a note on this source"
    if isinstance(start, Annotation):
        what = "an annotation"
        if start.author_id == author.pk or start.visibility != Annotation.Visibility.PRIVATE:
            quote = WHITESPACE.sub(" ", start.exact).strip()
            shown = MARKDOWN_SPECIAL.sub(r"\\\1", quote if len(quote) <= 80 else quote[:80] + "…")
            what = f"the annotation on “{shown}”"
    start_link = f"https://hypothes.is/a/{reply.references[0]}"
    return (
        f"**Private reply** to {what} ([on Hypothesis]({start_link})), kept as your private"
        f" note ([the reply on Hypothesis]({reply.link}))."
    )


def import_hypothesis(
    data: bytes,
    collection: Collection,
    importer=None,
    progress: Callable[[str], None] | None = None,
) -> HypothesisResult:
    """Import a Hypothesis file's annotations into ``collection`` as ``importer`` (None:
    the command line, which may import anyone's). The caller checked that the importer may
    write to the collection. Raise HypothesisError, before writing anything, for a file
    that cannot be read. ``progress`` is told how far the import has got."""
    if collection.archived_at is not None:
        raise HypothesisError(f"“{collection.title}” is archived: it takes no new annotations.")
    document = read_file(data)
    return _Import(collection, importer, document, progress or (lambda text: None)).run()
