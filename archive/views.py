from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from archive.forms import ArchiveForm, SourceMetadataForm
from archive.ingest import ArchiveError, archive_chunks
from archive.models import Collection, Source
from archive.signals import source_written

SOURCE_SORTS = {  # newest and oldest read in order from archive_source_archived_idx
    "newest": ("-archived_at", "-pk"),
    "oldest": ("archived_at", "pk"),
    "title": ("title", "pk"),
    "published": ("-date_published", "pk"),
}


@require_safe
def source_list(request: HttpRequest) -> HttpResponse:
    sort = request.GET.get("sort", "newest")
    order = SOURCE_SORTS.get(sort, SOURCE_SORTS["newest"])
    sources = Source.objects.visible_to(request.user).for_listing().order_by(*order)
    page = Paginator(sources, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "archive/source_list.html",
        {"page": page, "sort": sort, "sorts": SOURCE_SORTS},
    )


@require_safe
def source_original(request: HttpRequest, uuid) -> FileResponse:
    source = get_object_or_404(Source.objects.visible_to(request.user), uuid=uuid)
    filename = source.original_filename or f"{source.sha256}"
    response = FileResponse(
        source.open_original(),
        as_attachment=True,
        filename=filename,
        content_type=source.media_type,
    )
    # The original may be hostile HTML: never let it run on this origin.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    response["ETag"] = f'"{source.sha256}"'
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def source_archive(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ArchiveForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            upload = data.get("file")
            try:
                if upload is not None:
                    archived = archive_chunks(
                        upload.chunks(),
                        user=request.user,
                        via=Source.Via.UPLOAD,
                        filename=upload.name,
                        declared_type=upload.content_type or "",
                        original_url=data["original_url"],
                        metadata={"title": data["title"]},
                        collection=data["collection"],
                        whole_page=data["whole_page"],
                    )
                else:
                    archived = archive_chunks(
                        iter([data["text"].encode("utf-8")]),
                        user=request.user,
                        via=Source.Via.PASTE,
                        declared_type="text/plain; charset=utf-8",
                        original_url=data["original_url"],
                        metadata={"title": data["title"]},
                        collection=data["collection"],
                    )
            except ArchiveError as exc:
                form.add_error(None, str(exc))
            else:
                source = archived.source
                if archived.created:
                    messages.success(
                        request, archived.message + " Check the metadata taken from it."
                    )
                    return redirect("archive:source_edit", uuid=source.uuid)
                messages.info(request, archived.message)
                return redirect(source)
    else:
        form = ArchiveForm(user=request.user)
    return render(request, "archive/source_archive.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def source_edit(request: HttpRequest, uuid) -> HttpResponse:
    source = get_object_or_404(Source.objects.visible_to(request.user), uuid=uuid)
    if not source.can_edit_metadata(request.user):
        raise PermissionDenied("Only the archiver, collection editors and curators edit metadata.")
    form = SourceMetadataForm(request.POST or None, instance=source)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            source_written.send(Source, source=source)
        messages.success(request, "Metadata saved.")
        return redirect(source)
    return render(request, "archive/source_edit.html", {"form": form, "source": source})


@require_safe
def collection_list(request: HttpRequest) -> HttpResponse:
    collections = Collection.objects.visible_to(request.user).select_related("owner")
    return render(request, "archive/collection_list.html", {"collections": collections})
