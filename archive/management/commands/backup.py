from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from archive.backup import BackupError, back_up


class Command(BaseCommand):
    help = (
        "Write a consistent backup of this instance to DEST, a new directory: the database"
        " (SQLite's online backup, or pg_dump for PostgreSQL, both a snapshot taken while the"
        " site keeps running) and every archived blob, as a BagIt bag whose manifest lists"
        " each file's SHA-256. manage.py restore brings it back into an empty instance."
    )

    def add_arguments(self, parser):
        parser.add_argument("dest", metavar="DEST", help="a directory that does not exist yet")

    def handle(self, *args, **options):
        dest = Path(options["dest"])
        try:
            summary = back_up(dest, report=lambda line: self.stdout.write(f"  {line}"))
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Backed up the {summary.engine} database and {summary.blobs} blobs"
            f" ({summary.blob_bytes / 1e6:.1f} MB) to {dest}."
        )
