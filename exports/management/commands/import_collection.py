from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from exports.importer import import_package
from exports.package import PackageError, open_package


class Command(BaseCommand):
    help = (
        "Import a collection exported by export_collection --format bagit: a zipped BagIt"
        " package or its unzipped directory. Every checksum is verified before anything is"
        " written; then the collection, the sources (original bytes stored through archive"
        " ingest, keeping their UUIDs), metadata, annotations and tags are added in short"
        " transactions, hidden from everyone until the last one (other people's writes go on"
        " meanwhile; an import that fails or is killed leaves nothing anyone can see)."
        " Authors are matched by username; missing ones get inactive accounts that cannot log"
        " in. Importing the same package again changes nothing. The import runs in this"
        " process (no background worker is needed) and has no upload size limit."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="PATH", help="the package: a .zip file or a directory")

    def handle(self, *args, **options):
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        try:
            with open_package(path) as package:
                result = import_package(package)
        except PackageError as exc:
            raise CommandError(f"Nothing was imported: {exc}") from None
        self.stdout.write(result.summary())
