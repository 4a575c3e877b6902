from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from archive.models import Collection
from exports.importer import ImportResult, import_package
from exports.package import PackageError, open_package


class Command(BaseCommand):
    help = (
        "Import a collection exported by export_collection --format bagit (a zipped BagIt"
        " package or its unzipped directory), or a REFI-QDA project (.qdpx) made by ATLAS.ti,"
        " MAXQDA, NVivo, QualCoder or Scholion, told apart by their content. A bag's every"
        " checksum, and a project's project.qde against the REFI-QDA schema, are checked"
        " before anything is written; then the collection, the sources (original bytes stored"
        " through archive ingest, keeping their UUIDs), metadata, annotations and tags are added"
        " in short transactions, hidden from everyone until the last one (other people's writes"
        " go on meanwhile; an import that fails or is killed leaves nothing anyone can see)."
        " Authors are matched by username; missing ones get inactive accounts that cannot log"
        " in. Importing the same package again changes nothing. A project goes into a new"
        " collection named after it, or into --collection; what Scholion could not keep is"
        " listed after the summary. The import runs in this process (no background worker is"
        " needed) and has no upload size limit."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "path", metavar="PATH", help="the package: a .zip or .qdpx file, or a directory"
        )
        parser.add_argument(
            "--collection",
            metavar="SLUG",
            help="the existing collection a REFI-QDA project goes into (default: a new one"
            " named after the project)",
        )

    def handle(self, *args, **options):
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        into = None
        if options["collection"]:
            into = Collection.objects.filter(slug=options["collection"]).first()
            if into is None:
                raise CommandError(f"There is no collection “{options['collection']}”.")
        try:
            with open_package(path) as package:
                result = import_package(package, into=into)
        except PackageError as exc:
            raise CommandError(f"Nothing was imported: {exc}") from None
        self.stdout.write(result.summary())
        self.stdout.write(report_text(result), ending="")


def report_text(result: ImportResult) -> str:
    lines = []
    for part in result.report:
        lines.append(f"\n{part['what']}:")
        lines += [f"  - {item}" for item in part["items"]]
        if part["more"]:
            lines.append(f"  … and {part['more']:,} more")
    return "\n".join(lines) + ("\n" if lines else "")
