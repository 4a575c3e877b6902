from __future__ import annotations

import mimetypes
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from archive.blobstore import file_chunks
from archive.ingest import ArchiveError, archive_chunks
from archive.models import Collection, Source


class Command(BaseCommand):
    help = (
        "Archive files unchanged. Prints one tab-separated line per source: UUID, SHA-256, "
        "title. Exits non-zero if any input failed; the others are still archived."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "paths", nargs="+", metavar="PATH", help="files to archive (plain text or HTML)"
        )
        parser.add_argument(
            "--title", help="title for the source(s), instead of the one taken from the file"
        )
        parser.add_argument(
            "--url", default="", help="the URL the source was published at (http or https)"
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
            path = Path(raw)
            try:
                with path.open("rb") as fh:
                    archived = archive_chunks(
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
                failures += 1
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                self.stderr.write(f"{path}: {reason}")
                continue
            source = archived.source
            # One line per source, whatever the title holds.
            title = " ".join(source.title.split())
            self.stdout.write(f"{source.uuid}\t{source.sha256}\t{title}")
            if not archived.created:
                self.stderr.write(f"{path}: already archived; returning the existing source")
            elif not source.has_text_layer:
                self.stderr.write(f"{path}: {source.no_text_layer_reason}")
        if failures:
            raise CommandError(f"{failures} of {len(options['paths'])} inputs failed.")
