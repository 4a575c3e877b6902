"""What ``Annotation.objects.visible_to`` decides by, in an index of annotations' own.

The index was made by search's migrations (0003 on PostgreSQL, 0007 on SQLite), which no
longer make it: annotations owns the indexes of its table. A database that has it keeps it
(``IF NOT EXISTS``: nothing is rebuilt); a new database gets it here. Its name is kept.

The two engines want different indexes, so neither is in ``Annotation.Meta`` (an index
there exists on every engine):

- PostgreSQL: the columns beside each id (a covering index), so a search checks the
  thousands of annotations a common word matches from the index alone (index-only scans).
- SQLite, which has no covering indexes of that kind: the same columns beside each source,
  so the tag list reads each visible source's annotations without reading their rows.

Beware on SQLite: a change Django makes by rebuilding the table drops this index; make it
again in the same migration.
"""

from django.db import migrations

CREATE = {
    "postgresql": "CREATE INDEX IF NOT EXISTS search_annotation_access ON annotations_annotation"
    " (id) INCLUDE (source_id, collection_id, author_id, visibility);",
    "sqlite": "CREATE INDEX IF NOT EXISTS search_annotation_access ON annotations_annotation"
    " (source_id, collection_id, author_id, visibility);",
}


def create_index(apps, schema_editor):
    schema_editor.execute(CREATE[schema_editor.connection.vendor])


def drop_index(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS search_annotation_access;")


class Migration(migrations.Migration):
    dependencies = [("annotations", "0006_provenance_links")]

    operations = [migrations.RunPython(create_index, drop_index)]
