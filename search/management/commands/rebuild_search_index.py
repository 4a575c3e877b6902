from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from search.index import rebuild_index


class Command(BaseCommand):
    help = (
        "Rebuild the full-text search index from scratch: every source's metadata and text"
        " layer and every annotation's quote, note and tags. Runs in one transaction, so"
        " searches keep working on the old index meanwhile. Needed after installing the"
        " search app on a database that already holds sources, or after a change to how"
        " search.index splits text into words."
    )

    def handle(self, *args, **options):
        started = time.perf_counter()
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
