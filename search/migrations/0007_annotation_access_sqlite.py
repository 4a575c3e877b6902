"""SQLite: what ``Annotation.objects.visible_to`` decides by, in one index beside each source.

The tag list counts every visible annotation's tags (``AnnotationQuerySet.tag_counts``).
SQLite's plan reads the visible sources, then each one's annotations by ``source_id``; with
only an index of ``source_id``, that meant reading each annotation's row (its quote and note
included) to learn its collection, author and visibility. This index holds them (and the
id, as every SQLite index does), so the rows are never read (figures in bench/NOTES.md).

PostgreSQL already decides from ``search_annotation_access`` (migration 0003), which holds
the same columns beside the id.
"""

from django.db import migrations

from search.migrations._engines import RunSQLOn


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0006_metadata_index"),
        ("annotations", "0005_collection_newest_index"),
    ]

    operations = [
        RunSQLOn(
            "sqlite",
            [
                "CREATE INDEX search_annotation_access ON annotations_annotation"
                " (source_id, collection_id, author_id, visibility);"
            ],
            ["DROP INDEX IF EXISTS search_annotation_access;"],
        ),
    ]
