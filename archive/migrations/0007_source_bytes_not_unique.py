"""A source's SHA-256 is no longer unique: the bytes are stored once, but people who cannot
see each other's sources each archive them as a source of their own.

On SQLite, dropping the UNIQUE constraint rebuilds the table. Django's own rebuild for an
altered field would put that field last, after the text layer (see migration 0005), so the
table is rebuilt here in the model's order instead, and the immutability trigger of
migration 0002, dropped with the old table, made again.
"""

import importlib

from django.db import migrations, models

triggers = importlib.import_module("archive.migrations.0002_immutable_source_triggers")


def unique_sha256(model):
    field = models.CharField(max_length=64, unique=True, editable=False)
    field.set_attributes_from_name("sha256")
    field.model = model
    return field


def forward(apps, schema_editor):
    Source = apps.get_model("archive", "Source")
    if schema_editor.connection.vendor == "sqlite":
        schema_editor._remake_table(Source)
        triggers.create_triggers(apps, schema_editor)
    else:
        schema_editor.alter_field(Source, unique_sha256(Source), Source._meta.get_field("sha256"))


def backward(apps, schema_editor):
    Source = apps.get_model("archive", "Source")
    new, old = Source._meta.get_field("sha256"), unique_sha256(Source)
    if schema_editor.connection.vendor == "sqlite":
        schema_editor._remake_table(Source, alter_fields=[(new, old)])
        triggers.create_triggers(apps, schema_editor)
    else:
        schema_editor.alter_field(Source, new, old)


class Migration(migrations.Migration):
    dependencies = [("archive", "0006_source_archived_indexes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="source",
                    name="sha256",
                    field=models.CharField(db_index=True, editable=False, max_length=64),
                )
            ]
        ),
        migrations.RunPython(forward, backward),
    ]
