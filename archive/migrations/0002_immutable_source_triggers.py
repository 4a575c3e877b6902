"""Database triggers that reject any UPDATE of a source's bytes-related columns or text layer.

The model refuses such changes too; the triggers make it hold against raw SQL and
QuerySet.update(), which bypass the model.
"""

from django.db import migrations

IMMUTABLE_COLUMNS = [
    "uuid",
    "sha256",
    "size",
    "blob_name",
    "media_type",
    "declared_media_type",
    "encoding",
    "encoding_note",
    "original_filename",
    "original_url",
    "archived_at",
    "archived_via",
    "text",
    "blocks",
    "extractor",
    "extractor_version",
]
MESSAGE = "archive_source: the original bytes and text layer of an archived source are immutable"


def create_triggers(apps, schema_editor, columns=IMMUTABLE_COLUMNS):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        changed = " OR ".join(f'NEW."{c}" IS NOT OLD."{c}"' for c in columns)
        schema_editor.execute(
            "CREATE TRIGGER archive_source_immutable BEFORE UPDATE ON archive_source "
            f"WHEN {changed} BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;"
        )
    elif vendor == "postgresql":
        changed = " OR ".join(f'NEW."{c}" IS DISTINCT FROM OLD."{c}"' for c in columns)
        schema_editor.execute(
            "CREATE OR REPLACE FUNCTION archive_source_immutable() RETURNS trigger AS $$ "
            f"BEGIN IF {changed} THEN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql;"
        )
        schema_editor.execute(
            "CREATE TRIGGER archive_source_immutable BEFORE UPDATE ON archive_source "
            "FOR EACH ROW EXECUTE FUNCTION archive_source_immutable();"
        )
    else:
        raise NotImplementedError(f"Scholion supports SQLite and PostgreSQL, not {vendor}.")


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    schema_editor.execute("DROP TRIGGER IF EXISTS archive_source_immutable" +
                          (" ON archive_source" if vendor == "postgresql" else ""))
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS archive_source_immutable()")


class Migration(migrations.Migration):
    dependencies = [("archive", "0001_initial")]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]
