"""What the reading page shows: the text layer with every visible annotation on it."""

from __future__ import annotations

from django.http import HttpRequest

from annotations.models import Annotation
from archive.cite import bibtex, plain_reference
from archive.models import Source
from archive.reader import render_text_layer


def reading_context(request: HttpRequest, source: Source, mark: tuple[int, int] | None = None):
    annotations = list(
        Annotation.objects.visible_to(request.user)
        .filter(source=source)
        .with_related()
        .in_text_order()
    )
    authors = sorted({a.author.get_username() for a in annotations})
    tags = sorted({t.name for a in annotations for t in a.tags.all()}, key=str.lower)
    last_check = source.fixity_checks.first() if source.fixity_checked_at else None
    permalink = request.build_absolute_uri(source.get_absolute_url())
    return {
        "source": source,
        "reference": plain_reference(source, permalink),
        "bibtex": bibtex(source, permalink),
        "text_html": render_text_layer(source.text, source.blocks, annotations, mark=mark),
        "annotations": annotations,
        "authors": authors,
        "tags": tags,
        "last_check": last_check,
        "can_annotate": Annotation.can_annotate(request.user, source),
        "can_edit_metadata": source.can_edit_metadata(request.user),
        "collections": source.collections.all()
        if request.user.is_staff
        else source.collections.visible_to(request.user),
    }
