"""SQLite: what ``Annotation.objects.visible_to`` decides by, in one index beside each source.

This migration made the index ``search_annotation_access``; annotations makes it now
(annotations 0007), as the app whose table it indexes. Kept, empty, as a step of the
migration history that databases have already applied.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0006_metadata_index"),
        ("annotations", "0005_collection_newest_index"),
    ]

    operations: list = []
