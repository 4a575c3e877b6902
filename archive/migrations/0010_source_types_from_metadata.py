"""Existing sources get the type their references assumed before sources had one, so that no
reference changes but through the new fields: an ISBN made a book, a DOI a journal article, a
URL or an HTML original a web page, anything else a document ("Other"). Source.inferred_type
keeps the same rule for packages exported before types. A mistyped source (a news article
with a DOI, say) is corrected by hand.

Stored ISBNs are normalised (no hyphens or spaces, X capital) as ISBNField now keeps them.
One whose check digit is wrong is kept as it was: it is the curator's to correct (the metadata
form says what is wrong), not a migration's to drop.
"""

import re

from django.db import migrations


def isbn_check_digit_ok(isbn):
    # archive.models.isbn_check_digit_ok as it was when this migration was written.
    if re.fullmatch(r"\d{9}[\dX]", isbn):
        total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(isbn))
        return total % 11 == 0
    if re.fullmatch(r"97[89]\d{10}", isbn):
        total = sum((3 if i % 2 else 1) * int(c) for i, c in enumerate(isbn))
        return total % 10 == 0
    return False


def inferred_type(isbn, doi, media_type, url):
    # archive.cite.csl_type before sources had a type (Source.inferred_type today).
    if isbn:
        return "book"
    if doi:
        return "article-journal"
    if media_type == "text/html" or url:
        return "webpage"
    return "document"


def forward(apps, schema_editor):
    Source = apps.get_model("archive", "Source")
    # Only the metadata columns are read: the text layer may be megabytes per row.
    rows = Source.objects.only("pk", "isbn", "doi", "media_type", "url").order_by("pk")
    for source in rows.iterator(chunk_size=500):
        changes = {"source_type": inferred_type(source.isbn, source.doi, source.media_type, source.url)}
        isbn = re.sub(r"[\s\-\u2010-\u2015]", "", source.isbn).upper()
        if isbn != source.isbn and isbn_check_digit_ok(isbn):
            changes["isbn"] = isbn
        Source.objects.filter(pk=source.pk).update(**changes)


class Migration(migrations.Migration):
    dependencies = [("archive", "0009_source_type_and_reference_fields")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
