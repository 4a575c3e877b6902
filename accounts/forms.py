from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm, UsernameField
from django.contrib.auth.models import AbstractBaseUser

from accounts.models import ApiToken
from archive.models import Membership, MembershipError


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
        email = self.cleaned_data["email"].strip()
        # Password reset mails every account at an address; one account per address keeps
        # "forgot my password" unambiguous.
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(
                "An account already uses this address. Log in, or reset its password."
            )
        return email


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name", "scope"]
        widgets = {"scope": forms.RadioSelect}


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


class MemberAddForm(forms.Form):
    username = forms.CharField(
        label="Username",
        max_length=150,
        help_text="Ask them for it: they see it at the top of every page once logged in. "
        "Scholion does not look people up by e-mail address.",
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)

    def clean_username(self):
        try:
            return find_user(self.cleaned_data["username"])
        except MembershipError as exc:
            raise forms.ValidationError(str(exc)) from None


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)
