from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from archive.models import Collection
from exports.hypothesis import HypothesisError, import_hypothesis, max_bytes


class Command(BaseCommand):
    help = (
        "Import annotations made with Hypothesis into a collection, from the API's search"
        ' results ({"rows": [...]}) or the Hypothesis client\'s export file'
        ' ({"export_date": ..., "annotations": [...]}). Each is attached to the source of the'
        " collection archived from its page, at the passage its quote names (exactly, ignoring"
        " whitespace, or by a fuzzy match near its recorded position); those that cannot be"
        " placed are listed as orphans. Pages with no source are queued for capture. Authors"
        " are matched by username; missing ones get inactive accounts. Importing the same file"
        " again adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="the Hypothesis JSON file")
        parser.add_argument(
            "--collection", required=True, metavar="SLUG", help="the collection to import into"
        )
        parser.add_argument(
            "--user",
            metavar="USERNAME",
            help=(
                "import as this person, as the upload page does: they must be an editor or"
                " owner of the collection; the file's own annotations (its export_userid, or"
                " an account of the same username) become theirs, and other people's are"
                " imported only if they are a curator"
            ),
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        collection = Collection.objects.filter(slug=options["collection"]).first()
        if collection is None:
            raise CommandError(f"No collection has the slug “{options['collection']}”.")
        importer = None
        if options["user"]:
            importer = get_user_model().objects.filter(username=options["user"]).first()
            if importer is None:
                raise CommandError(f"No account has the username “{options['user']}”.")
            if not Collection.objects.writable_by(importer).filter(pk=collection.pk).exists():
                raise CommandError(
                    f"{importer.get_username()} may not import into “{collection.slug}”:"
                    " only its editors and owners, and curators, may."
                )
        if path.stat().st_size > max_bytes():
            raise CommandError(
                f"Nothing was imported: {path} is larger than the {max_bytes():,} bytes a"
                " Hypothesis import accepts (SCHOLION_HYPOTHESIS_MAX_BYTES)."
            )
        try:
            result = import_hypothesis(path.read_bytes(), collection, importer)
        except HypothesisError as exc:
            raise CommandError(f"Nothing was imported: {exc}") from None
        self.stdout.write(result.summary())
