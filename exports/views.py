from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from accounts.decorators import accepts_api_token
from archive.models import Collection
from exports.bag import bag_chunks
from exports.formats import FORMATS, buffered, text_writer
from exports.forms import FILTER_PARAMETERS, ImportForm, export_scope
from exports.importer import import_package, may_import
from exports.package import PackageError, open_package
from exports.scope import ExportScope


def base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def export_response(
    scope: ExportScope, fmt: str, *, bom: bool = False, head: bool = False
) -> StreamingHttpResponse:
    """A download of the export, streamed as it is written (only its headers for HEAD)."""
    spec = FORMATS[fmt]
    if head:
        body: Iterator[bytes] = iter(())
    elif spec.text is None:
        body = bag_chunks(scope)
    else:
        text = buffered(text_writer(fmt, bom=bom)(scope))
        body = (chunk.encode("utf-8") for chunk in text)
    response = StreamingHttpResponse(body, content_type=spec.content_type)
    response["Content-Disposition"] = (
        f'attachment; filename="{scope.collection.slug}{spec.filename}"'
    )
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


@accepts_api_token
@require_safe
def download(request: HttpRequest, slug: str, fmt: str) -> HttpResponse:
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
    return export_response(
        scope, fmt, bom=request.GET.get("bom") == "1", head=request.method == "HEAD"
    )


@login_required
@require_http_methods(["GET", "POST"])
def import_view(request: HttpRequest) -> HttpResponse:
    if not may_import(request.user):
        raise PermissionDenied("Only curators and collection owners may import packages.")
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["package"]
        try:
            with open_package(upload.file) as package:
                result = import_package(package, importer=request.user)
        except PackageError as exc:
            form.add_error("package", f"Nothing was imported: {exc}")
        else:
            messages.success(request, result.summary())
            return redirect(result.collection)
    status = 400 if form.errors else 200
    return render(request, "exports/import.html", {"form": form}, status=status)
