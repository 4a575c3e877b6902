"""The codebook's forms: a code's name, description, colour and parent."""

from __future__ import annotations

from collections.abc import Sequence

from django import forms

from annotations.models import CODE_COLOURS, Code
from annotations.w3c import MAX_TAG_LENGTH, tag_name_error

COLOUR_CHOICES = [("", "None (the usual yellow)")] + [
    (value, colour.label) for value, colour in CODE_COLOURS.items()
]


class CodeFieldsForm(forms.Form):
    """Description, colour and parent; ``codes`` are the codebook's, offered as parents."""

    description = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What the code means and when to use it.",
    )
    colour = forms.ChoiceField(
        choices=COLOUR_CHOICES,
        required=False,
        help_text="Its highlights on the reading page take this colour.",
    )
    parent = forms.ChoiceField(required=False, label="Under")

    def __init__(
        self, *args, codes: Sequence[tuple[Code, int]] = (), code: Code | None = None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.codes = {c.tag.slug: c for c, _depth in codes}
        field = self.fields["parent"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "(top level)")] + [
            (c.tag.slug, "\u2003" * depth + c.tag.name)
            for c, depth in codes
            if code is None or c.pk != code.pk
        ]
        if code is not None:
            prefix = f"code-{code.pk}"
            for name, bound in self.fields.items():
                bound.widget.attrs["id"] = f"{prefix}-{name}"

    def clean_parent(self) -> Code | None:
        slug = self.cleaned_data.get("parent") or ""
        return self.codes.get(slug) if slug else None


class CodeAddForm(CodeFieldsForm):
    name = forms.CharField(max_length=MAX_TAG_LENGTH, help_text="A new tag, or one already used.")
    field_order = ["name", "description", "colour", "parent"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        problem = tag_name_error(name)
        if problem:
            raise forms.ValidationError(problem)
        return name


class CodeRenameForm(forms.Form):
    name = forms.CharField(max_length=MAX_TAG_LENGTH, label="New name")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        problem = tag_name_error(name)
        if problem:
            raise forms.ValidationError(problem)
        return name
