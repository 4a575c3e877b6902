"""Where each page of a PDF's text layer (or, later, each chapter of a book) begins and
ends, kept with the text layer and as immutable as it.

The column is added with ``ALTER TABLE ADD COLUMN``; on SQLite the table is then rebuilt
with the text layer and its blocks last again (migration 0005: lists read sources without
their text, and a column after it costs a walk over its overflow pages), and the
immutability trigger of migration 0002 made again, covering the new column too.
"""

import importlib

from django.db import migrations, models

triggers = importlib.import_module("archive.migrations.0002_immutable_source_triggers")

IMMUTABLE_COLUMNS = [*triggers.IMMUTABLE_COLUMNS, "divisions"]


def add_column(apps, schema_editor):
    Source = apps.get_model("archive", "Source")
    field = Source._meta.get_field("divisions")
    if schema_editor.connection.vendor != "sqlite":
        schema_editor.add_field(Source, field)
        triggers.drop_triggers(apps, schema_editor)
        triggers.create_triggers(apps, schema_editor, IMMUTABLE_COLUMNS)
        return
    table = schema_editor.quote_name(Source._meta.db_table)
    definition, _ = schema_editor.column_sql(Source, field, include_default=False)
    schema_editor.execute(
        f"ALTER TABLE {table} ADD COLUMN {schema_editor.quote_name(field.column)}"
        f" {definition} DEFAULT '{{}}'"
    )
    schema_editor._remake_table(Source)
    triggers.create_triggers(apps, schema_editor, IMMUTABLE_COLUMNS)


def remove_column(apps, schema_editor):
    Source = apps.get_model("archive", "Source")
    triggers.drop_triggers(apps, schema_editor)
    schema_editor.remove_field(Source, Source._meta.get_field("divisions"))
    triggers.drop_triggers(apps, schema_editor)
    triggers.create_triggers(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("archive", "0012_capture")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="source",
                    name="divisions",
                    field=models.JSONField(default=dict, editable=False),
                ),
                # The text layer and its blocks last again (migration 0005).
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
        migrations.RunPython(add_column, remove_column),
    ]
