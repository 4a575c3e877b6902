"""Who belongs to a collection, and the rules for changing that.

A collection's owners are its ``Collection.owner`` plus every member with the owner role. A
collection always keeps at least one owner; when ``Collection.owner`` steps down, the role of
record passes to the longest-standing remaining owner so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import transaction

from archive.models import Collection, Membership

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

ROLE_RANK = {
    Membership.Role.OWNER: 0,
    Membership.Role.EDITOR: 1,
    Membership.Role.ANNOTATOR: 2,
    Membership.Role.VIEWER: 3,
}


class MembershipError(Exception):
    """A membership change the rules refuse; the message says why, for the person asking."""


@dataclass(frozen=True)
class Member:
    user: AbstractBaseUser
    role: str

    @property
    def role_label(self) -> str:
        return Membership.Role(self.role).label


def roster(collection: Collection) -> list[Member]:
    """Everyone in the collection, owners first, in two queries whatever its size."""
    memberships = Membership.objects.filter(collection=collection).select_related("user")
    members = {m.user_id: Member(m.user, m.role) for m in memberships}
    if collection.owner_id not in members:
        members[collection.owner_id] = Member(collection.owner, Membership.Role.OWNER)
    elif members[collection.owner_id].role != Membership.Role.OWNER:
        # Collection.owner is an owner whatever its membership row says (see role_of).
        members[collection.owner_id] = Member(collection.owner, Membership.Role.OWNER)
    return sorted(
        members.values(),
        key=lambda m: (ROLE_RANK.get(m.role, len(ROLE_RANK)), m.user.get_username().lower()),
    )


def can_manage(collection: Collection, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Owners and curators add, re-role and remove members."""
    if getattr(user, "is_staff", False):
        return True
    return collection.role_of(user) == Membership.Role.OWNER


def find_user(username: str) -> AbstractBaseUser:
    """The account with this username.

    Never looked up by e-mail address: the owner who added someone by address would see their
    username on the roster, and the refusals would tell a known address from an unknown one.
    The username is what Scholion already shows of a person (beside their annotations).
    """
    username = username.strip()
    if not username:
        raise MembershipError("Give the person's username.")
    user = get_user_model().objects.filter(username=username).first()
    if user is not None:
        return user
    if "@" in username:
        # The same answer whether or not some account uses this address.
        raise MembershipError(
            f"No account has the username “{username}”. Members are added by username, not "
            "by e-mail address, so that an address never reveals whose account it is: ask them "
            "for their username."
        )
    raise MembershipError(
        f"No account has the username “{username}”. "
        "A curator can create one with `manage.py create_account`."
    )


def _validate_role(role: str) -> None:
    if role not in Membership.Role.values:
        raise MembershipError(
            f"“{role}” is not a role; choose one of {', '.join(Membership.Role.values)}."
        )


def _owner_ids(collection: Collection) -> set[int]:
    ids = set(
        Membership.objects.filter(collection=collection, role=Membership.Role.OWNER).values_list(
            "user_id", flat=True
        )
    )
    ids.add(collection.owner_id)
    return ids


def _locked(collection: Collection) -> Collection:
    # Lock the collection row so two owners demoting each other at once cannot both succeed.
    return Collection.objects.select_for_update().get(pk=collection.pk)


def _is_member(collection: Collection, user) -> bool:
    return (
        user.pk == collection.owner_id
        or Membership.objects.filter(collection=collection, user=user).exists()
    )


def _hand_over_ownership(collection: Collection, leaving) -> None:
    """Make another owner the collection's owner of record when ``leaving`` steps down."""
    if collection.owner_id != leaving.pk:
        return
    successor = (
        Membership.objects.filter(collection=collection, role=Membership.Role.OWNER)
        .exclude(user=leaving)
        .order_by("pk")
        .first()
    )
    if successor is None:  # guarded by the last-owner checks; never leave a collection ownerless
        raise MembershipError("The collection would have no owner.")
    collection.owner_id = successor.user_id
    collection.save(update_fields=["owner"])


def _refuse_last_owner(collection: Collection, user, doing: str) -> None:
    owners = _owner_ids(collection)
    if owners == {user.pk}:
        raise MembershipError(
            f"{user.get_username()} is the last owner of “{collection.title}” and cannot be "
            f"{doing}. Make another member an owner first."
        )


def add_member(collection: Collection, user, role: str) -> Membership:
    _validate_role(role)
    with transaction.atomic():
        collection = _locked(collection)
        if _is_member(collection, user):
            raise MembershipError(
                f"{user.get_username()} is already a member of “{collection.title}”; "
                "change their role instead."
            )
        return Membership.objects.create(collection=collection, user=user, role=role)


def change_role(collection: Collection, user, role: str) -> None:
    _validate_role(role)
    with transaction.atomic():
        collection = _locked(collection)
        if not _is_member(collection, user):
            raise MembershipError(f"{user.get_username()} is not a member of “{collection.title}”.")
        if role != Membership.Role.OWNER:
            _refuse_last_owner(collection, user, "made " + Membership.Role(role).label.lower())
        Membership.objects.update_or_create(
            collection=collection, user=user, defaults={"role": role}
        )
        if role != Membership.Role.OWNER:
            _hand_over_ownership(collection, user)


def remove_member(collection: Collection, user) -> None:
    with transaction.atomic():
        collection = _locked(collection)
        if not _is_member(collection, user):
            raise MembershipError(f"{user.get_username()} is not a member of “{collection.title}”.")
        _refuse_last_owner(collection, user, "removed")
        Membership.objects.filter(collection=collection, user=user).delete()
        _hand_over_ownership(collection, user)
