from __future__ import annotations

import secrets
import sys
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode


def default_base_url() -> str:
    """Where the site is reached, guessed from the deployment's own settings."""
    for origin in settings.CSRF_TRUSTED_ORIGINS:
        if "*" not in origin:
            return origin.rstrip("/")
    if not settings.DEBUG:
        for host in settings.ALLOWED_HOSTS:
            if host and "*" not in host and not host.startswith("."):
                return f"https://{host}"
    return "http://127.0.0.1:8000"  # runserver's address, as `make demo` starts it


class Command(BaseCommand):
    help = (
        "Create an account (Scholion is invite-only by default). Prints a link where the new "
        "user sets their own password, or with --generate-password a password to pass on, "
        "or reads one from standard input with --password-stdin."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", metavar="USERNAME")
        parser.add_argument(
            "--email", required=True, help="their address, used for password resets"
        )
        parser.add_argument(
            "--staff",
            action="store_true",
            help="make the account a curator: sees everything and uses the curation admin",
        )
        how = parser.add_mutually_exclusive_group()
        how.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input",
        )
        how.add_argument(
            "--generate-password",
            action="store_true",
            help="generate a password and print it, instead of a password-set link",
        )
        parser.add_argument(
            "--base-url",
            help="the site's address for the link (default: from CSRF_TRUSTED_ORIGINS or "
            "ALLOWED_HOSTS)",
        )

    def handle(self, *args, **options):
        User = get_user_model()  # noqa: N806
        username = options["username"].strip()
        email = options["email"].strip()
        try:
            User.username_validator(username)
        except ValidationError as exc:
            raise CommandError(f"Username {username!r}: {' '.join(exc.messages)}") from None
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not an e-mail address.") from None
        if User.objects.filter(username=username).exists():
            raise CommandError(f"An account named {username!r} already exists.")
        if User.objects.filter(email__iexact=email).exists():
            raise CommandError(f"An account already uses {email}; one account per address.")
        base_url = (options["base_url"] or default_base_url()).rstrip("/")
        if urlsplit(base_url).scheme not in {"http", "https"} or not urlsplit(base_url).netloc:
            raise CommandError(f"--base-url {base_url!r} is not an http(s) address.")

        user = User(username=username, email=email)
        if options["staff"]:
            user.is_staff = user.is_superuser = True
        password = None
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("No password on standard input.")
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise CommandError("Password refused: " + " ".join(exc.messages)) from None
        elif options["generate_password"]:
            password = secrets.token_urlsafe(12)
        # Without a password of their own, the account gets a random one nobody knows, so
        # the reset link below (and "forgot password" later) works while nothing else does.
        user.set_password(password or secrets.token_urlsafe(32))
        with transaction.atomic():
            user.save()

        kind = "curator account" if options["staff"] else "account"
        self.stdout.write(f"Created {kind} {username} <{email}>.")
        if options["password_stdin"]:
            return
        if options["generate_password"]:
            self.stdout.write(f"Password: {password}")
            return
        path = reverse(
            "password_reset_confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        )
        days = max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)
        self.stdout.write(
            f"Send them this link to choose a password (valid for {days} days, once):\n"
            f"{base_url}{path}"
        )
