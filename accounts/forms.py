from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm, UsernameField
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import ApiToken
from archive.models import Collection, Member, Membership, MembershipError


class RegistrationForm(UserCreationForm):
    email = forms.EmailField(
        label="E-mail address", help_text="Used only to reset your password if you forget it."
    )

    # UserCreationForm.Meta's settings, spelled out (the stubs do not declare that class).
    class Meta:
        model = get_user_model()
        fields = ("username", "email")
        field_classes = {"username": UsernameField}

    def clean_email(self) -> str:
        # Not refused when another account uses it: "an account already uses this address"
        # would tell anyone who types an address whether its owner has an account here (the
        # members page never says so either). Password reset mails every account at an
        # address, each with its username.
        return self.cleaned_data["email"].strip()


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name", "scope"]
        widgets = {"scope": forms.RadioSelect}


def find_member(typed: str) -> AbstractBaseUser | str:
    """The account with this username, or else, for something that looks like an e-mail
    address, the address itself: the caller invites it, whether or not an account uses it.

    An address is never looked up: the answer to an owner is the same whether or not some
    account uses it, and the roster shows the person only once they accept. Usernames are
    not secret in Scholion (each is shown beside its owner's shared annotations), so a
    username that does not exist is said to be unknown, as a typo should be.
    """
    typed = typed.strip()
    if not typed:
        raise MembershipError("Give the person's username or e-mail address.")
    user = get_user_model().objects.filter(username=typed).first()
    if user is not None:
        return user
    if "@" in typed:
        try:
            validate_email(typed)
        except ValidationError:
            raise MembershipError(f"“{typed}” is not an e-mail address.") from None
        return typed
    raise MembershipError(
        f"No account has the username “{typed}”. Check the spelling, or invite them by "
        "e-mail address or with an invitation link."
    )


class MemberAddForm(forms.Form):
    username = forms.CharField(
        label="Username or e-mail address",
        max_length=254,
        help_text="An account's username adds them at once. An e-mail address is sent an "
        "invitation to accept (Scholion never says whether an account uses the address).",
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)

    def clean_username(self):
        try:
            return find_member(self.cleaned_data["username"])
        except MembershipError as exc:
            raise forms.ValidationError(str(exc)) from None


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class InvitationForm(forms.Form):
    VALID_FOR = {"1": timedelta(days=1), "7": timedelta(days=7), "30": timedelta(days=30)}

    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)
    valid_for = forms.ChoiceField(
        label="Valid for",
        choices=[("1", "1 day"), ("7", "7 days"), ("30", "30 days")],
        initial="7",
    )
    max_uses = forms.IntegerField(
        label="Number of people",
        min_value=1,
        max_value=100,
        initial=1,
        help_text="How many people may join through this link (up to 100).",
    )

    def clean_valid_for(self) -> timedelta:
        return self.VALID_FOR[self.cleaned_data["valid_for"]]


class TransferForm(forms.Form):
    new_owner = forms.ChoiceField(label="New owner")
    previous_owner_role = forms.ChoiceField(
        label="The previous owner's role afterwards",
        choices=Membership.Role.choices,
        initial=Membership.Role.EDITOR,
    )

    def __init__(self, *args, collection: Collection, roster: list[Member], **kwargs):
        super().__init__(*args, **kwargs)
        self.members = {m.user.get_username(): m.user for m in roster}
        new_owner = self.fields["new_owner"]
        assert isinstance(new_owner, forms.ChoiceField)
        new_owner.choices = [
            (m.user.get_username(), m.user.get_username())
            for m in roster
            if m.user.pk != collection.owner_id
        ]

    def clean_new_owner(self):
        return self.members[self.cleaned_data["new_owner"]]


class DeleteCollectionForm(forms.Form):
    confirm = forms.CharField(label="Type the collection's short name to confirm")

    def __init__(self, *args, collection: Collection, **kwargs):
        super().__init__(*args, **kwargs)
        self.collection = collection
        self.fields["confirm"].help_text = f"Its short name is “{collection.slug}”."

    def clean_confirm(self) -> str:
        if self.cleaned_data["confirm"].strip() != self.collection.slug:
            raise forms.ValidationError(
                f"Type “{self.collection.slug}” to delete the collection; nothing was deleted."
            )
        return self.cleaned_data["confirm"]
