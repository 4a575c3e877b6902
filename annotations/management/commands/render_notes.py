"""Render every note's stored forms again (``Annotation.note_rendered``/``note_plain``,
``Comment.note_rendered``), in batches: after a change to annotations.markdown (what the
sanitiser allows, how a citation is marked), which stored HTML does not follow by itself."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import models

from annotations.markdown import render_note
from annotations.models import Annotation, Comment

BATCH = 500


def render_stale(model: type[models.Model], plain: bool) -> int:
    """Store the rendering of every note of ``model`` whose stored one differs from what its
    text renders to now; the number changed. Memory stays flat: a batch of rows at a time."""
    fields = ["note_rendered", "note_plain"] if plain else ["note_rendered"]
    changed, last = 0, 0
    while True:
        batch = list(
            model._default_manager.filter(pk__gt=last)
            .order_by("pk")
            .only("pk", "note", *fields)[:BATCH]
        )
        if not batch:
            return changed
        stale = []
        for row in batch:
            rendered = render_note(row.note)  # type: ignore[attr-defined]
            now = {"note_rendered": rendered.html, "note_plain": rendered.plain}
            if any(getattr(row, name) != now[name] for name in fields):
                for name in fields:
                    setattr(row, name, now[name])
                stale.append(row)
        model._default_manager.bulk_update(stale, fields)
        changed += len(stale)
        last = batch[-1].pk


class Command(BaseCommand):
    help = (
        "Render every note and reply again into the HTML and plain text the pages show, "
        "writing only those that changed. Run it after upgrading a release that changes how "
        "notes are rendered."
    )

    def handle(self, *args, **options):
        annotations = render_stale(Annotation, plain=True)
        comments = render_stale(Comment, plain=False)
        self.stdout.write(
            f"{annotations} annotation note(s) and {comments} reply or source note(s) rendered"
            " again; the others were up to date."
        )
