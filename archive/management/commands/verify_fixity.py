from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from archive.cleanup import unreferenced_blobs
from archive.models import Source


class Command(BaseCommand):
    help = (
        "Re-hash stored originals and record each check (when, result, observed hash, error). "
        "Prints a summary; exits non-zero when any original is missing or differs from its "
        "recorded SHA-256. Run it from cron."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--source",
            metavar="UUID",
            help="check only the source with this UUID (as in /sources/<UUID>/); default: all",
        )

    def handle(self, *args, **options):
        sources = Source.objects.only("pk", "uuid", "sha256", "size", "blob_name", "title")
        if options["source"] is not None:
            try:
                wanted = uuid.UUID(options["source"])
            except ValueError:
                raise CommandError(
                    f"{options['source']!r} is not a source UUID"
                    " (it looks like 0b9e1c52-3f0a-4d5e-9a7b-2c1d0e6f8a90)."
                ) from None
            sources = sources.filter(uuid=wanted)
            if not sources.exists():
                raise CommandError(f"No source with UUID {wanted}.")
        checked = failed = 0
        for source in sources.order_by("pk").iterator(chunk_size=500):
            check = source.verify_fixity()
            checked += 1
            if not check.ok:
                failed += 1
                self.stderr.write(f"FAILED {source.uuid} “{source.title}”: {check.error}")
        plural = "" if checked == 1 else "s"
        self.stdout.write(
            f"Checked {checked} source{plural}: {checked - failed} intact, {failed} failed."
        )
        if options["source"] is None:
            self._report_unreferenced()
        if failed:
            raise CommandError(
                f"Fixity FAILED for {failed} of {checked} source{plural}: see the lines above."
            )

    def _report_unreferenced(self) -> None:
        """Stored files nothing names: left by a process killed between writing a blob and
        committing its row (or by one still running). Not a fixity failure: reported."""
        unreferenced = list(unreferenced_blobs())
        for blob in unreferenced:
            self.stdout.write(f"UNREFERENCED {blob.name} ({blob.size} bytes)")
        if unreferenced:
            count = len(unreferenced)
            self.stdout.write(
                f"{count} stored file{'s' if count != 1 else ''} ("
                f"{sum(b.size for b in unreferenced) / 1e6:.1f} MB) named by no source or"
                " capture: manage.py cleanup removes those older than a day."
            )
