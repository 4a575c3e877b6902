"""Collections whose slug no URL can hold (spaces, slashes, accents), which an import could
make before it checked them, get a slug that can: every page listing them had answered 500.
"""

import re

from django.db import migrations
from django.utils.text import slugify

SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]+\Z")
MAX_LENGTH = 80


def repair_slugs(apps, schema_editor):
    Collection = apps.get_model("archive", "Collection")
    taken = set(Collection.objects.values_list("slug", flat=True))
    for collection in Collection.objects.order_by("pk"):
        if SLUG_RE.match(collection.slug) and len(collection.slug) <= MAX_LENGTH:
            continue
        base = slugify(re.sub(r"[^\w\s-]", " ", collection.slug))[: MAX_LENGTH - 4]
        base = base.strip("-_") or "collection"
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.discard(collection.slug)
        taken.add(slug)
        Collection.objects.filter(pk=collection.pk).update(slug=slug)


class Migration(migrations.Migration):
    dependencies = [("archive", "0007_source_bytes_not_unique")]

    operations = [migrations.RunPython(repair_slugs, migrations.RunPython.noop)]
