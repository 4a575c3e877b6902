from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from exports.cleanup import DEFAULT_GRACE, clean_up
from exports.tasks import CLEANUP_EVERY, schedule_cleanup

GRACE_HOURS = DEFAULT_GRACE.total_seconds() / 3600


class Command(BaseCommand):
    help = (
        "Clean up after processes that were killed in the middle of their work: discard"
        " unfinished imports nothing is writing any more, index sources whose search indexing"
        " was cut short, and remove stored blobs that no source or capture names, temporary"
        " files and uploaded import packages that no import names, once they are older than"
        " the grace period (younger ones may belong to work still running), and the copies"
        " of deleted annotations kept for undo once their undo window has passed. Prints what it"
        " did. The worker also runs it once a day: --schedule queues that."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--grace-hours",
            type=float,
            default=GRACE_HOURS,
            metavar="H",
            help=f"leave files younger than H hours (default {GRACE_HOURS:g})",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="say what would be done, and do nothing"
        )
        parser.add_argument(
            "--schedule",
            action="store_true",
            help=(
                "queue the worker's daily cleanup (from now, then every"
                f" {CLEANUP_EVERY.days} day) instead of cleaning up here; nothing is queued"
                " when a run is already waiting"
            ),
        )

    def handle(self, *args, **options):
        if options["schedule"]:
            queued = schedule_cleanup()
            self.stdout.write(
                "Queued the daily cleanup for the worker."
                if queued
                else "The daily cleanup is already queued."
            )
            return
        if options["grace_hours"] < 0:
            raise CommandError("--grace-hours cannot be negative.")
        done = clean_up(
            timedelta(hours=options["grace_hours"]),
            dry_run=options["dry_run"],
            report=lambda line: self.stdout.write(f"  {line}"),
        )
        self.stdout.write(done.summary(options["dry_run"]))
