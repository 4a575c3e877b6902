"""PostgreSQL: what ``Source.objects.visible_to`` decides by, beside each id.

A search checks the thousands of sources a common word matches from this index alone
(index-only scans), without reading their rows. The index was made by search's migration
0003, which no longer makes it: archive owns the indexes of its table. A database that has
it keeps it (``IF NOT EXISTS``: nothing is rebuilt); a new database gets it here. Its name
is kept.

Not in ``Source.Meta``: an index there exists on every engine, and SQLite has no covering
indexes (it would get a useless index of the id alone). SQLite decides from
``archive_source_visible_idx`` instead.
"""

from django.db import migrations

CREATE = (
    "CREATE INDEX IF NOT EXISTS search_source_access ON archive_source (id)"
    " INCLUDE (withdrawn_at, archived_by_id);"
)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS search_source_access;")


class Migration(migrations.Migration):
    dependencies = [("archive", "0010_source_types_from_metadata")]

    operations = [migrations.RunPython(create_index, drop_index)]
