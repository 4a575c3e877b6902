from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from archive.models import (
    MAX_WAITING_CAPTURES,
    Capture,
    Collection,
    Source,
    normalise_isbn,
    validate_date_published,
    validate_doi,
    validate_isbn,
)


class CreatorsField(forms.CharField):
    """Creators as one name per line ("Family, Given" or a full name), kept in order."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class ArchiveForm(forms.Form):
    file = forms.FileField(
        required=False,
        help_text="Plain text or HTML, as it was published. The bytes are kept unchanged.",
    )
    text = forms.CharField(
        label="…or paste text",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Pasted text is archived as UTF-8 plain text.",
    )
    title = forms.CharField(
        required=False, max_length=500, help_text="Leave empty to take it from the file."
    )
    original_url = forms.URLField(
        label="Original URL",
        required=False,
        max_length=2000,
        assume_scheme="https",
        help_text="Where the source was published, if known.",
    )
    collection = forms.ModelChoiceField(queryset=Collection.objects.none(), required=False)
    whole_page = forms.BooleanField(
        label="Keep the whole page",
        required=False,
        help_text=(
            "For an HTML page: keep all of its text, menus and comments included. Otherwise"
            " only the article is kept as the text you read and annotate."
        ),
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:
            collection_field = self.fields["collection"]
            assert isinstance(collection_field, forms.ModelChoiceField)
            collection_field.queryset = Collection.objects.writable_by(user)
        self.fields["file"].help_text += (
            f" Up to {filesizeformat(settings.SCHOLION_MAX_UPLOAD_BYTES)}; a file over"
            f" {filesizeformat(settings.SCHOLION_MAX_TEXT_BYTES)} is kept without a text layer"
            " (it cannot be read or annotated here)."
        )

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload is not None:
            if upload.size == 0:
                raise forms.ValidationError("The file is empty: there is nothing to archive.")
            limit = settings.SCHOLION_MAX_UPLOAD_BYTES
            if upload.size > limit:
                raise forms.ValidationError(
                    f"The file is {upload.size:,} bytes, over the limit of {limit:,} bytes."
                )
        return upload

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        has_file = bool(cleaned.get("file"))
        has_text = bool((cleaned.get("text") or "").strip())
        if has_file and has_text:
            raise forms.ValidationError("Upload a file or paste text, not both.")
        if not has_file and not has_text and not self.errors.get("file"):
            raise forms.ValidationError("Choose a file to upload or paste some text.")
        return cleaned


MAX_URLS_PER_REQUEST = 20


def capture_url(text: str) -> str | None:
    """``text`` as a web address a capture may ask for (http or https), or None. Whether its
    host may be fetched is decided when the capture runs, at every redirect."""
    try:
        url = forms.URLField(max_length=2000, assume_scheme="https").clean(text.strip())
    except forms.ValidationError:
        return None
    return url if urlsplit(url).scheme in ("http", "https") else None


def too_many_waiting(room: int) -> str:
    return (
        f"You have {MAX_WAITING_CAPTURES - room} captures waiting or running, the most one person"
        f" may have at once ({MAX_WAITING_CAPTURES}); you may ask for {room} more now."
        " Nothing was captured: try again once some have finished."
    )


class CaptureForm(forms.Form):
    """One web address or several, one per line, to capture in the background."""

    urls = forms.CharField(
        label="Web addresses",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text=(
            "One address per line (http or https), at most"
            f" {MAX_URLS_PER_REQUEST} at a time. Each page is fetched in the background and"
            " kept exactly as the server sent it, with a web archive (WACZ) of the capture."
        ),
    )
    whole_page = forms.BooleanField(
        label="Keep the whole page",
        required=False,
        help_text=(
            "The text to read and annotate is the article alone, without the site's menus and"
            " footers; tick this to keep everything on the page."
        ),
    )
    collection = forms.ModelChoiceField(queryset=Collection.objects.none(), required=False)

    def __init__(self, *args, user=None, **kwargs):
        kwargs.setdefault("prefix", "capture")
        super().__init__(*args, **kwargs)
        self.user = user
        if user is not None:
            collection_field = self.fields["collection"]
            assert isinstance(collection_field, forms.ModelChoiceField)
            collection_field.queryset = Collection.objects.writable_by(user)

    def clean_urls(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["urls"].splitlines() if line.strip()]
        if len(lines) > MAX_URLS_PER_REQUEST:
            raise forms.ValidationError(
                f"That is {len(lines)} addresses; capture at most {MAX_URLS_PER_REQUEST} at a time."
            )
        urls, bad = [], []
        for line in lines:
            url = capture_url(line)
            if url is None:
                bad.append(line)
            elif url not in urls:
                urls.append(url)
        if bad:
            listed = ", ".join(f"“{line[:80]}”" for line in bad[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise forms.ValidationError(
                f"Not a web address (http or https): {listed}{more}. Nothing was captured."
            )
        if self.user is not None and len(urls) > (room := Capture.room_for(self.user)):
            raise forms.ValidationError(too_many_waiting(room))
        return urls


class SourceMetadataForm(forms.ModelForm):
    creators = CreatorsField(required=False, help_text="One name per line, e.g. “Smith, Jane”.")
    editors = CreatorsField(
        required=False,
        help_text="Of the book a chapter is in, or of an edited volume: one name per line.",
    )
    date_published = forms.CharField(
        required=False,
        max_length=10,
        validators=[validate_date_published],
        help_text="YYYY, YYYY-MM or YYYY-MM-DD",
    )
    url = forms.URLField(label="URL", required=False, max_length=2000, assume_scheme="https")
    # Validated in clean_doi, after a pasted https://doi.org/ prefix is removed.
    doi = forms.CharField(label="DOI", required=False, max_length=200)

    class Meta:
        model = Source
        fields = list(Source.METADATA_FIELDS)
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def clean_doi(self):
        value = self.cleaned_data["doi"].strip()
        for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:"):
            if value.lower().startswith(prefix):
                value = value[len(prefix) :]
        validate_doi(value)
        return value

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A form posted without a type (a script, a form from before types) keeps the
        # source's type; the page's own select always sends one.
        self.fields["source_type"].required = False

    def clean_source_type(self):
        return self.cleaned_data["source_type"] or self.instance.source_type

    def clean_isbn(self):
        value = self.cleaned_data["isbn"].strip()
        validate_isbn(value)
        return normalise_isbn(value)


class CollectionForm(forms.ModelForm):
    class Meta:
        model = Collection
        fields = ["title", "description", "is_public"]
        labels = {"is_public": "Public"}
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}
        help_texts = {
            "description": "What the collection gathers and why; shown on its page.",
            "is_public": "Anyone, including visitors who are not logged in, may read its sources "
            "and the annotations shared with it. Leave unticked to keep it to its members.",
        }
