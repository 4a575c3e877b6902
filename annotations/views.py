from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from annotations.citekeys import link_note_keys
from annotations.forms import COLOUR_CHOICES, CodeAddForm, CodeFieldsForm, CodeRenameForm
from annotations.models import (
    Annotation,
    Code,
    CodebookError,
    CodebookJob,
    TaggedAnnotation,
    _passages,
)
from annotations.reading import reading_page
from archive.models import Collection

REVISIONS_PER_PAGE = 25


def history(request: HttpRequest, uuid) -> HttpResponse:
    annotation = get_object_or_404(
        Annotation.objects.visible_to(request.user).with_related(), uuid=uuid
    )
    # Each earlier version can hold a note of 100,000 characters: a page of them at a time.
    revisions = Paginator(annotation.revisions.select_related("edited_by"), REVISIONS_PER_PAGE)
    link_note_keys([annotation], request.user)
    return render(
        request,
        "annotations/history.html",
        {"annotation": annotation, "revisions": revisions.get_page(request.GET.get("page"))},
    )


@require_safe
def source_detail(request: HttpRequest, uuid) -> HttpResponse:
    return reading_page(request, uuid)


@require_safe
def source_passage(request: HttpRequest, uuid, start: int, end: int) -> HttpResponse:
    """A stable link to any passage: the reading page with that range marked."""
    return reading_page(request, uuid, mark=(start, end))


# --- The codebook ---------------------------------------------------------------------------
# Whoever may read the collection reads its codebook; its editors and owners (and curators)
# change it. A collection the user cannot see is a 404; a change by a reader is a 403.


def _readable_collection(request: HttpRequest, slug: str) -> Collection:
    return get_object_or_404(Collection.objects.visible_to(request.user), slug=slug)


def _may_curate(user, collection: Collection) -> bool:
    return Collection.objects.writable_by(user).filter(pk=collection.pk).exists()


def _curated_collection(request: HttpRequest, slug: str) -> Collection:
    collection = _readable_collection(request, slug)
    if not _may_curate(request.user, collection):
        raise PermissionDenied("Only the collection's editors and owners change its codebook.")
    return collection


def _code(request: HttpRequest, collection: Collection, tag: str) -> Code:
    return get_object_or_404(Code.objects.of(collection).with_counts(request.user), tag__slug=tag)


def _to_codebook(collection: Collection, code: Code | None = None) -> HttpResponse:
    url = reverse("annotations:codebook", args=[collection.slug])
    return redirect(f"{url}#code-{code.tag.slug}" if code else url)


@require_safe
def codebook(request: HttpRequest, slug: str) -> HttpResponse:
    collection = _readable_collection(request, slug)
    return _render_codebook(request, collection)


def _render_codebook(
    request: HttpRequest, collection: Collection, add_form: CodeAddForm | None = None, status=200
) -> HttpResponse:
    tree = Code.tree(list(Code.objects.of(collection).with_counts(request.user)))
    personal = (
        TaggedAnnotation.objects.filter(
            content_object__in=Annotation.objects.visible_to(request.user)
            .filter(collection=collection)
            .values("pk")
        )
        .exclude(tag__codes__collection=collection)
        .values_list("tag__name", "tag__slug")
        .annotate(passages=Count("pk"))
        .order_by("tag__name")
    )
    may_curate = _may_curate(request.user, collection)
    history = collection.events.of_codebook().for_history()[:20]
    jobs = list(CodebookJob.objects.for_codebook(collection)) if may_curate else []
    # A code the worker is changing offers no tools until it is done (they would be refused).
    busy = {pk for job in jobs if not job.finished for pk in (job.code_id, job.other_id)}
    return render(
        request,
        "annotations/codebook.html",
        {
            "collection": collection,
            "tree": tree,
            "personal": list(personal),
            "may_curate": may_curate,
            "add_form": add_form or CodeAddForm(codes=tree),
            "colours": COLOUR_CHOICES,
            "history": history,
            # Changes the worker makes: for those who may curate (another change to their
            # codes waits for them), without counts (each curator reads their own passages).
            "jobs": jobs,
            "busy": busy,
        },
        status=status,
    )


@login_required
@require_POST
def code_add(request: HttpRequest, slug: str) -> HttpResponse:
    collection = _curated_collection(request, slug)
    tree = Code.tree(list(Code.objects.of(collection)))
    form = CodeAddForm(request.POST, codes=tree)
    if form.is_valid():
        try:
            code = Code.add(
                collection,
                form.cleaned_data["name"],
                actor=request.user,
                description=form.cleaned_data["description"],
                colour=form.cleaned_data["colour"],
                parent=form.cleaned_data["parent"],
            )
        except CodebookError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"“{code.tag.name}” is now in the codebook.")
            return _to_codebook(collection, code)
    return _render_codebook(request, collection, add_form=form, status=400)


@login_required
@require_POST
def code_edit(request: HttpRequest, slug: str, tag: str) -> HttpResponse:
    collection = _curated_collection(request, slug)
    code = _code(request, collection, tag)
    form = CodeFieldsForm(request.POST, codes=Code.tree(list(Code.objects.of(collection))))
    if not form.is_valid():
        problems = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, f"“{code.tag.name}” was not changed: {problems}")
        return _to_codebook(collection, code)
    try:
        changed = code.edit(
            actor=request.user,
            description=form.cleaned_data["description"],
            colour=form.cleaned_data["colour"],
            parent=form.cleaned_data["parent"],
        )
    except CodebookError as exc:
        messages.error(request, f"“{code.tag.name}” was not changed: {exc}")
    else:
        if changed:
            messages.success(request, f"Changed the {' and '.join(changed)} of “{code.tag.name}”.")
        else:
            messages.info(request, f"“{code.tag.name}” was already so: nothing changed.")
    return _to_codebook(collection, code)


@login_required
@require_POST
def code_rename(request: HttpRequest, slug: str, tag: str) -> HttpResponse:
    collection = _curated_collection(request, slug)
    code = _code(request, collection, tag)
    old = code.tag.name
    form = CodeRenameForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, f"“{old}” was not renamed: {problems}")
        return _to_codebook(collection, code)
    new_name = form.cleaned_data["name"]
    try:
        if CodebookJob.needed_for(code.passage_count) and new_name.strip() != old:
            return redirect(CodebookJob.submit_rename(code, new_name, actor=request.user))
        moved = code.rename(new_name, actor=request.user)
    except CodebookError as exc:
        messages.error(request, f"“{old}” was not renamed: {exc}")
    else:
        messages.success(
            request,
            f"Renamed “{old}” to “{code.tag.name}” on {_passages(moved)} of this collection.",
        )
    return _to_codebook(collection, code)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def code_merge(request: HttpRequest, slug: str, tag: str) -> HttpResponse:
    """GET: the confirmation (each code's passages, which survives); POST: merge."""
    collection = _curated_collection(request, slug)
    code = _code(request, collection, tag)
    params = request.POST if request.method == "POST" else request.GET
    other_slug = params.get("with", "")
    other = (
        Code.objects.of(collection).with_counts(request.user).filter(tag__slug=other_slug).first()
    )
    if other is None or other.pk == code.pk:
        messages.error(request, "Choose another code of this codebook to merge with.")
        return _to_codebook(collection, code)
    pair = {code.tag.slug: code, other.tag.slug: other}
    if request.method == "POST":
        survivor = pair.get(request.POST.get("survivor", ""))
        if survivor is None:
            messages.error(request, "Choose which of the two codes survives.")
            return redirect(f"{request.path}?with={other_slug}")
        merged = other if survivor is code else code
        try:
            if CodebookJob.needed_for(merged.passage_count):
                return redirect(CodebookJob.submit_merge(survivor, merged, actor=request.user))
            moved = survivor.merge(merged, actor=request.user)
        except CodebookError as exc:
            messages.error(request, f"“{merged.tag.name}” was not merged: {exc}")
            return _to_codebook(collection, code)
        messages.success(
            request,
            f"Merged “{merged.tag.name}” into “{survivor.tag.name}”: {_passages(moved)} moved.",
        )
        return _to_codebook(collection, survivor)
    return render(
        request,
        "annotations/code_merge.html",
        {
            "collection": collection,
            "code": code,
            "other": other,
            "in_background": CodebookJob.needed_for(
                max(code.passage_count or 0, other.passage_count or 0)
            ),
            "inline_limit": settings.SCHOLION_CODEBOOK_INLINE_PASSAGES,
        },
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def code_delete(request: HttpRequest, slug: str, tag: str) -> HttpResponse:
    """A code that no passage carries goes at once; otherwise after a confirmation that says
    from how many passages it is removed (asked again if that number changed meanwhile)."""
    collection = _curated_collection(request, slug)
    code = _code(request, collection, tag)
    passages = code.passage_count or 0
    if request.method == "POST" and (
        passages == 0 or request.POST.get("confirmed") == str(passages)
    ):
        name = code.tag.name
        try:
            if CodebookJob.needed_for(passages):
                return redirect(CodebookJob.submit_delete(code, actor=request.user))
            removed = code.remove(actor=request.user)
        except CodebookError as exc:
            messages.error(request, f"“{name}” was not deleted: {exc}")
            return _to_codebook(collection, code)
        messages.success(
            request,
            f"Deleted the code “{name}”"
            + (f" and removed it from {_passages(removed)}." if removed else "."),
        )
        return _to_codebook(collection)
    if request.method == "POST":
        return redirect("annotations:code_delete", slug=collection.slug, tag=code.tag.slug)
    return render(
        request,
        "annotations/code_delete.html",
        {
            "collection": collection,
            "code": code,
            "passages": passages,
            "in_background": CodebookJob.needed_for(passages),
        },
    )


# --- Codebook changes made by the worker (CodebookJob) ----------------------------------------


def _own_codebook_job(request: HttpRequest, job_uuid) -> CodebookJob:
    return get_object_or_404(
        CodebookJob.objects.visible_to(request.user).select_related("collection"), uuid=job_uuid
    )


@login_required
@require_safe
def codebook_job(request: HttpRequest, job_uuid) -> HttpResponse:
    """A codebook change's page; its script (annotations/codebook_job.js) keeps it current."""
    job = _own_codebook_job(request, job_uuid)
    return render(request, "annotations/codebook_job.html", {"job": job})


@never_cache
@login_required
@require_safe
def codebook_job_status(request: HttpRequest, job_uuid) -> JsonResponse:
    return JsonResponse(_own_codebook_job(request, job_uuid).status())


@login_required
@require_POST
def codebook_job_retry(request: HttpRequest, job_uuid) -> HttpResponse:
    """Run a stopped change again: it goes on from its last completed batch."""
    job = _own_codebook_job(request, job_uuid)
    if job.retry():
        messages.success(request, "The change is queued again.")
    else:
        messages.info(request, "This change has not stopped, so there is nothing to try again.")
    return redirect(job)
