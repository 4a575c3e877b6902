from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from archive.blobstore import file_chunks
from archive.capture.run import run
from archive.ingest import Archived, ArchiveError, archive_chunks
from archive.models import Capture, Collection, Source

CAPTURED = re.compile(r"^https?://", re.IGNORECASE)
MAX_URL_LENGTH = Capture._meta.get_field("url").max_length or 2000


class Command(BaseCommand):
    help = (
        "Archive files, and web pages by their URL, unchanged. Prints one tab-separated line"
        " per source: UUID, SHA-256, title. Exits non-zero if any input failed; the others are"
        " still archived. A URL is captured here and now (not by the background worker),"
        " with its web archive and provenance, as the archive page's captures are."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "paths",
            nargs="+",
            metavar="PATH_OR_URL",
            help="files to archive (plain text or HTML), or http(s) URLs of pages to capture",
        )
        parser.add_argument(
            "--title", help="title for the source(s), instead of the one taken from the file"
        )
        parser.add_argument(
            "--url",
            default="",
            help="the URL the files were published at (http or https); a captured page"
            " records its own",
        )
        parser.add_argument(
            "--collection", metavar="SLUG", help="add the sources to the collection with this slug"
        )
        parser.add_argument(
            "--user", metavar="USERNAME", help="record this user as the archiver (default: none)"
        )
        parser.add_argument(
            "--whole-page",
            action="store_true",
            help="for HTML pages: keep all of the page's text, not only its article",
        )

    def handle(self, *args, **options):
        if options["url"]:
            try:
                URLValidator(schemes=["http", "https"])(options["url"])
            except ValidationError:
                raise CommandError(f"--url {options['url']!r} is not an http(s) URL.") from None
        user = None
        if options["user"]:
            try:
                user = get_user_model().objects.get_by_natural_key(options["user"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"No user named {options['user']!r}.") from None
        collection = None
        if options["collection"]:
            collection = Collection.objects.filter(slug=options["collection"]).first()
            if collection is None:
                raise CommandError(f"No collection with slug {options['collection']!r}.")
        failures = 0
        for raw in options["paths"]:
            if CAPTURED.match(raw):
                archived = self.capture(raw, user, collection, options)
            else:
                archived = self.archive_file(Path(raw), user, collection, options)
            if archived is None:
                failures += 1
                continue
            source = archived.source
            # One line per source, whatever the title holds.
            title = " ".join(source.title.split())
            self.stdout.write(f"{source.uuid}\t{source.sha256}\t{title}")
            if not archived.created:
                self.stderr.write(f"{raw}: already archived; returning the existing source")
            elif not source.has_text_layer:
                self.stderr.write(f"{raw}: {source.no_text_layer_reason}")
        if failures:
            raise CommandError(f"{failures} of {len(options['paths'])} inputs failed.")

    def archive_file(self, path: Path, user, collection, options) -> Archived | None:
        try:
            with path.open("rb") as fh:
                return archive_chunks(
                    file_chunks(fh),
                    user=user,
                    via=Source.Via.COMMAND_LINE,
                    filename=path.name,
                    declared_type=mimetypes.guess_type(path.name)[0] or "",
                    original_url=options["url"],
                    metadata={"title": options["title"] or ""},
                    collection=collection,
                    whole_page=options["whole_page"],
                )
        except (OSError, ArchiveError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self.stderr.write(f"{path}: {reason}")
            return None

    def capture(self, url: str, user, collection, options) -> Archived | None:
        if len(url) > MAX_URL_LENGTH:
            self.stderr.write(f"{url[:80]}…: the URL is longer than {MAX_URL_LENGTH} characters")
            return None
        job = Capture.objects.create(
            user=user, url=url, collection=collection, whole_page=options["whole_page"]
        )
        job.claim()
        if not run(job):
            self.stderr.write(f"{url}: {job.error}")
            return None
        assert job.source is not None
        if options["title"] and job.new_source:
            job.source.title = options["title"]
            job.source.save(update_fields=["title"])
        return Archived(job.source, created=job.new_source)
