from __future__ import annotations

import csv
from collections.abc import Iterator
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.decorators import accepts_api_token
from annotations.models import Code
from annotations.revision_cache import revision_cache, revision_cache_key
from archive.blobstore import signed_download_url
from archive.models import Collection
from exports.formats import FORMATS, binary_writer, buffered, neutralise, text_writer
from exports.forms import FILTER_PARAMETERS, HypothesisImportForm, ImportForm, export_scope
from exports.hypothesis import HypothesisError, read_file
from exports.importer import may_import
from exports.models import ExportJob, ImportJob, export_storage
from exports.prepared import fits_in_request
from exports.scope import ExportScope


def base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def export_response(
    scope: ExportScope,
    fmt: str,
    *,
    bom: bool = False,
    head: bool = False,
    keep_as: str | None = None,
) -> StreamingHttpResponse:
    """A download of the export, streamed as it is written (only its headers for HEAD),
    and kept under ``keep_as`` if it is short enough (kept_while_sent)."""
    spec = FORMATS[fmt]
    if head:
        body: Iterator[bytes] = iter(())
    elif spec.text is None:
        body = binary_writer(fmt)(scope)
    else:
        text = buffered(text_writer(fmt, bom=bom)(scope))
        body = (chunk.encode("utf-8") for chunk in text)
    if keep_as and not head:
        body = kept_while_sent(body, keep_as, settings.SCHOLION_EXPORT_CACHE_BYTES)
    return download_headers(StreamingHttpResponse(body), scope.collection.slug, fmt)


def download_headers(response: StreamingHttpResponse, slug: str, fmt: str) -> StreamingHttpResponse:
    spec = FORMATS[fmt]
    response["Content-Type"] = spec.content_type
    response["Content-Disposition"] = f'attachment; filename="{slug}{spec.filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_safe
def export_menu(request: HttpRequest, slug: str) -> HttpResponse:
    """The collection page's export form: send the chosen format's download, filters kept."""
    collection = get_object_or_404(Collection.objects.visible_to(request.user), slug=slug)
    fmt = request.GET.get("format", "")
    if fmt not in FORMATS:
        return redirect(collection)
    query = [(k, v) for k in (*FILTER_PARAMETERS, "bom") for v in request.GET.getlist(k) if v]
    url = f"{request.path}{fmt}"
    return redirect(url + ("?" + urlencode(query) if query else ""))


def kept_while_sent(body: Iterator[bytes], key: str, limit: int) -> Iterator[bytes]:
    """``body``, chunk by chunk; once it is all sent, kept under ``key`` if it came to at
    most ``limit`` bytes. A longer one is let go as soon as it passes the limit, so memory
    stays bounded however large the export."""
    kept: list[bytes] | None = []
    size = 0
    for chunk in body:
        if kept is not None:
            size += len(chunk)
            if size <= limit:
                kept.append(chunk)
            else:
                kept = None
        yield chunk
    if kept is not None:
        revision_cache().set(key, b"".join(kept))


@accepts_api_token
@require_safe
def download(request: HttpRequest, slug: str, fmt: str) -> HttpResponse | StreamingHttpResponse:
    """A download of the collection in ``fmt``, as the reader may see it, filters applied.

    Speed device (bench/NOTES.md, issue 28): an export of at most
    SCHOLION_EXPORT_CACHE_BYTES is kept once it is sent, under the content revision, the
    reader and the URL (annotations.revision_cache); the same download asked again before
    anything changed is the kept bytes. The key is read first, so a kept export is one that
    passed the access check at its revision.
    """
    head = request.method == "HEAD"
    key = None if head else revision_cache_key(request, f"export-{fmt}")
    kept = revision_cache().get(key) if key else None
    if kept is not None:
        return download_headers(StreamingHttpResponse(iter([kept])), slug, fmt)
    collection = get_object_or_404(
        Collection.objects.visible_to(request.user).select_related("owner"), slug=slug
    )
    if fmt not in FORMATS:
        raise Http404(f"No export format {fmt!r}: use one of {', '.join(FORMATS)}.")
    try:
        scope = export_scope(collection, request.user, base_url(request), request.GET)
    except ValidationError as exc:
        return HttpResponse(
            "The export filters are not valid:\n" + "\n".join(exc.messages) + "\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    if not fits_in_request(scope, fmt):
        # Too long to write before the request times out: the worker prepares it.
        query = request.GET.urlencode()
        url = reverse("exports:prepare", args=[collection.slug, fmt])
        return redirect(url + ("?" + query if query else ""))
    return export_response(scope, fmt, bom=request.GET.get("bom") == "1", head=head, keep_as=key)


def _export_filters(data) -> dict[str, list[str]]:
    return {k: [v for v in data.getlist(k) if v] for k in FILTER_PARAMETERS if data.getlist(k)}


@accepts_api_token  # a script asks with a read-write token: it starts work on the server
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def prepare_export(request: HttpRequest, slug: str, fmt: str) -> HttpResponse:
    """Ask the worker for an export (POST: the Export menu's button, or this page's); GET
    shows what will be prepared, where a download too large for a request leads."""
    collection = get_object_or_404(Collection.objects.visible_to(request.user), slug=slug)
    if fmt not in FORMATS:
        raise Http404(f"No export format {fmt!r}: use one of {', '.join(FORMATS)}.")
    data = request.POST if request.method == "POST" else request.GET
    filters = _export_filters(data)
    try:
        export_scope(collection, request.user, base_url(request), filters)
    except ValidationError as exc:
        return HttpResponse(
            "The export filters are not valid:\n" + "\n".join(exc.messages) + "\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    if request.method == "POST":
        job = ExportJob.submit(
            request.user,
            collection,
            fmt,
            filters=filters,
            bom=data.get("bom") == "1",
            base_url=base_url(request),
        )
        return redirect(job)
    hidden = [(k, v) for k, values in filters.items() for v in values]
    if data.get("bom") == "1":
        hidden.append(("bom", "1"))
    context = {"collection": collection, "format": FORMATS[fmt], "hidden": hidden}
    return render(request, "exports/prepare.html", context)


def _own_export(request: HttpRequest, job_uuid) -> ExportJob:
    return get_object_or_404(
        ExportJob.objects.visible_to(request.user).select_related("collection"), uuid=job_uuid
    )


@login_required
@require_safe
def export_job(request: HttpRequest, job_uuid) -> HttpResponse:
    """An export's status page; its script (exports/export_job.js) keeps it current."""
    return render(request, "exports/export_job.html", {"job": _own_export(request, job_uuid)})


@accepts_api_token
@never_cache
@login_required
@require_safe
def export_job_status(request: HttpRequest, job_uuid) -> JsonResponse:
    return JsonResponse(_own_export(request, job_uuid).status())


@accepts_api_token
@login_required
@require_safe
def export_job_file(request: HttpRequest, job_uuid) -> HttpResponseBase:
    """The prepared file, for its requester while they may still see the collection: a
    redirect to a short-lived signed URL from a bucket, else streamed from here."""
    job = _own_export(request, job_uuid)
    if not Collection.objects.visible_to(request.user).filter(pk=job.collection_id).exists():
        raise Http404("No such export.")
    if not job.ready:
        return redirect(job)  # its page says why: not written yet, failed or expired
    spec = FORMATS[job.format]
    storage = export_storage()
    url = signed_download_url(
        job.file_name,
        filename=job.download_filename,
        content_type=spec.content_type,
        storage=storage,
    )
    if url:
        response: HttpResponseBase = HttpResponseRedirect(url)
    else:
        response = FileResponse(
            storage.open(job.file_name, "rb"),
            as_attachment=True,
            filename=job.download_filename,
            content_type=spec.content_type,
        )
        response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


# Room in an upload's request for the multipart framing and the CSRF token around the file.
MULTIPART_ALLOWANCE = 64 * 1024


def announced_too_large(request: HttpRequest) -> bool:
    """Whether the request says its body is longer than an import may be. Django reads no
    more than CONTENT_LENGTH says, so refusing on it bounds what a request can make us read."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False  # Django reads such a body as empty
    return length > settings.SCHOLION_IMPORT_MAX_UPLOAD_BYTES + MULTIPART_ALLOWANCE


def _import_page(request: HttpRequest, form: ImportForm, status: int = 200) -> HttpResponse:
    context = {
        "form": form,
        "jobs": ImportJob.objects.recent_for(request.user),
        "max_upload_bytes": settings.SCHOLION_IMPORT_MAX_UPLOAD_BYTES,
    }
    return render(request, "exports/import.html", context, status=status)


# The CSRF middleware would read the whole body (to find the form's token) before the view
# could look at its length: the view is exempt from the middleware and checks CSRF itself,
# after refusing an oversized upload unread.
@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def import_view(request: HttpRequest) -> HttpResponse:
    if not may_import(request.user):
        raise PermissionDenied("Only curators and collection owners may import packages.")
    if request.method == "POST" and announced_too_large(request):
        return _import_page(request, ImportForm.refused_unread(request.user), status=413)
    return _import_upload(request)


@csrf_protect
def _import_upload(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        job = ImportJob.submit(
            request.user, form.cleaned_data["package"], collection=form.cleaned_data["collection"]
        )
        return redirect(job)
    return _import_page(request, form, status=400 if form.errors else 200)


def _visible_job(request: HttpRequest, job_uuid) -> ImportJob:
    return get_object_or_404(
        ImportJob.objects.visible_to(request.user).select_related("collection", "user"),
        uuid=job_uuid,
    )


@login_required
@require_safe
def import_job(request: HttpRequest, job_uuid) -> HttpResponse:
    """An import's status page; its script (exports/import_job.js) keeps it current."""
    return render(request, "exports/import_job.html", {"job": _visible_job(request, job_uuid)})


@never_cache
@login_required
@require_safe
def import_job_status(request: HttpRequest, job_uuid) -> JsonResponse:
    return JsonResponse(_visible_job(request, job_uuid).status())


@login_required
@require_POST
def import_job_retry(request: HttpRequest, job_uuid) -> HttpResponse:
    """Run a stopped import again from its stored package, as its requester."""
    job = _visible_job(request, job_uuid)
    if job.retry():
        messages.success(request, "The import is queued again.")
    else:
        messages.info(request, "This import has not stopped, so there is nothing to try again.")
    return redirect(job)


@require_safe
def codebook_csv(request: HttpRequest, slug: str) -> HttpResponse:
    """The collection's codebook (annotations.Code) as CSV, for whoever may read it."""
    collection = get_object_or_404(Collection.objects.visible_to(request.user), slug=slug)
    tree = Code.tree(list(Code.objects.of(collection).with_counts(request.user)))
    by_pk = {code.pk: code for code, _depth in tree}
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{collection.slug}-codebook.csv"'
    writer = csv.writer(response)
    writer.writerow(["name", "parent", "description", "colour", "passages"])
    for code, _depth in tree:
        parent = by_pk[code.parent_id].tag.name if code.parent_id else ""
        passages = code.passage_count or 0
        writer.writerow(
            [neutralise(code.tag.name), neutralise(parent), neutralise(code.description)]
            + [code.colour, passages]
        )
    return response


@login_required
@require_http_methods(["GET", "POST"])
def hypothesis_import(request: HttpRequest, slug: str) -> HttpResponse:
    """Upload a Hypothesis file to import into the collection (its editors, owners and
    curators). The file is checked at once, so that a wrong one is refused on this page;
    the import itself, which may anchor thousands of quotes, runs on the worker."""
    collection = get_object_or_404(Collection.objects.visible_to(request.user), slug=slug)
    if not Collection.objects.writable_by(request.user).filter(pk=collection.pk).exists():
        raise PermissionDenied("Only the collection's editors and owners may import into it.")
    form = HypothesisImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            read_file(upload.read())
        except HypothesisError as exc:
            form.add_error("file", f"Nothing was imported: {exc}")
        else:
            upload.seek(0)
            job = ImportJob.submit(
                request.user, upload, kind=ImportJob.Kind.HYPOTHESIS, collection=collection
            )
            return redirect(job)
    jobs = ImportJob.objects.hypothesis_into(collection, request.user)
    context = {"collection": collection, "form": form, "jobs": jobs}
    return render(
        request, "exports/hypothesis_import.html", context, status=400 if form.errors else 200
    )
