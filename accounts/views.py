from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.core.mail import send_mail
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.forms import (
    ApiTokenForm,
    DeleteCollectionForm,
    InvitationForm,
    MemberAddForm,
    RegistrationForm,
    RoleForm,
    TransferForm,
)
from accounts.models import ApiToken
from archive.models import (
    INVITATIONS_EMAILED_PER_DAY,
    Collection,
    Invitation,
    InvitationClosed,
    Membership,
    MembershipError,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

NEW_TOKEN_SESSION_KEY = "accounts:new_token"  # noqa: S105 (a session key name)
NEW_INVITATION_SESSION_KEY = "accounts:new_invitation"
EMAILED_INVITATION_VALID_FOR = timedelta(days=14)


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


@never_cache
@login_required
@require_safe
def members(request: HttpRequest, slug: str) -> HttpResponse:
    collection = _managed_collection(request, slug)
    return _render_members(request, collection)


def _render_members(
    request: HttpRequest,
    collection: Collection,
    add_form: MemberAddForm | None = None,
    invitation_form: InvitationForm | None = None,
    transfer_form: TransferForm | None = None,
    delete_form: DeleteCollectionForm | None = None,
    status: int = 200,
) -> HttpResponse:
    roster = collection.roster()
    history = Paginator(collection.events.for_history(), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    # A link just made is shown once, on the page the redirect lands on: only its hash is kept.
    new_link = request.session.pop(NEW_INVITATION_SESSION_KEY, None)
    if new_link is not None and new_link.get("collection") != collection.pk:
        new_link = None
    context = {
        "collection": collection,
        "members": roster,
        "add_form": add_form or MemberAddForm(),
        "transfer_form": transfer_form or TransferForm(collection=collection, roster=roster),
        "delete_form": delete_form or DeleteCollectionForm(collection=collection),
        "invitation_form": invitation_form or InvitationForm(),
        "invitations": collection.invitations.open().select_related("created_by"),
        "new_link": new_link,
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
        found, role = form.cleaned_data["username"], form.cleaned_data["role"]
        if isinstance(found, str):
            return _invite_by_email(request, collection, form, found, role)
        try:
            collection.add_member(found, role, actor=request.user)
        except MembershipError as exc:
            form.add_error("username", str(exc))
        else:
            messages.success(
                request, f"{found.get_username()} joined “{collection.title}” as {role}."
            )
            return redirect("accounts:members", slug=collection.slug)
    return _render_members(request, collection, add_form=form, status=400)


def _invite_by_email(
    request: HttpRequest, collection: Collection, form: MemberAddForm, address: str, role: str
) -> HttpResponse:
    """Send ``address`` an invitation: the same answer whether or not an account uses it."""
    since = timezone.now() - timedelta(days=1)
    emailed = collection.invitations.exclude(email="").filter(created_at__gte=since).count()
    if emailed >= INVITATIONS_EMAILED_PER_DAY:
        # A bound on how much mail one collection's owners can make Scholion send.
        form.add_error(
            "username",
            f"This collection has e-mailed {INVITATIONS_EMAILED_PER_DAY} invitations in the "
            "last day; send more tomorrow, or make an invitation link below and share it.",
        )
        return _render_members(request, collection, add_form=form, status=400)
    invitation, key = Invitation.issue(
        collection,
        role=role,
        created_by=request.user,
        valid_for=EMAILED_INVITATION_VALID_FOR,
        email=address,
    )
    context = {
        "collection": collection,
        "inviter": request.user,
        "role": invitation.get_role_display().lower(),
        "link": request.build_absolute_uri(reverse("accounts:join", args=[key])),
        "expires_at": invitation.expires_at,
    }
    send_mail(
        subject=f"An invitation to join “{collection.title}” on Scholion",
        message=render_to_string("accounts/invitation_email.txt", context),
        from_email=None,
        recipient_list=[address],
    )
    messages.success(
        request,
        f"An invitation to join as {role} was e-mailed to {address}. They appear among the "
        "members once they accept it.",
    )
    return redirect("accounts:members", slug=collection.slug)


@login_required
@require_POST
def invitation_create(request: HttpRequest, slug: str) -> HttpResponse:
    collection = _managed_collection(request, slug)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        return _render_members(request, collection, invitation_form=form, status=400)
    invitation, key = Invitation.issue(
        collection,
        role=form.cleaned_data["role"],
        created_by=request.user,
        valid_for=form.cleaned_data["valid_for"],
        max_uses=form.cleaned_data["max_uses"],
    )
    request.session[NEW_INVITATION_SESSION_KEY] = {
        "collection": collection.pk,
        "uuid": str(invitation.uuid),
        "link": request.build_absolute_uri(reverse("accounts:join", args=[key])),
    }
    return redirect(reverse("accounts:members", args=[collection.slug]) + "#invitations")


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, slug: str, uuid) -> HttpResponse:
    collection = _managed_collection(request, slug)
    invitation = get_object_or_404(collection.invitations.all(), uuid=uuid)
    invitation.revoke(actor=request.user)
    messages.success(request, f"Invitation link {invitation.prefix}… is revoked.")
    return redirect(reverse("accounts:members", args=[collection.slug]) + "#invitations")


# --- Ownership, archiving, deleting --------------------------------------------------------


@login_required
@require_POST
def collection_transfer(request: HttpRequest, slug: str) -> HttpResponse:
    collection = _managed_collection(request, slug)
    form = TransferForm(request.POST, collection=collection, roster=collection.roster())
    if not form.is_valid():
        return _render_members(request, collection, transfer_form=form, status=400)
    new_owner = form.cleaned_data["new_owner"]
    try:
        collection.transfer_ownership(
            new_owner,
            actor=request.user,
            previous_owner_role=form.cleaned_data["previous_owner_role"],
        )
    except MembershipError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{new_owner.get_username()} now owns “{collection.title}”.")
    return _after_team_change(request, collection)


@login_required
@require_POST
def collection_archive(request: HttpRequest, slug: str) -> HttpResponse:
    collection = _managed_collection(request, slug)
    if collection.set_archived(True, actor=request.user):
        messages.success(
            request,
            f"“{collection.title}” is archived: it can be read and exported, and takes no new "
            "annotations or sources. Reopen it from this page.",
        )
    return redirect("accounts:members", slug=collection.slug)


@login_required
@require_POST
def collection_reopen(request: HttpRequest, slug: str) -> HttpResponse:
    collection = _managed_collection(request, slug)
    if collection.set_archived(False, actor=request.user):
        messages.success(request, f"“{collection.title}” is open to annotations again.")
    return redirect("accounts:members", slug=collection.slug)


@login_required
@require_POST
def collection_delete(request: HttpRequest, slug: str) -> HttpResponse:
    collection = _managed_collection(request, slug)
    form = DeleteCollectionForm(request.POST, collection=collection)
    if not form.is_valid():
        return _render_members(request, collection, delete_form=form, status=400)
    try:
        collection.delete_if_empty()
    except MembershipError as exc:
        messages.error(request, str(exc))
        return redirect("accounts:members", slug=collection.slug)
    messages.success(request, f"“{collection.title}” is deleted.")
    return redirect("archive:collection_list")


# --- Joining through an invitation ------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, key: str) -> HttpResponse:
    """Where an invitation link leads: join as the person logged in, or create an account
    (even when self-registration is off: the link is the invitation).

    Until the link is known to be open, the page names nothing: not the collection, not who
    made the link."""
    invitation = Invitation.objects.for_key(key)
    if invitation is None:
        return _no_referrer(
            render(
                request,
                "accounts/join_closed.html",
                {"reason": "This invitation link is not valid. Check that it was copied whole."},
                status=404,
            )
        )
    reason = invitation.closed_reason
    if reason is not None:
        return _no_referrer(
            render(request, "accounts/join_closed.html", {"reason": reason}, status=410)
        )
    collection = invitation.collection
    role = collection.role_of(request.user)
    form = None
    if request.user.is_authenticated:
        if request.method == "POST" and role is None:
            return _accept(request, invitation, request.user)
    else:
        form = RegistrationForm(request.POST or None, initial={"email": invitation.email})
        if request.method == "POST" and form.is_valid():
            with transaction.atomic():
                user = form.save()
                response = _accept(request, invitation, user, new_account=True)
                if response.status_code != 302:
                    # Closed between the page and the form: the account is not made either.
                    transaction.set_rollback(True)
            return response
    context = {
        "invitation": invitation,
        "collection": collection,
        "current_role": role,
        "form": form,
    }
    status = 400 if form is not None and form.errors else 200
    return _no_referrer(render(request, "accounts/join.html", context, status=status))


def _accept(request: HttpRequest, invitation: Invitation, user, new_account: bool = False):
    try:
        invitation.accept(user)
    except InvitationClosed as exc:
        return _no_referrer(
            render(request, "accounts/join_closed.html", {"reason": str(exc)}, status=410)
        )
    except MembershipError:
        # Joined some other way meanwhile: nothing is spent, and they are in.
        pass
    if new_account:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    collection = invitation.collection
    greeting = f"Welcome, {user.get_username()}. " if new_account else ""
    messages.success(
        request,
        f"{greeting}You joined “{collection.title}” as {invitation.get_role_display().lower()}.",
    )
    return redirect(collection)


def _no_referrer(response: HttpResponse) -> HttpResponse:
    # The page's address holds the key: a request it makes (style sheets, the next page)
    # names only the origin in its Referer. Not "no-referrer": under it browsers send
    # "Origin: null" with the form, which CSRF protection rightly refuses.
    response["Referrer-Policy"] = "strict-origin"
    return response


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
