"""SQLite: each source's text layer and blocks at the end of its row.

SQLite stores a row's columns one after another, and a value too large for its page runs on
over a chain of overflow pages. To read a column that comes after the text layer (a title
for a list, ``withdrawn_at`` or ``archived_by`` for the visibility rule) it walks that
chain: with the text layer in the middle of the row, every such read cost as much as
reading the whole text. With it last, they read only the row's first page (figures in
bench/NOTES.md).

The state moves the two fields last, so that a later rebuild of the table by Django keeps
them there; on SQLite the table is rebuilt in that order, its indexes with it, and the
trigger of migration 0002 (dropped with the old table) made again. A field added later
lands after them (``ALTER TABLE ADD COLUMN``): if lists read it, move the two last again
the same way. PostgreSQL keeps large values out of line (TOAST): nothing to do there.
"""

import importlib

from django.db import migrations, models

triggers = importlib.import_module("archive.migrations.0002_immutable_source_triggers")


def rebuild_in_field_order(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    # The table remade from the model as the state now has it, as Django does for an
    # AlterField on SQLite: a new table, the rows copied, the old one dropped, indexes made.
    schema_editor._remake_table(apps.get_model("archive", "Source"))
    triggers.create_triggers(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("archive", "0004_source_media_type_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="source", name="text"),
                migrations.RemoveField(model_name="source", name="blocks"),
                migrations.AddField(
                    model_name="source", name="text", field=models.TextField(editable=False)
                ),
                migrations.AddField(
                    model_name="source",
                    name="blocks",
                    field=models.JSONField(default=list, editable=False),
                ),
            ]
        ),
        # Back: the columns may stay where they are (their order changes nothing else).
        migrations.RunPython(rebuild_in_field_order, migrations.RunPython.noop),
    ]
