from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from search.index import index_source, rebuild_index, unindexed_sources


class Command(BaseCommand):
    help = (
        "Rebuild the full-text search index from scratch: every source's metadata and text"
        " layer and every annotation's quote, note and tags. Runs in one transaction, so"
        " searches keep working on the old index meanwhile. Needed after installing the"
        " search app on a database that already holds sources, or after a change to how"
        " search.index splits text into words. With --missing, only index the sources whose"
        " indexing failed or was cut short after they were archived."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--missing",
            action="store_true",
            help="only index sources that have no complete index (fast; nothing is dropped)",
        )

    def handle(self, *args, **options):
        started = time.perf_counter()
        if options["missing"]:
            count = 0
            for source in unindexed_sources().order_by("pk").iterator(chunk_size=20):
                index_source(source)
                count += 1
                self.stdout.write(f"  indexed {source.uuid} {source.title[:60]}")
            self.stdout.write(
                self.style.SUCCESS(
                    f"Indexed {count} source{'s' if count != 1 else ''} that had no complete"
                    f" index in {time.perf_counter() - started:.1f} s."
                )
            )
            return
        sources, stretches, annotations = rebuild_index(
            progress=lambda message: self.stdout.write(f"  {message}…")
        )
        seconds = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Indexed {sources} source{'s' if sources != 1 else ''}"
                f" ({stretches} stretches of text) and {annotations}"
                f" annotation{'s' if annotations != 1 else ''} in {seconds:.1f} s."
            )
        )
