from __future__ import annotations

from typing import TypedDict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotations.models import Annotation
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


class DemoAnnotation(TypedDict):
    """One demo passage: the keyword arguments it adds to ``Annotation.create_anchored``."""

    exact: str
    tags: list[str]
    note: str


# A researcher's first pass over the article: what it states, where, and what to check.
# Descriptive notes only (Scholion keeps a source as published, to examine and dispute); two
# passages overlap, so that the tags that meet on them show on the co-occurrence page.
DEMO_ANNOTATIONS: list[DemoAnnotation] = [
    {
        "exact": "On March 31",
        "tags": ["date"],
        "note": "The date of the events reported. The article gives no year.",
    },
    {
        "exact": "which has so far claimed over 32,700 Palestinian lives, including at least"
        " 15,000 children",
        "tags": ["casualty-figures", "sourcing"],
        "note": "Figures stated without a named source. Note which body published figures"
        " for the same date before comparing them.",
    },
    {
        "exact": "the Al-Qassam Brigades, Al-Aqsa Martyrs Brigades, Al-Quds Brigades, Mujahideen"
        " Brigades, and Hezbollah",
        "tags": ["named-groups"],
        "note": "Five groups named as taking part in the operations.",
    },
    {
        "exact": "occupied Al-Jalil in Iraq",
        "tags": ["place-names"],
        "note": "Place name to check: here the article puts Al-Jalil in Iraq; its third section"
        " describes a strike by the Islamic Resistance in Iraq on a site in Al-Jalil.",
    },
    {
        "exact": "Hezbollah's operations in Lebanon targeted Israeli military sites with artillery"
        " shells and drone attacks",
        "tags": ["weapons-described"],
        "note": "Means of attack as the article describes them. No figures for damage or"
        " casualties are given for this front.",
    },
    {
        "exact": "Hezbollah's operations in Lebanon",
        "tags": ["named-groups", "place-names"],
        "note": "",
    },
    {
        "exact": "the Islamic Resistance's drone strike on a vital Israeli military site in"
        " occupied Al-Jalil",
        "tags": ["place-names", "weapons-described"],
        "note": "The second mention of Al-Jalil (compare the first paragraph).",
    },
]


class Command(BaseCommand):
    help = (
        "Archive the demo article, create a demo collection, a demo login and the login's "
        "descriptive annotations on the article (idempotent). Prints the login."
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
        # Only while the demo login has none on the article: a second run keeps what the
        # researcher has since edited or deleted.
        if not Annotation.objects.filter(author=user, source=source).exists():
            for annotation in DEMO_ANNOTATIONS:
                Annotation.create_anchored(
                    author=user, source=source, collection=collection, **annotation
                )
            self.stdout.write(f"Demo annotations: {len(DEMO_ANNOTATIONS)} on the demo source")
        if created:
            self.stdout.write(
                f"Demo login: username {user.username}, password {options['password']}"
            )
        else:
            self.stdout.write(f"Demo login: username {user.username} (password unchanged)")
