"""The search page's query string: the words and every filter, all shareable as a URL."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from archive.models import validate_date_published
from search.query import SORTS, Filters, Query, QueryError, parse_query


class TagsField(forms.Field):
    """Any number of ``tag`` parameters; empty ones (a blank "add a tag" box) are dropped."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[str]:
        if isinstance(value, str):
            value = [value]
        values = [v.strip() for v in (value or []) if v and v.strip()]
        unique = list(dict.fromkeys(values))
        if any(len(v) > 100 for v in unique):
            raise ValidationError("A tag is at most 100 characters long.")
        if len(unique) > 10:
            raise ValidationError("Filter by at most 10 tags at once.")
        return unique


class SearchForm(forms.Form):
    q = forms.CharField(label="Search for", required=False, strip=True)
    collection = forms.SlugField(required=False, max_length=80, label="Collection")
    tag = TagsField(required=False, label="Tags")
    author = forms.CharField(required=False, max_length=150, label="Annotated by (username)")
    source = forms.UUIDField(required=False, label="Source")
    media_type = forms.CharField(required=False, max_length=100, label="Media type")
    archived_from = forms.DateField(required=False, label="Archived from")
    archived_to = forms.DateField(required=False, label="Archived to")
    published_from = forms.CharField(
        required=False, max_length=10, validators=[validate_date_published], label="Published from"
    )
    published_to = forms.CharField(
        required=False, max_length=10, validators=[validate_date_published], label="Published to"
    )
    has_note = forms.ChoiceField(
        required=False,
        label="Note",
        choices=[("", "With or without a note"), ("yes", "With a note"), ("no", "Without a note")],
    )
    mine = forms.BooleanField(required=False, label="Only my annotations")
    overlap = forms.BooleanField(required=False, label="Overlapping passages")
    sort = forms.ChoiceField(required=False, choices=list(SORTS.items()), label="Order")

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_q(self) -> Query | None:
        text = self.cleaned_data["q"]
        if not text:
            return None
        try:
            return parse_query(text)
        except QueryError as exc:
            raise ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        super().clean()
        # What Form.clean returns; the stubs allow None there, for subclasses that return nothing.
        data = self.cleaned_data
        start, end = data.get("archived_from"), data.get("archived_to")
        if start and end and start > end:
            self.add_error("archived_to", "The end of the range comes before its start.")
        start, end = data.get("published_from"), data.get("published_to")
        if start and end and start > end and not start.startswith(end):
            self.add_error("published_to", "The end of the range comes before its start.")
        if data.get("mine") and not (self.user and self.user.is_authenticated):
            self.add_error("mine", "Log in to search your own annotations.")
        if data.get("overlap") and len(data.get("tag") or []) != 2:
            self.add_error("tag", "Overlapping passages are found for exactly two tags.")
        return data

    @property
    def filters(self) -> Filters:
        data = self.cleaned_data
        return Filters(
            collection=data["collection"],
            tags=data["tag"],
            author=data["author"].strip(),
            source=data["source"],
            media_type=data["media_type"].strip(),
            archived_from=data["archived_from"],
            archived_to=data["archived_to"],
            published_from=data["published_from"],
            published_to=data["published_to"],
            has_note={"yes": True, "no": False}.get(data["has_note"]),
            mine=data["mine"],
            overlap=data.get("overlap", False),  # not a browse page's filter
        )

    @property
    def chosen_sort(self) -> str:
        return self.cleaned_data.get("sort") or "relevance"


class BrowseForm(SearchForm):
    """The search page's filters without the words: the collection and tag pages take the
    same query parameters, so a filtered browse page has a shareable URL too."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("q", "sort", "overlap"):
            del self.fields[name]

    def browse_filters(self, **fixed) -> Filters:
        """The filters chosen, with ``fixed`` ones (the page's collection or tag) set.
        An invalid form filters nothing beyond the fixed ones; its errors are shown."""
        filters = self.filters if self.is_valid() else Filters()
        for name, value in fixed.items():
            if name == "tags":
                value = list(dict.fromkeys([*value, *filters.tags]))
            setattr(filters, name, value)
        return filters
