from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from archive.models import Collection, Membership, MembershipError


class Command(BaseCommand):
    help = (
        "Add a user to a collection with a role, change the role of a member, or remove a "
        "member with --remove. A collection always keeps at least one owner."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", metavar="SLUG", help="the collection")
        parser.add_argument("username", metavar="USERNAME", help="the user")
        parser.add_argument(
            "--role",
            choices=Membership.Role.values,
            help="the role to give: " + ", ".join(Membership.Role.values),
        )
        parser.add_argument(
            "--remove", action="store_true", help="remove the user from the collection"
        )

    def handle(self, *args, **options):
        if options["remove"] == bool(options["role"]):
            raise CommandError("Give either --role ROLE or --remove.")
        collection = Collection.objects.filter(slug=options["slug"]).first()
        if collection is None:
            raise CommandError(f"No collection with slug {options['slug']!r}.")
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        try:
            if options["remove"]:
                collection.remove_member(user)
                self.stdout.write(f"Removed {user.get_username()} from {collection.slug}.")
                return
            role = options["role"]
            if collection.role_of(user) is None:
                collection.add_member(user, role)
                self.stdout.write(f"Added {user.get_username()} to {collection.slug} as {role}.")
            else:
                collection.change_role(user, role)
                self.stdout.write(f"{user.get_username()} is now {role} in {collection.slug}.")
        except MembershipError as exc:
            raise CommandError(str(exc)) from None
