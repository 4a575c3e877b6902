from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from archive.blobstore import file_chunks
from archive.ingest import archive_chunks
from archive.models import Collection, Membership, Source

DEMO_FILE = settings.BASE_DIR / "demo" / "000_7ab34eae5234665d.txt"
DEMO_SHA256 = "e8ce57c5dea73e392ed7adba0c147f7b659dd269b89ac27f9eb6f098c5051b71"
DEMO_METADATA = {
    "title": "‘Axis of Resistance’ operations on March 31 (news article)",
    "language": "en",
    "description": "Demo source: a news article archived byte for byte, for examining and tagging.",
}


class Command(BaseCommand):
    help = (
        "Archive the demo article, create a demo collection and a demo login (idempotent). "
        "Prints the login."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--username", default="demo", help="the demo login's username (default: demo)"
        )
        parser.add_argument(
            "--password",
            default="scholion-demo",
            help="its password, set only when the user is created (default: scholion-demo)",
        )

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=options["username"])
        if created or not user.has_usable_password():
            user.set_password(options["password"])
            user.save()
        collection, _ = Collection.objects.get_or_create(
            slug="demo",
            defaults={
                "title": "Demo collection",
                "description": "A demo collection with one archived news article.",
                "owner": user,
            },
        )
        Membership.objects.get_or_create(
            collection=collection, user=user, defaults={"role": Membership.Role.OWNER}
        )
        with DEMO_FILE.open("rb") as fh:
            archived = archive_chunks(
                file_chunks(fh),
                user=user,
                via=Source.Via.COMMAND_LINE,
                filename=DEMO_FILE.name,
                declared_type="text/plain",
                metadata=DEMO_METADATA,
                collection=collection,
            )
        source = archived.source
        if source.sha256 != DEMO_SHA256:
            raise CommandError(f"The demo file's SHA-256 is {source.sha256}, not {DEMO_SHA256}.")
        self.stdout.write(f"Demo source: /sources/{source.uuid}/ ({source.sha256})")
        if created:
            self.stdout.write(
                f"Demo login: username {user.username}, password {options['password']}"
            )
        else:
            self.stdout.write(f"Demo login: username {user.username} (password unchanged)")
