from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from annotations.citekeys import link_note_keys
from annotations.models import Annotation
from annotations.reading import reading_page


def history(request: HttpRequest, uuid) -> HttpResponse:
    annotation = get_object_or_404(
        Annotation.objects.visible_to(request.user).with_related(), uuid=uuid
    )
    revisions = annotation.revisions.select_related("edited_by")
    link_note_keys([annotation], request.user)
    return render(
        request,
        "annotations/history.html",
        {"annotation": annotation, "revisions": revisions},
    )


@require_safe
def source_detail(request: HttpRequest, uuid) -> HttpResponse:
    return reading_page(request, uuid)


@require_safe
def source_passage(request: HttpRequest, uuid, start: int, end: int) -> HttpResponse:
    """A stable link to any passage: the reading page with that range marked."""
    return reading_page(request, uuid, mark=(start, end))
