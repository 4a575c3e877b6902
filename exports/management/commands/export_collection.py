from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from archive.models import Collection
from exports.bag import ExportError
from exports.formats import FORMATS, binary_writer, text_writer
from exports.forms import export_scope


class Command(BaseCommand):
    help = (
        "Export a collection's annotations and sources. Formats: jsonld (W3C Web Annotation),"
        " xlsx (a spreadsheet any spreadsheet program opens), csv, markdown (a report, its"
        " references printed), pandoc (the report for pandoc --citeproc, beside the csljson"
        " export: pandoc --citeproc SLUG-report-pandoc.md), bibtex, csljson, bagit (a zipped"
        " BagIt package with the original bytes, which import_collection reads back), qdpx (a"
        " REFI-QDA project for ATLAS.ti, MAXQDA, NVivo and QualCoder). The"
        " export holds what --user may see; never anyone else's private annotations."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", metavar="SLUG", help="the collection's slug")
        parser.add_argument("--format", required=True, choices=list(FORMATS), help="what to write")
        parser.add_argument(
            "--output",
            "-o",
            required=True,
            metavar="PATH",
            help="file to write; - writes a text format to standard output",
        )
        parser.add_argument(
            "--user",
            metavar="USERNAME",
            help="export what this user may see (default: the collection's owner)",
        )
        parser.add_argument(
            "--tag",
            action="append",
            default=[],
            metavar="TAG",
            help="only annotations with this tag (repeat for several: all must apply)",
        )
        parser.add_argument("--author", metavar="USERNAME", help="only annotations by this user")
        parser.add_argument("--source", metavar="UUID", help="only this source")
        parser.add_argument(
            "--from",
            dest="archived_from",
            metavar="YYYY-MM-DD",
            help="only sources archived on or after this day",
        )
        parser.add_argument(
            "--to",
            dest="archived_to",
            metavar="YYYY-MM-DD",
            help="only sources archived on or before this day",
        )
        parser.add_argument(
            "--bom", action="store_true", help="csv: start with a byte-order mark (for Excel)"
        )
        parser.add_argument(
            "--base-url",
            default=settings.SCHOLION_BASE_URL,
            help="scheme and host for the links in the export (default: SCHOLION_BASE_URL,"
            " %(default)s)",
        )

    def handle(self, *args, **options):
        fmt, output = options["format"], options["output"]
        spec = FORMATS[fmt]
        if spec.text is None and output == "-":
            raise CommandError(
                f"{spec.label} is a zip file: give --output PATH (for example"
                f" {options['slug']}{spec.filename}), not standard output."
            )
        collection = Collection.objects.select_related("owner").filter(slug=options["slug"]).first()
        if collection is None:
            raise CommandError(f"No collection with slug {options['slug']!r}.")
        user = collection.owner
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
        filters = {
            "tag": options["tag"],
            "author": options["author"] or "",
            "source": options["source"] or "",
            "archived_from": options["archived_from"] or "",
            "archived_to": options["archived_to"] or "",
        }
        try:
            scope = export_scope(
                collection,
                user,
                options["base_url"].rstrip("/"),
                {k: v for k, v in filters.items() if v},
            )
        except ValidationError as exc:
            raise CommandError("Bad filter: " + "; ".join(exc.messages)) from None
        progress = self._progress_bar(scope.count(), passes=4 if fmt == "bagit" else 1)
        scope.progress = progress
        try:
            if spec.text is None:
                with Path(output).open("wb") as out:
                    for data in binary_writer(fmt)(scope):
                        out.write(data)
            elif output == "-":
                for chunk in text_writer(fmt, bom=options["bom"])(scope):
                    self.stdout.write(chunk, ending="")
            else:
                with Path(output).open("w", encoding="utf-8", newline="") as out:
                    for chunk in text_writer(fmt, bom=options["bom"])(scope):
                        out.write(chunk)
        except (OSError, ExportError) as exc:
            raise CommandError(f"Export failed: {exc}") from None
        finally:
            if progress is not None:
                sys.stderr.write("\n")
        if output != "-":
            self.stderr.write(
                f"Wrote {FORMATS[fmt].label} of {scope.count()} annotations on"
                f" {len(scope.source_list())} sources to {output}."
            )

    def _progress_bar(self, total: int, passes: int):
        """A bar on standard error, only when that is a terminal (never in logs or pipes)."""
        if not sys.stderr.isatty() or total == 0:
            return None
        state = {"done": 0, "last": 0}

        def update(written: int) -> None:
            # Each pass reports from zero again; the bag makes four passes.
            if written < state["last"]:
                state["done"] += state["last"]
            state["last"] = written
            fraction = min(1.0, (state["done"] + written) / (total * passes))
            bar = "#" * int(fraction * 30)
            sys.stderr.write(f"\r[{bar:<30}] {fraction:5.1%}")
            sys.stderr.flush()

        return update
