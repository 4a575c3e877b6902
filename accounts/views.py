from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.forms import ApiTokenForm, MemberAddForm, RegistrationForm, RoleForm
from accounts.models import ApiToken
from archive.models import Collection, Membership, MembershipError

if TYPE_CHECKING:
    from django.contrib.auth.models import User

NEW_TOKEN_SESSION_KEY = "accounts:new_token"  # noqa: S105 (a session key name)


class AuthenticatedHttpRequest(HttpRequest):
    """The request a ``login_required`` view sees: its user is never anonymous."""

    user: User


# --- Self-registration ------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    if not settings.SCHOLION_SELF_REGISTRATION:
        raise Http404("Accounts are by invitation; ask a curator for one.")
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.get_username()}. Your account is ready.")
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "accounts/register.html", {"form": form})


# --- Collection members -----------------------------------------------------------------
# Only a collection's owners (and curators) reach its members page and its team actions;
# everyone else, members included, gets the 404 of a page that does not exist: the page
# shows who belongs, pending invitations and the team's history.

HISTORY_PAGE_SIZE = 50


def _managed_collection(request: HttpRequest, slug: str) -> Collection:
    return get_object_or_404(
        Collection.objects.managed_by(request.user).select_related("owner"), slug=slug
    )


@login_required
@require_safe
def members(request: HttpRequest, slug: str) -> HttpResponse:
    collection = _managed_collection(request, slug)
    return _render_members(request, collection, MemberAddForm())


def _render_members(
    request: HttpRequest, collection: Collection, add_form: MemberAddForm, status: int = 200
) -> HttpResponse:
    history = Paginator(collection.events.for_history(), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "collection": collection,
        "members": collection.roster(),
        "add_form": add_form,
        "roles": Membership.Role.choices,  # what RoleForm offers
        "history": history,
    }
    return render(request, "accounts/members.html", context, status=status)


@login_required
@require_POST
def member_add(request: HttpRequest, slug: str) -> HttpResponse:
    collection = _managed_collection(request, slug)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        user, role = form.cleaned_data["username"], form.cleaned_data["role"]
        try:
            collection.add_member(user, role, actor=request.user)
        except MembershipError as exc:
            form.add_error("username", str(exc))
        else:
            messages.success(
                request, f"{user.get_username()} joined “{collection.title}” as {role}."
            )
            return redirect("accounts:members", slug=collection.slug)
    return _render_members(request, collection, form, status=400)


def _member_user(username: str):
    return get_object_or_404(get_user_model(), username=username)


@login_required
@require_POST
def member_role(request: HttpRequest, slug: str, username: str) -> HttpResponse:
    collection = _managed_collection(request, slug)
    user = _member_user(username)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles listed.")
        return redirect("accounts:members", slug=collection.slug)
    try:
        collection.change_role(user, form.cleaned_data["role"], actor=request.user)
    except MembershipError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{user.get_username()} is now {form.cleaned_data['role']}.")
    return _after_team_change(request, collection)


@login_required
@require_POST
def member_remove(request: HttpRequest, slug: str, username: str) -> HttpResponse:
    collection = _managed_collection(request, slug)
    user = _member_user(username)
    try:
        collection.remove_member(user, actor=request.user)
    except MembershipError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{user.get_username()} was removed from “{collection.title}”.")
    return _after_team_change(request, collection)


def _after_team_change(request: HttpRequest, collection: Collection) -> HttpResponse:
    """Back to the members page, or, for an owner who just stepped down, to what they still see."""
    if Collection.objects.managed_by(request.user).filter(pk=collection.pk).exists():
        return redirect("accounts:members", slug=collection.slug)
    if Collection.objects.visible_to(request.user).filter(pk=collection.pk).exists():
        return redirect(collection)
    return redirect("archive:collection_list")


@login_required
@require_POST
def collection_leave(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    """A member leaves, from the collection's page (members do not see the members page)."""
    collection = get_object_or_404(Collection.objects.visible_to(request.user), slug=slug)
    if collection.role_of(request.user) is None:
        # Public, or seen as a curator: there is no membership to leave.
        messages.error(request, f"You are not a member of “{collection.title}”.")
        return redirect(collection)
    try:
        collection.remove_member(request.user, actor=request.user)
    except MembershipError as exc:
        messages.error(request, str(exc))
        return redirect(collection)
    messages.success(request, f"You left “{collection.title}”.")
    if Collection.objects.visible_to(request.user).filter(pk=collection.pk).exists():
        return redirect(collection)
    return redirect("archive:collection_list")


# --- API tokens -------------------------------------------------------------------------


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, key = ApiToken.issue(
            request.user, form.cleaned_data["name"], form.cleaned_data["scope"]
        )
        # Shown once, on the page the redirect lands on; only the hash is kept after that.
        request.session[NEW_TOKEN_SESSION_KEY] = {"uuid": str(token.uuid), "key": key}
        return redirect("accounts:tokens")
    new_token = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    context = {
        "form": form,
        "tokens": ApiToken.objects.filter(user=request.user),
        "new_token": new_token,
    }
    return render(request, "accounts/tokens.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def token_revoke(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    token = get_object_or_404(ApiToken.objects.filter(user=request.user), uuid=uuid)
    token.revoke()
    messages.success(request, f"Token “{token.name}” ({token.prefix}…) is revoked.")
    return redirect("accounts:tokens")
