from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from annotations.citekeys import link_note_keys
from annotations.models import Annotation
from annotations.reading import readable_sources, reading_context, render_reading_page


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
    source = get_object_or_404(readable_sources(request.user), uuid=uuid)
    return render_reading_page(request, reading_context(request, source))


@require_safe
def source_passage(request: HttpRequest, uuid, start: int, end: int) -> HttpResponse:
    """A stable link to any passage: the reading page with that range marked."""
    source = get_object_or_404(readable_sources(request.user), uuid=uuid)
    if not 0 <= start < end <= len(source.text):
        raise Http404("That passage is outside this source's text.")
    context = reading_context(request, source, mark=(start, end))
    context["passage"] = (start, end, source.text[start:end])
    return render_reading_page(request, context)
