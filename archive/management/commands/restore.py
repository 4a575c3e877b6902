from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from archive.backup import BackupError, restore


class Command(BaseCommand):
    help = (
        "Restore a backup made by manage.py backup into this instance: checks the bag's"
        " manifest first, then loads the database (which must be empty: a new SQLite file or"
        " PostgreSQL database, before any migrate) and stores every blob. Run"
        " manage.py migrate (for a backup from an older release) and verify_fixity after."
    )

    def add_arguments(self, parser):
        parser.add_argument("src", metavar="SRC", help="a backup directory (a BagIt bag)")

    def handle(self, *args, **options):
        src = Path(options["src"])
        try:
            summary = restore(src, report=lambda line: self.stdout.write(f"  {line}"))
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Restored the {summary.engine} database and {summary.blobs} blobs"
            f" ({summary.blob_bytes / 1e6:.1f} MB) from {src}."
        )
