"""Export filters are the search page's filters (search.forms.SearchForm), read the same way."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.datastructures import MultiValueDict

from archive.models import Collection
from exports.scope import ExportScope
from search.forms import SearchForm

# The search parameters an export understands (a text query is not one of them).
FILTER_PARAMETERS = (
    "tag",
    "author",
    "source",
    "media_type",
    "archived_from",
    "archived_to",
    "published_from",
    "published_to",
    "has_note",
    "mine",
)


def export_scope(
    collection: Collection, user, base_url: str, data: dict[str, Any] | None = None
) -> ExportScope:
    """The scope of an export of ``collection`` for ``user``, narrowed by ``data`` (a QueryDict
    or a dict of the search filters). Raises ValidationError naming each bad filter."""
    data = data or {}
    given = {
        k: data.getlist(k) if hasattr(data, "getlist") else data[k]
        for k in FILTER_PARAMETERS
        if k in data
    }
    given = {k: (v[0] if isinstance(v, list) and k != "tag" and v else v) for k, v in given.items()}
    form = SearchForm(given, user=user)
    if not form.is_valid():
        messages = [
            f"{name}: {' '.join(str(error) for error in errors)}"
            for name, errors in form.errors.items()
            if name != "q"
        ]
        raise ValidationError(messages or ["The filters are not valid."])
    return ExportScope(
        collection=collection, user=user, base_url=base_url, filters=form.filters, query=given
    )


def too_large_message() -> str:
    limit = settings.SCHOLION_IMPORT_MAX_UPLOAD_BYTES
    return (
        f"Nothing was imported: this package is larger than the {filesizeformat(limit)}"
        f" ({limit:,} bytes) the import page accepts. An administrator can import it on the"
        " server with “manage.py import_collection”."
    )


class ImportForm(forms.Form):
    package = forms.FileField(
        label="Package (.zip or .qdpx)",
        help_text=(
            "A collection exported from Scholion as a BagIt package, or a REFI-QDA project"
            " (.qdpx) from ATLAS.ti, MAXQDA, NVivo, QualCoder or Scholion."
        ),
    )
    collection = forms.ModelChoiceField(
        queryset=Collection.objects.none(),
        required=False,
        to_field_name="slug",
        label="Into collection (REFI-QDA projects only)",
        empty_label="A new collection",
        help_text=(
            "One of your collections, or a new one named after the project. A Scholion"
            " package brings its own collection."
        ),
    )

    def __init__(self, *args: Any, user=None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the collections the person owns: a choice of anyone else's is not valid, and
        # the form says no more about it than about a slug that does not exist.
        field = self.fields["collection"]
        assert isinstance(field, forms.ModelChoiceField)
        if user is not None and user.is_authenticated:
            field.queryset = Collection.objects.filter(owner=user).order_by("title")

    @classmethod
    def refused_unread(cls, user=None) -> ImportForm:
        """The form as shown for an upload refused, unread, for the length it announced."""
        form = cls(data={}, files=MultiValueDict(), user=user)
        form.errors["package"] = form.error_class([too_large_message()])
        return form

    def clean_package(self):
        package = self.cleaned_data["package"]
        # The view refused a longer request before reading it; this counts what arrived.
        if package.size > settings.SCHOLION_IMPORT_MAX_UPLOAD_BYTES:
            raise ValidationError(too_large_message())
        return package


class HypothesisImportForm(forms.Form):
    file = forms.FileField(
        label="Hypothesis file (.json)",
        help_text=(
            "Your Hypothesis export (Export in the Hypothesis sidebar) or the search results of"
            " its API."
        ),
    )

    def clean_file(self):
        from exports.hypothesis import max_bytes  # the import module reads this form's data

        upload = self.cleaned_data["file"]
        limit = max_bytes()
        if upload.size > limit:
            raise ValidationError(
                f"Nothing was imported: this file is larger than the {filesizeformat(limit)}"
                " a Hypothesis import accepts."
            )
        return upload
