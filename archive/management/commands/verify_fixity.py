from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from archive.models import Source


class Command(BaseCommand):
    help = (
        "Re-hash stored originals and record each check. Exits non-zero when any blob is "
        "missing or differs from its recorded SHA-256."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", metavar="UUID", help="check only this source")

    def handle(self, *args, **options):
        sources = Source.objects.only("pk", "uuid", "sha256", "size", "blob_name", "title")
        if options["source"]:
            try:
                sources = sources.filter(uuid=options["source"])
            except Exception:  # noqa: BLE001 - a malformed UUID
                raise CommandError(f"{options['source']!r} is not a source UUID.") from None
            if not sources.exists():
                raise CommandError(f"No source with UUID {options['source']}.")
        checked = failed = 0
        for source in sources.order_by("pk").iterator(chunk_size=500):
            check = source.verify_fixity()
            checked += 1
            if not check.ok:
                failed += 1
                self.stderr.write(f"FAILED {source.uuid} {source.title!r}: {check.error}")
        summary = f"Checked {checked} source{'s' if checked != 1 else ''}: {checked - failed} OK, {failed} failed."
        if failed:
            raise CommandError(summary)
        self.stdout.write(summary)
