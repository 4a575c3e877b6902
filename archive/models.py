from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import slugify

from archive.jobs import Job

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    from archive.divisions import Divisions

DATE_PUBLISHED_RE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")


def validate_date_published(value: str) -> None:
    if value and not DATE_PUBLISHED_RE.match(value):
        raise ValidationError("Write the date as YYYY, YYYY-MM or YYYY-MM-DD.")


def validate_doi(value: str) -> None:
    if value and not DOI_RE.match(value):
        raise ValidationError("A DOI looks like 10.1234/abc.def (without https://doi.org/).")


def validate_creators(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(c, str) and c.strip() for c in value):
        raise ValidationError("Creators must be a list of names.")


def validate_editors(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(c, str) and c.strip() for c in value):
        raise ValidationError("Editors must be a list of names.")


def normalise_isbn(value: str) -> str:
    """An ISBN as stored: without the hyphens and spaces people write it with, X capital."""
    return re.sub(r"[\s\-\u2010-\u2015]", "", value or "").upper()


def isbn_check_digit_ok(isbn: str) -> bool:
    """True for a normalised ISBN-10 or ISBN-13 whose check digit is right."""
    if re.fullmatch(r"\d{9}[\dX]", isbn):
        total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(isbn))
        return total % 11 == 0
    if re.fullmatch(r"97[89]\d{10}", isbn):
        total = sum((3 if i % 2 else 1) * int(c) for i, c in enumerate(isbn))
        return total % 10 == 0
    return False


def validate_isbn(value: str) -> None:
    if not value:
        return
    isbn = normalise_isbn(value)
    if not re.fullmatch(r"\d{9}[\dX]|97[89]\d{10}", isbn):
        raise ValidationError(
            "An ISBN has 10 or 13 digits (the last of an ISBN-10 may be X), e.g. 978-0-306-40615-7."
        )
    if not isbn_check_digit_ok(isbn):
        raise ValidationError(
            f"{value} is not a valid ISBN: its check digit is wrong. Check it against the book."
        )


class ISBNField(models.CharField):
    """An ISBN, checked (ISBN-10 or ISBN-13 with a right check digit) and stored normalised,
    however it was written: the form, the admin, an import and ingest all clean it here."""

    def to_python(self, value):
        value = super().to_python(value)
        return normalise_isbn(value) if value else value


class CollectionQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> CollectionQuerySet:
        """Collections the user may read: public ones, and those the user owns or belongs to."""
        if getattr(user, "is_staff", False):
            return self.all()
        if not user.is_authenticated:
            return self.filter(is_public=True)
        return self.filter(Q(is_public=True) | Q(owner=user) | Q(memberships__user=user)).distinct()

    def writable_by(self, user: User | AnonymousUser) -> CollectionQuerySet:
        """Collections the user may archive sources into (editors and owners)."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self.all()
        roles = [Membership.Role.EDITOR, Membership.Role.OWNER]
        return self.filter(
            Q(owner=user) | Q(memberships__user=user, memberships__role__in=roles),
            archived_at__isnull=True,
        ).distinct()

    def managed_by(self, user: User | AnonymousUser) -> CollectionQuerySet:
        """Collections whose team the user manages: its owners, and curators."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self.all()
        return self.filter(
            Q(owner=user) | Q(memberships__user=user, memberships__role=Membership.Role.OWNER)
        ).distinct()


class Collection(models.Model):
    slug = models.SlugField(unique=True, max_length=80)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_collections"
    )
    is_public = models.BooleanField(
        default=False, help_text="Anyone, including visitors who are not logged in, may read it."
    )
    # Annotated because the plugin cannot infer a relation to a model defined further down.
    sources: models.ManyToManyField[Source, Any] = models.ManyToManyField(
        "Source", related_name="collections", blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Archived: kept as it is, to read and export, closed to new annotations and sources.
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = CollectionQuerySet.as_manager()

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("search:collection_detail", args=[self.slug])

    @classmethod
    def create_owned_by(
        cls, owner, *, title: str, description: str = "", is_public: bool = False
    ) -> Collection:
        """A new collection with ``owner`` as its owner, under a slug made from its title."""
        with transaction.atomic():
            collection = cls.objects.create(
                slug=unique_collection_slug(title),
                title=title,
                description=description,
                owner=owner,
                is_public=is_public,
            )
            Membership.objects.create(collection=collection, user=owner, role=Membership.Role.OWNER)
            CollectionEvent.record(collection, CollectionEvent.Kind.CREATED, actor=owner)
        return collection

    def role_of(self, user: User | AnonymousUser) -> str | None:
        if not user.is_authenticated:
            return None
        if user.pk == self.owner_id:
            return Membership.Role.OWNER
        membership = self.memberships.filter(user=user).first()
        return membership.role if membership else None

    # --- Membership rules ------------------------------------------------------------------
    # A collection's owners are its ``owner`` plus every member with the owner role. A
    # collection always keeps at least one owner; when ``owner`` steps down, the role of
    # record passes to the longest-standing remaining owner so the two never disagree.

    def roster(self) -> list[Member]:
        """Everyone in the collection, owners first, in two queries whatever its size."""
        memberships = Membership.objects.filter(collection=self).select_related("user")
        members = {m.user_id: Member(m.user, m.role) for m in memberships}
        if self.owner_id not in members:
            members[self.owner_id] = Member(self.owner, Membership.Role.OWNER)
        elif members[self.owner_id].role != Membership.Role.OWNER:
            # Collection.owner is an owner whatever its membership row says (see role_of).
            members[self.owner_id] = Member(self.owner, Membership.Role.OWNER)
        return sorted(
            members.values(),
            key=lambda m: (ROLE_RANK.get(m.role, len(ROLE_RANK)), m.user.get_username().lower()),
        )

    def can_manage(self, user: User | AnonymousUser) -> bool:
        """Owners and curators add, re-role and remove members."""
        if getattr(user, "is_staff", False):
            return True
        return self.role_of(user) == Membership.Role.OWNER

    # ``actor`` is who made the change, for the collection's history (None: the command line).

    def add_member(self, user, role: str, *, actor=None, invitation=None) -> Membership:
        _validate_role(role)
        with transaction.atomic():
            collection = self._locked()
            if collection._is_member(user):
                raise MembershipError(
                    f"{user.get_username()} is already a member of “{collection.title}”; "
                    "change their role instead."
                )
            membership = Membership.objects.create(collection=collection, user=user, role=role)
            CollectionEvent.record(
                collection,
                CollectionEvent.Kind.INVITATION_USED
                if invitation
                else CollectionEvent.Kind.MEMBER_ADDED,
                actor=actor,
                subject=user,
                role=role,
                invitation=invitation,
            )
            return membership

    def change_role(self, user, role: str, *, actor=None) -> None:
        _validate_role(role)
        with transaction.atomic():
            collection = self._locked()
            previous = collection.role_of(user)
            if previous is None:
                raise MembershipError(
                    f"{user.get_username()} is not a member of “{collection.title}”."
                )
            if role != Membership.Role.OWNER:
                collection._refuse_last_owner(user, "made " + Membership.Role(role).label.lower())
            Membership.objects.update_or_create(
                collection=collection, user=user, defaults={"role": role}
            )
            if previous != role:
                CollectionEvent.record(
                    collection,
                    CollectionEvent.Kind.ROLE_CHANGED,
                    actor=actor,
                    subject=user,
                    role=role,
                    previous_role=previous,
                )
            if role != Membership.Role.OWNER:
                collection._hand_over_ownership(user, actor=actor)

    def remove_member(self, user, *, actor=None) -> None:
        with transaction.atomic():
            collection = self._locked()
            previous = collection.role_of(user)
            if previous is None:
                raise MembershipError(
                    f"{user.get_username()} is not a member of “{collection.title}”."
                )
            collection._refuse_last_owner(user, "removed")
            Membership.objects.filter(collection=collection, user=user).delete()
            leaving = actor is not None and actor.pk == user.pk
            CollectionEvent.record(
                collection,
                CollectionEvent.Kind.MEMBER_LEFT
                if leaving
                else CollectionEvent.Kind.MEMBER_REMOVED,
                actor=actor,
                subject=user,
                previous_role=previous,
            )
            collection._hand_over_ownership(user, actor=actor)

    def transfer_ownership(self, new_owner, *, actor=None, previous_owner_role: str) -> None:
        """Make a member the collection's owner; the previous owner stays with the role given."""
        _validate_role(previous_owner_role)
        with transaction.atomic():
            collection = self._locked()
            previous = collection.owner
            if new_owner.pk == previous.pk:
                raise MembershipError(f"{new_owner.get_username()} already owns “{self.title}”.")
            if collection.role_of(new_owner) is None:
                raise MembershipError(
                    f"{new_owner.get_username()} is not a member of “{collection.title}”: "
                    "add them first."
                )
            Membership.objects.update_or_create(
                collection=collection, user=new_owner, defaults={"role": Membership.Role.OWNER}
            )
            Membership.objects.update_or_create(
                collection=collection, user=previous, defaults={"role": previous_owner_role}
            )
            collection.owner = new_owner
            collection.save(update_fields=["owner"])
            CollectionEvent.record(
                collection,
                CollectionEvent.Kind.OWNERSHIP_TRANSFERRED,
                actor=actor,
                subject=new_owner,
                previous_owner=previous,
                role=previous_owner_role,
            )
        self.owner = new_owner

    def set_archived(self, archived: bool, *, actor=None) -> bool:
        """Archive the collection (or reopen it); False if it already was."""
        with transaction.atomic():
            changed = (
                Collection.objects.filter(pk=self.pk, archived_at__isnull=archived).update(
                    archived_at=timezone.now() if archived else None
                )
                > 0
            )
            if changed:
                kind = CollectionEvent.Kind.ARCHIVED if archived else CollectionEvent.Kind.REOPENED
                CollectionEvent.record(self, kind, actor=actor)
        self.refresh_from_db(fields=["archived_at"])
        return changed

    def delete_if_empty(self) -> None:
        """Delete the collection, its team and history; only while it holds nothing."""
        with transaction.atomic():
            collection = self._locked()
            count = collection.sources.count()
            if count:
                raise MembershipError(
                    f"“{collection.title}” holds {count} source{'s' if count != 1 else ''}: "
                    "only an empty collection can be deleted. Archive it instead."
                )
            try:
                collection.delete()
            except models.ProtectedError:
                raise MembershipError(
                    f"Annotations still belong to “{collection.title}”: only an empty "
                    "collection can be deleted. Archive it instead."
                ) from None

    def _owner_ids(self) -> set[int]:
        ids = set(
            Membership.objects.filter(collection=self, role=Membership.Role.OWNER).values_list(
                "user_id", flat=True
            )
        )
        ids.add(self.owner_id)
        return ids

    def _locked(self) -> Collection:
        # Lock the collection row so two owners demoting each other at once cannot both succeed.
        return Collection.objects.select_for_update().get(pk=self.pk)

    def _is_member(self, user) -> bool:
        return (
            user.pk == self.owner_id
            or Membership.objects.filter(collection=self, user=user).exists()
        )

    def _hand_over_ownership(self, leaving, *, actor=None) -> None:
        """Make another owner the collection's owner of record when ``leaving`` steps down."""
        if self.owner_id != leaving.pk:
            return
        successor = (
            Membership.objects.filter(collection=self, role=Membership.Role.OWNER)
            .exclude(user=leaving)
            .order_by("pk")
            .first()
        )
        if (
            successor is None
        ):  # guarded by the last-owner checks; never leave a collection ownerless
            raise MembershipError("The collection would have no owner.")
        self.owner_id = successor.user_id
        self.save(update_fields=["owner"])
        CollectionEvent.record(
            self,
            CollectionEvent.Kind.OWNERSHIP_TRANSFERRED,
            actor=actor,
            subject_id=successor.user_id,
            previous_owner=leaving,
        )

    def _refuse_last_owner(self, user, doing: str) -> None:
        owners = self._owner_ids()
        if owners == {user.pk}:
            raise MembershipError(
                f"{user.get_username()} is the last owner of “{self.title}” and cannot be "
                f"{doing}. Make another member an owner first."
            )


class MembershipError(Exception):
    """A membership change the rules refuse; the message says why, for the person asking."""


@dataclass(frozen=True)
class Member:
    """One line of a collection's roster."""

    user: User
    role: str

    @property
    def role_label(self) -> str:
        return Membership.Role(self.role).label


def _validate_role(role: str) -> None:
    if role not in Membership.Role.values:
        raise MembershipError(
            f"“{role}” is not a role; choose one of {', '.join(Membership.Role.values)}."
        )


class Membership(models.Model):
    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        ANNOTATOR = "annotator", "Annotator"
        EDITOR = "editor", "Editor"
        OWNER = "owner", "Owner"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.ANNOTATOR)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["collection", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.collection} ({self.role})"


RESERVED_COLLECTION_SLUGS = frozenset({"new"})  # /collections/new/ creates one


def unique_collection_slug(title: str) -> str:
    """A slug for a new collection: its title's, made unique with -2, -3…"""
    max_length = Collection._meta.get_field("slug").max_length or 80
    base = slugify(unidecode_ascii(title))[: max_length - 4].strip("-_") or "collection"
    taken = (
        set(Collection.objects.filter(slug__startswith=base).values_list("slug", flat=True))
        | RESERVED_COLLECTION_SLUGS
    )
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def unidecode_ascii(value: str) -> str:
    # "Études côtières" → "Etudes cotieres": letters keep their base form in the slug.
    return unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")


class CollectionEventQuerySet(models.QuerySet):
    def for_history(self) -> CollectionEventQuerySet:
        """What the history on the members page shows of each event, in one query."""
        return self.select_related("actor", "subject", "previous_owner", "invitation")

    def of_codebook(self) -> CollectionEventQuerySet:
        return self.filter(kind__in=CODEBOOK_EVENT_KINDS)


class CollectionEvent(models.Model):
    """One change to a collection's team or codebook, for its history on the members page."""

    class Kind(models.TextChoices):
        CREATED = "created", "Collection created"
        MEMBER_ADDED = "member_added", "Member added"
        ROLE_CHANGED = "role_changed", "Role changed"
        MEMBER_REMOVED = "member_removed", "Member removed"
        MEMBER_LEFT = "member_left", "Member left"
        OWNERSHIP_TRANSFERRED = "ownership_transferred", "Ownership transferred"
        INVITATION_CREATED = "invitation_created", "Invitation made"
        INVITATION_USED = "invitation_used", "Joined by invitation"
        INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
        ARCHIVED = "archived", "Collection archived"
        REOPENED = "reopened", "Collection reopened"
        # The codebook (annotations.Code): archive cannot name codes, so the annotations app
        # writes what happened as ``detail`` ("renamed the code “a” to “b”").
        CODE_ADDED = "code_added", "Code added"
        CODE_CHANGED = "code_changed", "Code changed"
        CODE_RENAMED = "code_renamed", "Code renamed"
        CODES_MERGED = "codes_merged", "Codes merged"
        CODE_DELETED = "code_deleted", "Code deleted"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)
    # Who did it; null when done on the command line (or the account is gone).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Whom it was done to (the member added, re-roled, removed; the new owner).
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    previous_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    role = models.CharField(max_length=20, blank=True, choices=Membership.Role.choices)
    previous_role = models.CharField(max_length=20, blank=True, choices=Membership.Role.choices)
    invitation = models.ForeignKey(
        "Invitation", on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    # What a codebook event did, as the end of a sentence that starts with its actor.
    # Nullable: on SQLite a NOT NULL column is added by rebuilding the table, which would
    # drop its content-revision triggers (annotations migration 0008).
    detail = models.CharField(max_length=500, null=True, blank=True)  # noqa: DJ001

    objects = CollectionEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["collection", "-at"], name="collection_event_recent_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} in {self.collection_id} at {self.at:%Y-%m-%d %H:%M}"

    @classmethod
    def record(cls, collection: Collection, kind: str, **fields) -> CollectionEvent:
        return cls.objects.create(collection=collection, kind=kind, **fields)

    @property
    def sentence(self) -> str:
        """What happened, as the history on the members page says it."""
        actor = _name(self.actor, missing="A curator")
        subject = _name(self.subject)
        role = self.get_role_display().lower()
        previous = self.get_previous_role_display().lower()
        match self.kind:
            case self.Kind.CREATED:
                return f"{actor} created the collection."
            case self.Kind.MEMBER_ADDED:
                return f"{actor} added {subject} as {role}."
            case self.Kind.ROLE_CHANGED:
                return f"{actor} changed {subject}’s role from {previous} to {role}."
            case self.Kind.MEMBER_REMOVED:
                return f"{actor} removed {subject} ({previous})."
            case self.Kind.MEMBER_LEFT:
                return f"{subject} left the collection ({previous})."
            case self.Kind.INVITATION_CREATED:
                return f"{actor} made {self._invitation_phrase()}."
            case self.Kind.INVITATION_USED:
                return f"{subject} joined as {role} through {self._invitation_phrase()}."
            case self.Kind.INVITATION_REVOKED:
                return f"{actor} revoked {self._invitation_phrase()}."
            case self.Kind.OWNERSHIP_TRANSFERRED:
                stays = f", who stays as {role}" if role else ""
                return (
                    f"{actor} made {subject} the collection’s owner in place of "
                    f"{_name(self.previous_owner)}{stays}."
                )
            case self.Kind.ARCHIVED:
                return f"{actor} archived the collection (closed to new annotations)."
            case self.Kind.REOPENED:
                return f"{actor} reopened the collection."
            case (
                self.Kind.CODE_ADDED
                | self.Kind.CODE_CHANGED
                | self.Kind.CODE_RENAMED
                | self.Kind.CODES_MERGED
                | self.Kind.CODE_DELETED
            ):
                return f"{actor} {self.detail}."
        return f"{actor}: {self.get_kind_display()}."

    def _invitation_phrase(self) -> str:
        invitation = self.invitation
        if invitation is None:
            return "an invitation"
        role = invitation.get_role_display().lower()
        if invitation.email:
            return f"an invitation e-mailed to {invitation.email} (as {role})"
        return f"invitation link {invitation.prefix}… (as {role}, up to {invitation.max_uses} uses)"


CODEBOOK_EVENT_KINDS = [
    CollectionEvent.Kind.CODE_ADDED,
    CollectionEvent.Kind.CODE_CHANGED,
    CollectionEvent.Kind.CODE_RENAMED,
    CollectionEvent.Kind.CODES_MERGED,
    CollectionEvent.Kind.CODE_DELETED,
]


def _name(user, missing: str = "a deleted account") -> str:
    return user.get_username() if user is not None else missing


INVITATION_SELECTOR_LENGTH = 12
INVITATIONS_EMAILED_PER_DAY = 20


def hash_invitation_key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class InvitationClosed(Exception):
    """The invitation cannot be used any more; the message says why, naming nothing."""


class InvitationQuerySet(models.QuerySet):
    def open(self) -> InvitationQuerySet:
        return self.filter(
            revoked_at__isnull=True, expires_at__gt=timezone.now(), uses__lt=models.F("max_uses")
        )

    def for_key(self, raw: str) -> Invitation | None:
        """The invitation whose link carries ``raw``, open or not; None for any other key.

        Found by its selector (the key's first characters, not secret on their own), then the
        whole key's hash compared in constant time, so that the answer's timing says nothing
        about how much of a guessed key was right.
        """
        if len(raw) <= INVITATION_SELECTOR_LENGTH:
            return None
        candidate = (
            self.select_related("collection", "created_by")
            .filter(selector=raw[:INVITATION_SELECTOR_LENGTH])
            .first()
        )
        if candidate is None:
            return None
        if not hmac.compare_digest(candidate.key_hash, hash_invitation_key(raw)):
            return None
        return candidate


class Invitation(models.Model):
    """A link that lets whoever holds it join a collection with a role: limited in time and
    uses, revocable. Only its SHA-256 is stored; the link is shown once, when it is made."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(
        max_length=20, choices=Membership.Role.choices, default=Membership.Role.ANNOTATOR
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    max_uses = models.PositiveIntegerField(default=1)
    uses = models.PositiveIntegerField(default=0, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The address it was e-mailed to; empty for a link the owner passes on themselves.
    email = models.EmailField(blank=True)
    selector = models.CharField(max_length=INVITATION_SELECTOR_LENGTH, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_uses__gte=1) & Q(uses__lte=models.F("max_uses")),
                name="invitation_uses_within_limit",
            )
        ]

    def __str__(self) -> str:
        return f"Invitation {self.prefix}… to {self.collection} as {self.role}"

    @property
    def prefix(self) -> str:
        # Enough to tell links apart on the members page; the key's other 30-odd characters
        # stay secret.
        return self.selector[:6]

    @classmethod
    def issue(
        cls,
        collection: Collection,
        *,
        role: str,
        created_by,
        valid_for,
        max_uses: int = 1,
        email: str = "",
    ) -> tuple[Invitation, str]:
        """Make an invitation; return it with its key, which is never stored."""
        _validate_role(role)
        raw = secrets.token_urlsafe(32)
        with transaction.atomic():
            invitation = cls.objects.create(
                collection=collection,
                role=role,
                created_by=created_by,
                expires_at=timezone.now() + valid_for,
                max_uses=max_uses,
                email=email,
                selector=raw[:INVITATION_SELECTOR_LENGTH],
                key_hash=hash_invitation_key(raw),
            )
            CollectionEvent.record(
                collection,
                CollectionEvent.Kind.INVITATION_CREATED,
                actor=created_by,
                role=role,
                invitation=invitation,
            )
        return invitation, raw

    @property
    def closed_reason(self) -> str | None:
        """Why the invitation can no longer be used, in plain words; None while it can."""
        if self.revoked_at is not None:
            return "This invitation link has been withdrawn by the person who made it."
        if self.expires_at <= timezone.now():
            return f"This invitation link expired on {self.expires_at:%Y-%m-%d}."
        if self.uses >= self.max_uses:
            return "This invitation link has already been used as many times as it allows."
        return None

    @property
    def is_open(self) -> bool:
        return self.closed_reason is None

    def revoke(self, *, actor=None) -> None:
        with transaction.atomic():
            if Invitation.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            ):
                CollectionEvent.record(
                    self.collection,
                    CollectionEvent.Kind.INVITATION_REVOKED,
                    actor=actor,
                    role=self.role,
                    invitation=self,
                )
        self.refresh_from_db(fields=["revoked_at"])

    def accept(self, user) -> Membership:
        """Make ``user`` a member with the invitation's role, spending one of its uses.

        Raises InvitationClosed if it can no longer be used, MembershipError if the user
        already belongs (which spends nothing).
        """
        with transaction.atomic():
            # Locked, so that two people using the last use at once cannot both join.
            current = Invitation.objects.select_for_update().get(pk=self.pk)
            reason = current.closed_reason
            if reason is not None:
                raise InvitationClosed(reason)
            membership = self.collection.add_member(
                user, current.role, actor=user, invitation=current
            )
            Invitation.objects.filter(pk=self.pk).update(uses=models.F("uses") + 1)
        self.refresh_from_db(fields=["uses"])
        return membership


ROLE_RANK: dict[str, int] = {
    Membership.Role.OWNER: 0,
    Membership.Role.EDITOR: 1,
    Membership.Role.ANNOTATOR: 2,
    Membership.Role.VIEWER: 3,
}


class SourceQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> SourceQuerySet:
        """The one rule for who may read a source.

        Curators see everything, withdrawn sources included. Everyone else sees sources that
        are not withdrawn and are in a public collection, in a collection they own or belong
        to, or that they archived themselves.
        """
        if getattr(user, "is_staff", False):
            return self.all()
        in_visible = Collection.sources.through.objects.filter(
            collection__in=Collection.objects.visible_to(user)
        )
        rule = Q(pk__in=in_visible.values("source_id"))
        if user.is_authenticated:
            rule = rule | Q(archived_by=user)
        return self.filter(rule, withdrawn_at__isnull=True)

    def editable_by(self, user: User | AnonymousUser) -> SourceQuerySet:
        """Sources whose metadata the user may edit: curators all; others those they
        archived, and those in a collection they edit or own."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self.all()
        in_writable = Collection.sources.through.objects.filter(
            collection__in=Collection.objects.writable_by(user)
        )
        return self.filter(Q(archived_by=user) | Q(pk__in=in_writable.values("source_id")))

    def addable_to(self, collection: Collection, user: User | AnonymousUser) -> SourceQuerySet:
        """Sources the user may put in ``collection`` (one they may write): adding a source
        to a public collection publishes it, so only sources they may edit, or those
        already there."""
        editable = self.model.objects.editable_by(user).values("pk")
        return self.filter(Q(pk__in=editable) | Q(pk__in=collection.sources.values("pk")))

    def for_listing(self) -> SourceQuerySet:
        """What list pages need, without the (possibly large) text layer."""
        return self.select_related("archived_by").defer("text", "blocks")


class Source(models.Model):
    class Via(models.TextChoices):
        UPLOAD = "upload", "Upload"
        PASTE = "paste", "Pasted text"
        COMMAND_LINE = "cli", "Command line"
        IMPORT = "import", "Import"
        CAPTURE = "capture", "Capture by URL"

    class Fixity(models.TextChoices):
        UNCHECKED = "unchecked", "Not yet checked"
        OK = "ok", "Verified"
        FAILED = "failed", "FAILED"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    # The original bytes: written once, never changed (enforced by triggers too). Stored
    # once however many sources hold them: people who cannot see each other's sources
    # archive the same bytes as sources of their own (archive.ingest.reusable_source).
    sha256 = models.CharField(max_length=64, db_index=True, editable=False)
    size = models.BigIntegerField(editable=False)
    blob_name = models.CharField(max_length=200, editable=False)
    media_type = models.CharField(max_length=100, editable=False)
    declared_media_type = models.CharField(max_length=200, blank=True, editable=False)
    encoding = models.CharField(max_length=40, blank=True, editable=False)
    encoding_note = models.CharField(max_length=300, blank=True, editable=False)
    original_filename = models.CharField(max_length=300, blank=True, editable=False)
    original_url = models.URLField(max_length=2000, blank=True, editable=False)

    # Provenance.
    archived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="archived_sources",
        editable=False,
    )
    archived_at = models.DateTimeField(default=timezone.now, editable=False)
    archived_via = models.CharField(max_length=10, choices=Via.choices, editable=False)

    # The text layer: derived once from the bytes by a named, versioned extractor.
    # Where each of its pages (or chapters) begins and ends: archive.divisions.
    divisions = models.JSONField(default=dict, editable=False)
    text = models.TextField(editable=False)
    blocks = models.JSONField(default=list, editable=False)
    extractor = models.CharField(max_length=40, editable=False)
    extractor_version = models.CharField(max_length=20, editable=False)

    # Bibliographic metadata: editable.
    class Type(models.TextChoices):
        # The values are CSL item types (https://citationstyles.org), so a reference's type
        # is its source's type; BibLaTeX's are mapped in archive.cite.
        NEWS_ARTICLE = "article-newspaper", "News article"
        WEB_PAGE = "webpage", "Web page"
        REPORT = "report", "Report"
        JOURNAL_ARTICLE = "article-journal", "Journal article"
        BOOK = "book", "Book"
        CHAPTER = "chapter", "Book chapter"
        THESIS = "thesis", "Thesis"
        INTERVIEW = "interview", "Interview"
        DATASET = "dataset", "Dataset"
        OTHER = "document", "Other"

    title = models.CharField(max_length=500)
    source_type = models.CharField(
        "type",
        max_length=20,
        choices=Type.choices,
        default=Type.OTHER,
        help_text="What kind of work it is: references are written differently for each.",
    )
    creators = models.JSONField(
        default=list, blank=True, validators=[validate_creators], help_text="Names, in order."
    )
    editors = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_editors],
        help_text="Of the book a chapter is in, or of an edited volume: names, in order.",
    )
    container_title = models.CharField(
        "published in",
        max_length=500,
        blank=True,
        help_text="The journal, newspaper, website or book it is part of.",
    )
    volume = models.CharField(max_length=50, blank=True)
    issue = models.CharField(max_length=50, blank=True)
    pages = models.CharField(max_length=50, blank=True, help_text="e.g. 45–67")
    publisher = models.CharField("publisher or site", max_length=300, blank=True)
    date_published = models.CharField(
        max_length=10,
        blank=True,
        validators=[validate_date_published],
        help_text="YYYY, YYYY-MM or YYYY-MM-DD",
    )
    language = models.CharField(max_length=35, blank=True, help_text="e.g. en, fr, pt-BR")
    description = models.TextField(blank=True)
    doi = models.CharField("DOI", max_length=200, blank=True, validators=[validate_doi])
    isbn = ISBNField(
        "ISBN",
        max_length=20,
        blank=True,
        validators=[validate_isbn],
        help_text="ISBN-10 or ISBN-13; hyphens and spaces are fine.",
    )
    url = models.URLField("URL", max_length=2000, blank=True)
    rights = models.CharField(max_length=500, blank=True)
    citation_key = models.SlugField(
        max_length=100,
        unique=True,
        allow_unicode=False,
        help_text="Used to cite this source in notes, e.g. [@smith2024resistance].",
    )

    # Withdrawal by a curator: hidden from everyone but curators, reversible.
    withdrawn_at = models.DateTimeField(null=True, blank=True, editable=False)
    withdrawn_reason = models.TextField(blank=True, editable=False)

    # Last fixity check, kept beside the full history for list filters.
    fixity_status = models.CharField(
        max_length=10, choices=Fixity.choices, default=Fixity.UNCHECKED, editable=False
    )
    fixity_checked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = SourceQuerySet.as_manager()

    # The bibliographic description: the only fields a curator or editor may change.
    METADATA_FIELDS = (
        "title",
        "source_type",
        "creators",
        "editors",
        "container_title",
        "publisher",
        "date_published",
        "volume",
        "issue",
        "pages",
        "language",
        "description",
        "doi",
        "isbn",
        "url",
        "rights",
        "citation_key",
    )
    IMMUTABLE_FIELDS = (
        "uuid",
        "sha256",
        "size",
        "blob_name",
        "media_type",
        "declared_media_type",
        "encoding",
        "encoding_note",
        "original_filename",
        "original_url",
        "archived_at",
        "archived_via",
        "text",
        "blocks",
        "extractor",
        "extractor_version",
        "divisions",
    )

    class Meta:
        ordering = ["-archived_at"]
        indexes = [
            models.Index(fields=["title"]),
            models.Index(fields=["fixity_status"]),
            # Who may read a source, without reading its row: on SQLite the row holds the
            # whole text layer before these columns (reading them walks every overflow
            # page), so visible_to() and search check many sources cheaply from the index.
            models.Index(fields=["withdrawn_at", "archived_by"], name="archive_source_visible_idx"),
            # The search page's list of media types, from the index alone (the same reason).
            models.Index(fields=["withdrawn_at", "media_type"], name="archive_source_media_idx"),
            # The source list newest (or oldest) first, read in order and stopped at the end
            # of its page, where sorting read every visible source's row (bench/NOTES.md).
            # One index for each engine's planner: SQLite reads
            # the sources not withdrawn from an index that starts with withdrawn_at; PostgreSQL
            # reads no order from one (its first column only known to be null), but does from
            # a partial index.
            models.Index(
                fields=["withdrawn_at", "archived_at", "id"], name="archive_source_archived_idx"
            ),
            models.Index(
                fields=["archived_at", "id"],
                condition=Q(withdrawn_at__isnull=True),
                name="archive_source_newest_idx",
            ),
            # And, on PostgreSQL only, search_source_access (a covering index, which SQLite
            # lacks; Meta cannot declare an index for one engine): migration 0011 makes it.
        ]

    def __str__(self) -> str:
        return self.title

    @classmethod
    def media_types(cls) -> list[str]:
        """The kinds of file among the sources not withdrawn, each once, in order: a short
        list for the filter forms, not which sources are of each (filtering by visibility
        would cost a pass over every source). Read from archive_source_media_idx one kind at
        a time, each the next after the last (a skip scan): a few index seeks, however many
        sources there are, where DISTINCT reads the whole index."""
        table = connection.ops.quote_name(cls._meta.db_table)
        following = (
            f"SELECT media_type FROM {table} WHERE withdrawn_at IS NULL AND media_type > kinds.m"  # noqa: S608
            " ORDER BY withdrawn_at, media_type LIMIT 1"
        )
        sql = (
            "WITH RECURSIVE kinds(m) AS ("  # noqa: S608
            f" SELECT * FROM (SELECT media_type FROM {table} WHERE withdrawn_at IS NULL"
            " ORDER BY withdrawn_at, media_type LIMIT 1) AS first"
            f" UNION ALL SELECT ({following}) FROM kinds WHERE kinds.m IS NOT NULL"
            ") SELECT m FROM kinds WHERE m IS NOT NULL"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return [row[0] for row in cursor.fetchall()]

    def get_absolute_url(self) -> str:
        return reverse("annotations:source_detail", args=[self.uuid])

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._remember_immutable()
        return instance

    def _remember_immutable(self) -> None:
        # The immutable values as stored (references, not copies), so save() can refuse a
        # change without re-reading a possibly large text layer.
        self._loaded_immutable = {
            f: self.__dict__[f] for f in self.IMMUTABLE_FIELDS if f in self.__dict__
        }

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            loaded = getattr(self, "_loaded_immutable", {})
            changed = [f for f, value in loaded.items() if self.__dict__.get(f) != value]
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                changed += [f for f in update_fields if f in self.IMMUTABLE_FIELDS]
            if changed:
                raise ImmutableFieldError(
                    f"An archived source's {', '.join(sorted(set(changed)))} cannot be changed:"
                    " the original bytes and their text layer are kept exactly as archived."
                )
            if update_fields is None:
                # Never rewrite the immutable columns (the text layer may be megabytes).
                kwargs["update_fields"] = [
                    f.name
                    for f in self._meta.concrete_fields
                    if not f.primary_key and f.name not in self.IMMUTABLE_FIELDS
                ]
        super().save(*args, **kwargs)
        self._remember_immutable()

    def delete(self, *args, **kwargs):
        if self.has_annotations():
            raise ValidationError(
                "This source has annotations and cannot be deleted. Withdraw it instead."
            )
        if self.citations.exists():
            raise ValidationError(
                "Annotations cite this source, so it cannot be deleted. Withdraw it instead."
            )
        return super().delete(*args, **kwargs)

    def can_edit_metadata(self, user: User | AnonymousUser) -> bool:
        """Curators, the archiver, and editors or owners of a collection holding the source."""
        if not user.is_authenticated:
            return False
        if user.is_staff or user.pk == self.archived_by_id:
            return True
        return Source.objects.editable_by(user).filter(pk=self.pk).exists()

    def has_annotations(self) -> bool:
        return self.annotations.exists()

    @property
    def has_text_layer(self) -> bool:
        from archive.extract import NO_TEXT_EXTRACTOR

        return self.extractor != NO_TEXT_EXTRACTOR[0]

    @property
    def no_text_layer_reason(self) -> str:
        from django.template.defaultfilters import filesizeformat

        if self.media_type == "application/pdf":
            return (
                "The PDF holds no text, only images of its pages (it looks scanned), so it has"
                " no text layer to read or annotate here. Its original bytes are archived"
                " unchanged and their fixity is checked: download the original to read it."
            )
        unchanged = (
            " Its original bytes are archived unchanged and their fixity is checked: download"
            " the original to read it."
        )
        if self.size <= settings.SCHOLION_MAX_TEXT_BYTES:
            return (
                "The file's text is too long, or in too many pieces (more than"
                f" {settings.SCHOLION_MAX_TEXT_BLOCKS:,} paragraphs, list items and table"
                " cells), to read or annotate in the browser, so it has no text layer." + unchanged
            )
        return (
            f"At {filesizeformat(self.size)} the file is too long to read or annotate in the"
            " browser, so it has no text layer." + unchanged
        )

    @cached_property
    def text_divisions(self) -> Divisions:
        """Where the text layer's pages (or chapters) begin and end (immutable: kept)."""
        from archive.divisions import Divisions

        return Divisions(self.divisions)

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def withdraw(self, reason: str) -> None:
        if not reason.strip():
            raise ValidationError("Give a reason for withdrawing the source.")
        self.withdrawn_at = timezone.now()
        self.withdrawn_reason = reason.strip()
        self.save(update_fields=["withdrawn_at", "withdrawn_reason"])

    def reinstate(self) -> None:
        self.withdrawn_at = None
        self.withdrawn_reason = ""
        self.save(update_fields=["withdrawn_at", "withdrawn_reason"])

    def open_original(self):
        from archive.blobstore import archive_storage

        return archive_storage().open(self.blob_name, "rb")

    def verify_fixity(self) -> FixityCheck:
        """Re-hash the stored bytes and record the result."""
        from archive.blobstore import hash_stored

        observed, error = "", ""
        try:
            observed, size = hash_stored(self.blob_name)
            if observed != self.sha256:
                error = f"Hash differs: expected {self.sha256}, observed {observed}."
            elif size != self.size:
                error = f"Size differs: expected {self.size} bytes, observed {size}."
        except FileNotFoundError:
            error = f"The stored bytes are missing ({self.blob_name})."
        except OSError as exc:
            error = f"The stored bytes could not be read: {exc}"
        ok = not error
        with transaction.atomic():
            check = FixityCheck.objects.create(
                source=self, ok=ok, observed_sha256=observed, error=error
            )
            self.fixity_status = self.Fixity.OK if ok else self.Fixity.FAILED
            self.fixity_checked_at = check.checked_at
            Source.objects.filter(pk=self.pk).update(
                fixity_status=self.fixity_status, fixity_checked_at=self.fixity_checked_at
            )
        return check

    def inferred_type(self) -> str:
        """The type a source without one is given (an import of a package from before types,
        migration 0010): what references assumed before sources had a type. An ISBN makes a
        book, a DOI a journal article, a URL or an HTML original a web page."""
        if self.isbn:
            return self.Type.BOOK
        if self.doi:
            return self.Type.JOURNAL_ARTICLE
        if self.media_type == "text/html" or self.url:
            return self.Type.WEB_PAGE
        return self.Type.OTHER

    # Citation helpers used by the reading page's "Cite" box.
    def creator_display(self) -> str:
        return "; ".join(self.creators)

    def year(self) -> str:
        return self.date_published[:4] if self.date_published else ""


class ImmutableFieldError(ValidationError):
    pass


class FixityCheck(models.Model):
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="fixity_checks")
    checked_at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    observed_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-checked_at"]
        get_latest_by = "checked_at"

    def __str__(self) -> str:
        return f"{'OK' if self.ok else 'FAILED'} at {self.checked_at:%Y-%m-%d %H:%M}"


STOPWORDS = {"a", "an", "the", "of", "on", "in", "and", "to", "for", "at", "by", "with", "from"}


# --- Captures: a live web page archived by its URL, in the background ------------------------

# One person's captures queued or running at once: a queue filled by one person holds up
# everyone else's, and the server would fetch whatever it is asked to.
MAX_WAITING_CAPTURES = 100

CAPTURE_STOPPED = (
    "The capture stopped before it finished, because the worker running it was stopped"
    " (for example by a server restart). Nothing was archived; you can try again."
)
CAPTURE_UNEXPECTED_ERROR = (
    "The capture failed because of an error on the server, not because of the page; nothing"
    " was archived. The administrators can find the details in the worker's log."
)


class CaptureQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> CaptureQuerySet:
        """A person's own captures, in every state: what "My captures" lists and what they
        may retry."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def readable_by(self, user: User | AnonymousUser) -> CaptureQuerySet:
        """A person's own captures, and the finished captures of every source they can see:
        a source's provenance (and its web archive) is as visible as the source. Curators
        see every capture."""
        if user.is_staff:
            return self
        of_visible = Q(
            state=Job.State.DONE, source__in=Source.objects.visible_to(user).values("pk")
        )
        if not user.is_authenticated:
            return self.filter(of_visible)
        return self.filter(Q(user=user) | of_visible)

    def waiting_for(self, user: User | AnonymousUser) -> int:
        """How many of the person's captures are queued or running."""
        return self.filter(user=user, state__in=[Job.State.QUEUED, Job.State.RUNNING]).count()

    def history(self, source: Source, user: User | AnonymousUser) -> tuple[list, list]:
        """For a source's page: its captures, oldest first (the first archived it, the others
        found the same bytes again), and the captures of the same addresses that found other
        bytes (the page had changed), as sources the person can see, newest first."""
        own = list(self.filter(source=source, state=Job.State.DONE).order_by("fetched_at", "pk"))
        addresses = {capture.url_final for capture in own} | {capture.url for capture in own}
        elsewhere = (
            self.filter(
                state=Job.State.DONE,
                url_final__in=addresses,
                source__in=Source.objects.visible_to(user).values("pk"),
            )
            .exclude(source=source)
            .select_related("source")
            .order_by("-fetched_at", "-pk")[:OTHER_CAPTURES_SHOWN]
        )
        return own, list(elsewhere)


OTHER_CAPTURES_SHOWN = 20


class Capture(Job):
    """One URL a person asked to archive, and what became of it.

    Done, it records the source the page's bytes were archived as (a new one, or one that
    already held these exact bytes) and the provenance of this fetch: each capture of a URL
    has its own date, redirects, headers and web archive (WACZ), even when the bytes are the
    same as before.
    """

    retry_failed = True  # a server that failed may answer now

    # None: the command line (the server itself).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="captures",
    )
    url = models.URLField("URL", max_length=2000, help_text="The URL as it was asked for.")
    collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    whole_page = models.BooleanField(
        default=False, help_text="Keep the whole page as the text layer, not only its article."
    )

    # What the capture found, once done.
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="captures"
    )
    new_source = models.BooleanField(
        default=False, help_text="False when the bytes were already archived as the source."
    )
    url_final = models.URLField("final URL", max_length=2000, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    server_ip = models.GenericIPAddressField("server address", null=True, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    # The redirects, the response headers and the software, as archive.capture.fetch records.
    provenance = models.JSONField(default=dict, blank=True)
    wacz_sha256 = models.CharField("WACZ SHA-256", max_length=64, blank=True)
    wacz_name = models.CharField(max_length=200, blank=True)
    wacz_size = models.BigIntegerField(null=True, blank=True)
    screenshot_sha256 = models.CharField(max_length=64, blank=True)
    screenshot_name = models.CharField(max_length=200, blank=True)
    screenshot_size = models.BigIntegerField(null=True, blank=True)

    objects = CaptureQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="capture_user_recent"),
            models.Index(fields=["source", "-fetched_at"], name="capture_source_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.url} ({self.get_state_display().lower()})"

    def get_absolute_url(self) -> str:
        return reverse("archive:capture", args=[self.uuid])

    @classmethod
    def submit(
        cls,
        user: User | AnonymousUser | None,
        url: str,
        *,
        collection: Collection | None = None,
        whole_page: bool = False,
    ) -> Capture:
        """Record the request and queue its capture once the request is committed."""
        assert user is None or user.is_authenticated, "captures are asked for by people"
        capture = cls(user=user, url=url, collection=collection, whole_page=whole_page)
        with transaction.atomic():
            capture.save()
            transaction.on_commit(capture.enqueue)
        return capture

    def enqueue(self) -> None:
        from archive.tasks import run_capture  # the task module imports this one

        run_capture.enqueue(str(self.uuid), self.attempt)

    @property
    def status_text(self) -> str:
        if self.stalled:
            return CAPTURE_STOPPED
        if self.state == self.State.QUEUED:
            return "Waiting for the worker to start it."
        if self.state == self.State.RUNNING:
            return self.progress or "Fetching the page."
        if self.state == self.State.FAILED:
            return self.error
        if self.source is None:
            return "Archived; the source has since been deleted."
        if self.new_source:
            return f"Archived as “{self.source.title}”."
        return (
            f"The page's bytes were already archived as “{self.source.title}”: this capture"
            " is recorded in its provenance."
        )

    @property
    def may_retry(self) -> bool:
        return self.stalled or self.state == self.State.FAILED

    def status(self) -> dict[str, Any]:
        """The state as the pages and the API show it."""
        return {
            "uuid": str(self.uuid),
            "url": self.url,
            "state": self.display_state,
            "label": self.status_label,
            "text": self.status_text,
            "finished": self.finished,
            "may_retry": self.may_retry,
            "source": (
                {
                    "uuid": str(self.source.uuid),
                    "title": self.source.title,
                    "url": self.source.get_absolute_url(),
                }
                if self.state == self.State.DONE and self.source is not None
                else None
            ),
        }

    @classmethod
    def room_for(cls, user: User | AnonymousUser) -> int:
        """How many more captures the person may ask for now."""
        return max(0, MAX_WAITING_CAPTURES - cls.objects.waiting_for(user))

    @property
    def as_list(self) -> list[Capture]:
        """This capture alone, for templates that list captures."""
        return [self]

    def succeed(self, source: Source, *, created: bool, **record: Any) -> bool:
        return self._finish(state=self.State.DONE, source=source, new_source=created, **record)

    def open_wacz(self):
        from archive.blobstore import archive_storage

        return archive_storage().open(self.wacz_name, "rb")

    def open_screenshot(self):
        from archive.blobstore import archive_storage

        return archive_storage().open(self.screenshot_name, "rb")


UPLOAD_STOPPED = (
    "Reading the file stopped before it finished, because the worker running it was stopped"
    " (for example by a server restart). Its bytes are kept: try again."
)
UPLOAD_UNEXPECTED_ERROR = (
    "Reading the file failed because of an error on the server; nothing was archived. The"
    " administrators can find the details in the worker's log."
)


# How long an upload that failed stays listed on the archive page.
UPLOAD_FAILURES_SHOWN = timedelta(days=7)


class UploadJobQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> UploadJobQuerySet:
        """Only the uploader: until it is read, the upload is theirs alone."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def needing_attention(self) -> UploadJobQuerySet:
        """Uploads still being read, and those that failed in the last UPLOAD_FAILURES_SHOWN:
        what the uploader may be waiting for or may want to upload again. A read upload is
        its source, found with the others."""
        recent = timezone.now() - UPLOAD_FAILURES_SHOWN
        return self.filter(
            Q(state__in=[Job.State.QUEUED, Job.State.RUNNING])
            | Q(state=Job.State.FAILED, finished_at__gte=recent)
        )


class UploadJob(Job):
    """An uploaded file (a PDF, a Word document, an EPUB book, a long page) or a long pasted
    text whose text layer takes longer to derive than a request may run
    (SCHOLION_READ_REQUEST_SECONDS), derived on the worker.

    Its bytes are stored at their content address when it is uploaded, so nothing is lost
    whatever happens to the request; the source is made once its text layer exists. Until
    then there is no source to read or annotate, and the text layer, like every source's,
    is written once and never changed.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="upload_jobs"
    )
    collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    filename = models.CharField(max_length=300, blank=True)
    declared_type = models.CharField(max_length=200, blank=True)
    original_url = models.URLField(max_length=2000, blank=True)
    title = models.CharField(max_length=500, blank=True)
    # As the person asked: uploaded or pasted, a page's article or all of it.
    via = models.CharField(max_length=10, choices=Source.Via.choices, default=Source.Via.UPLOAD)
    whole_page = models.BooleanField(default=False)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    blob_name = models.CharField(max_length=200)
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    summary = models.CharField(max_length=700, blank=True)

    objects = UploadJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["blob_name"], name="uploadjob_blob")]

    def __str__(self) -> str:
        return f"{self.filename or self.sha256[:12]} ({self.get_state_display().lower()})"

    def get_absolute_url(self) -> str:
        return reverse("archive:upload_job", args=[self.uuid])

    def enqueue(self) -> None:
        from archive.tasks import read_upload  # the task module imports this one

        read_upload.enqueue(str(self.uuid), self.attempt)

    @property
    def status_text(self) -> str:
        if self.stalled:
            return UPLOAD_STOPPED
        if self.state == self.State.QUEUED:
            return "Its text layer is being prepared: waiting for the worker to start."
        if self.state == self.State.RUNNING:
            return "Its text layer is being prepared: the worker is reading the file."
        if self.state == self.State.DONE:
            return self.summary
        return self.error

    def status(self) -> dict[str, Any]:
        return {
            "state": self.display_state,
            "label": self.status_label,
            "text": self.status_text,
            "finished": self.finished,
            "source": (
                {
                    "url": self.source.get_absolute_url(),
                    "edit": reverse("archive:source_edit", args=[self.source.uuid]),
                }
                if self.source is not None and self.state == self.State.DONE
                else None
            ),
        }

    def succeed(self, source: Source, summary: str) -> bool:
        return self._finish(state=self.State.DONE, source=source, summary=summary[:700])


def ascii_slug_word(value: str) -> str:
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def make_citation_key(creators: list[str], date_published: str, title: str) -> str:
    """``author2024firstword``: first creator's family name, year, first significant title word."""
    family = ""
    if creators:
        first = creators[0]
        family = first.split(",")[0] if "," in first else first.split()[-1] if first.split() else ""
    author = ascii_slug_word(family) or "anon"
    year = date_published[:4] if date_published else "nd"
    word = ""
    for candidate in re.split(r"\s+", title):
        cleaned = ascii_slug_word(candidate)
        if cleaned and cleaned not in STOPWORDS:
            word = cleaned
            break
    return f"{author}{year}{word}"[:90]


def unique_citation_key(base: str, exclude_pk: int | None = None) -> str:
    """``base``, or ``base`` with a, b, c... appended, as bibliographies disambiguate."""
    taken = set(
        Source.objects.filter(citation_key__startswith=base)
        .exclude(pk=exclude_pk)
        .values_list("citation_key", flat=True)
    )
    if base not in taken:
        return base
    for suffix in _suffixes():
        if base + suffix not in taken:
            return base + suffix
    raise AssertionError("unreachable")


def _suffixes():
    letters = "abcdefghijklmnopqrstuvwxyz"
    yield from letters
    n = 2
    while True:
        yield from (f"{a}{n}" for a in letters)
        n += 1
