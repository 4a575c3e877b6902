from __future__ import annotations

import json
import uuid as uuid_module

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from archive.blobstore import archive_storage, signed_download_url
from archive.forms import ArchiveForm, CaptureForm, CollectionForm, SourceMetadataForm
from archive.ingest import Archived, ArchiveError, ReadOnWorker, archive_chunks
from archive.models import Capture, Collection, Source, UploadJob
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
def source_original(request: HttpRequest, uuid) -> HttpResponseBase:
    source = get_object_or_404(Source.objects.visible_to(request.user), uuid=uuid)
    return _stored_download(
        source.blob_name,
        sha256=source.sha256,
        filename=source.original_filename or source.sha256,
        content_type=source.media_type,
        as_attachment=True,
    )


@login_required
@require_http_methods(["GET", "POST"])
def source_archive(request: HttpRequest) -> HttpResponse:
    """Archive a source: capture web addresses (first), or upload a file or paste text."""
    capture_form = CaptureForm(user=request.user, initial={"urls": request.GET.get("url", "")})
    form = ArchiveForm(user=request.user)
    if request.method == "POST" and "capture-urls" in request.POST:
        capture_form = CaptureForm(request.POST, user=request.user)
        if capture_form.is_valid():
            data = capture_form.cleaned_data
            for url in data["urls"]:
                Capture.submit(
                    request.user,
                    url,
                    collection=data["collection"],
                    whole_page=data["whole_page"],
                )
            count = len(data["urls"])
            messages.success(
                request,
                f"{count} {'capture' if count == 1 else 'captures'} queued: progress shows below.",
            )
            return redirect("archive:source_archive")
    elif request.method == "POST":
        form = ArchiveForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            try:
                archived = _archive_upload(request, form.cleaned_data)
            except ReadOnWorker as deferred:
                return redirect(deferred.job)
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
    context = {
        "capture_form": capture_form,
        "form": form,
        "captures": Capture.objects.visible_to(request.user).select_related("source")[
            :RECENT_CAPTURES
        ],
        "uploads": UploadJob.objects.visible_to(request.user).needing_attention()[:RECENT_UPLOADS],
        "bookmarklet": bookmarklet(request),
    }
    return render(request, "archive/source_archive.html", context)


RECENT_CAPTURES = 10
RECENT_UPLOADS = 10


def _archive_upload(request: HttpRequest, data: dict) -> Archived:
    upload = data.get("file")
    if upload is not None:
        return archive_chunks(
            upload.chunks(),
            user=request.user,
            via=Source.Via.UPLOAD,
            filename=upload.name,
            declared_type=upload.content_type or "",
            original_url=data["original_url"],
            metadata={"title": data["title"]},
            collection=data["collection"],
            whole_page=data["whole_page"],
            # A file that would keep the request past its timeout is read on the worker.
            read_budget=settings.SCHOLION_READ_REQUEST_SECONDS,
        )
    return archive_chunks(
        iter([data["text"].encode("utf-8")]),
        user=request.user,
        via=Source.Via.PASTE,
        declared_type="text/plain; charset=utf-8",
        original_url=data["original_url"],
        metadata={"title": data["title"]},
        collection=data["collection"],
        read_budget=settings.SCHOLION_READ_REQUEST_SECONDS,
    )


def bookmarklet(request: HttpRequest) -> str:
    """A link to keep in the browser's bookmarks: it opens this page with the address of the
    page being read filled in (the page is captured only when the person confirms)."""
    target = request.build_absolute_uri(reverse("archive:source_archive"))
    return (
        "javascript:void(window.open("
        f"{json.dumps(target + '?url=')}+encodeURIComponent(location.href)))"
    )


# --- Captures --------------------------------------------------------------------------------


@login_required
@require_safe
def capture_list(request: HttpRequest) -> HttpResponse:
    """My captures: every web address the person asked to archive, and what became of it."""
    captures = Capture.objects.visible_to(request.user).select_related("source", "collection")
    page = Paginator(captures, 25).get_page(request.GET.get("page"))
    return render(request, "archive/capture_list.html", {"page": page})


def _readable_capture(request: HttpRequest, capture_uuid) -> Capture:
    return get_object_or_404(
        Capture.objects.readable_by(request.user).select_related("source", "collection", "user"),
        uuid=capture_uuid,
    )


@require_safe
def capture_detail(request: HttpRequest, capture_uuid) -> HttpResponse:
    """One capture: its state while it runs, then its provenance and downloads."""
    capture = _readable_capture(request, capture_uuid)
    return render(
        request,
        "archive/capture_detail.html",
        {"capture": capture, "mine": capture.user_id == request.user.pk},
    )


MAX_STATUS_UUIDS = 50


@never_cache
@login_required
@require_safe
def capture_status(request: HttpRequest) -> JsonResponse:
    """The state of the person's own captures named in ``?uuid=`` (for the pages' script)."""
    wanted = []
    for value in request.GET.getlist("uuid")[:MAX_STATUS_UUIDS]:
        try:
            wanted.append(uuid_module.UUID(value))
        except ValueError:
            continue
    captures = (
        Capture.objects.visible_to(request.user).filter(uuid__in=wanted).select_related("source")
    )
    return JsonResponse({"captures": [capture.status() for capture in captures]})


@login_required
@require_POST
def capture_retry(request: HttpRequest, capture_uuid) -> HttpResponse:
    """Run a failed or stopped capture again, as its requester."""
    capture = get_object_or_404(Capture.objects.visible_to(request.user), uuid=capture_uuid)
    if capture.retry():
        messages.success(request, f"The capture of {capture.url} is queued again.")
    else:
        messages.info(request, "This capture has not failed or stopped: there is nothing to retry.")
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect(capture)


@require_safe
def capture_wacz(request: HttpRequest, capture_uuid) -> HttpResponseBase:
    capture = _readable_capture(request, capture_uuid)
    if not capture.wacz_name:
        raise Http404("This capture has no web archive.")
    return _stored_download(
        capture.wacz_name,
        sha256=capture.wacz_sha256,
        filename=f"{capture.source.citation_key if capture.source else capture.uuid}.wacz",
        content_type="application/wacz",
        as_attachment=True,
    )


@require_safe
def capture_screenshot(request: HttpRequest, capture_uuid) -> HttpResponseBase:
    capture = _readable_capture(request, capture_uuid)
    if not capture.screenshot_name:
        raise Http404("This capture has no screenshot.")
    return _stored_download(
        capture.screenshot_name,
        sha256=capture.screenshot_sha256,
        filename=f"{capture.uuid}.png",
        content_type="image/png",
        as_attachment=False,
    )


def _stored_download(
    name: str, *, sha256: str, filename: str, content_type: str, as_attachment: bool
) -> HttpResponseBase:
    """Archived bytes as a download: immutable (named by their hash), and sandboxed, since an
    original may be hostile HTML that must never run on this origin.

    From an object store that signs URLs, a download is a redirect to a short-lived signed
    URL at which the store serves it (as an attachment), so that no web server reads a large
    original; an image shown in a page is streamed from here, on this origin."""
    if as_attachment:
        url = signed_download_url(name, filename=filename, content_type=content_type)
        if url:
            redirect = HttpResponseRedirect(url)
            redirect["Cache-Control"] = "private, no-store"  # the URL expires
            return redirect
    response = FileResponse(
        archive_storage().open(name, "rb"),
        as_attachment=as_attachment,
        filename=filename,
        content_type=content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    response["ETag"] = f'"{sha256}"'
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


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


@login_required
@require_http_methods(["GET", "POST"])
def collection_create(request: HttpRequest) -> HttpResponse:
    """Anyone signed in starts a collection of their own, and owns it."""
    form = CollectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        collection = Collection.create_owned_by(request.user, **form.cleaned_data)
        messages.success(
            request,
            f"“{collection.title}” is created, and you are its owner. "
            "Archive sources into it, or add members.",
        )
        return redirect(collection)
    status = 400 if form.errors else 200
    return render(request, "archive/collection_form.html", {"form": form}, status=status)


def _own_upload(request: HttpRequest, job_uuid) -> UploadJob:
    return get_object_or_404(
        UploadJob.objects.visible_to(request.user).select_related("source"), uuid=job_uuid
    )


@login_required
@require_safe
def upload_job(request: HttpRequest, job_uuid) -> HttpResponse:
    """An uploaded file whose text layer the worker is preparing; its script
    (archive/upload_job.js) follows it and offers the source once it exists."""
    return render(request, "archive/upload_job.html", {"job": _own_upload(request, job_uuid)})


@never_cache
@login_required
@require_safe
def upload_job_status(request: HttpRequest, job_uuid) -> JsonResponse:
    return JsonResponse(_own_upload(request, job_uuid).status())


@login_required
@require_POST
def upload_job_retry(request: HttpRequest, job_uuid) -> HttpResponse:
    job = _own_upload(request, job_uuid)
    if job.retry():
        messages.success(request, "The file is queued to be read again.")
    else:
        messages.info(request, "Reading this file has not stopped: there is nothing to retry.")
    return redirect(job)
