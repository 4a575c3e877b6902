"""A revision number that every write to what a reading page shows bumps, in a trigger.

The reading page's cache (annotations.reading) is keyed by it. Triggers, not signals: they
see every way of writing (``QuerySet.update``, ``bulk_create``, the admin, imports, raw SQL)
and run in the writer's transaction.

- SQLite: one trigger per table and change, bumping the row at once (SQLite has one writer
  at a time anyway).
- PostgreSQL: a constraint trigger deferred to commit, bumping the row once per transaction:
  the row is locked only while the transaction commits, so writers do not queue behind a
  long import, and locks taken earlier in a transaction cannot deadlock against it.

Beware on SQLite: a change Django makes by rebuilding a table drops its triggers; make them
again in the same migration (tests/test_reading_cache.py checks every watched table has
them). A new table whose rows a reading page shows needs them too.
"""

from django.db import migrations, models

REVISION_TABLE = "annotations_contentrevision"
# Every table of archive, annotations and taggit; a user's name and standing, not the
# last_login that each login writes.
WATCHED_TABLES = [
    "archive_collection",
    "archive_collection_sources",
    "archive_membership",
    "archive_source",
    "archive_fixitycheck",
    "archive_capture",
    "archive_invitation",
    "archive_collectionevent",
    "annotations_annotation",
    "annotations_taggedannotation",
    "annotations_annotationrevision",
    "annotations_citation",
    "taggit_tag",
    "taggit_taggeditem",
]
USER_COLUMNS = ["username", "is_staff", "is_superuser", "is_active"]

SQLITE_BUMP = (
    f"INSERT INTO {REVISION_TABLE} (id, number) VALUES (1, 1)"
    f" ON CONFLICT (id) DO UPDATE SET number = number + 1;"
)
POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION annotations_bump_content_revision() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('scholion.content_revision_bumped', true), '') <> 'on' THEN
        PERFORM set_config('scholion.content_revision_bumped', 'on', true);
        INSERT INTO {REVISION_TABLE} (id, number) VALUES (1, 1)
            ON CONFLICT (id) DO UPDATE SET number = {REVISION_TABLE}.number + 1;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"""


def watched():
    for table in WATCHED_TABLES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            yield table, event, event
    yield "auth_user", "INSERT", "INSERT"
    yield "auth_user", "UPDATE", "UPDATE OF " + ", ".join(USER_COLUMNS)
    yield "auth_user", "DELETE", "DELETE"


def trigger_name(table: str, event: str) -> str:
    return f"{table}_revision_{event.lower()}"


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION)
    elif vendor != "sqlite":
        raise NotImplementedError(f"Scholion supports SQLite and PostgreSQL, not {vendor}.")
    schema_editor.execute(f"INSERT INTO {REVISION_TABLE} (id, number) VALUES (1, 1)")
    for table, event, clause in watched():
        name = trigger_name(table, event)
        if vendor == "sqlite":
            schema_editor.execute(
                f"CREATE TRIGGER {name} AFTER {clause} ON {table} BEGIN {SQLITE_BUMP} END;"
            )
        else:
            schema_editor.execute(
                f"CREATE CONSTRAINT TRIGGER {name} AFTER {clause} ON {table}"
                " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
                " EXECUTE FUNCTION annotations_bump_content_revision();"
            )


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table, event, _ in watched():
        on = f" ON {table}" if vendor == "postgresql" else ""
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger_name(table, event)}{on}")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS annotations_bump_content_revision()")


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0007_access_index"),
        ("archive", "0014_teams"),
        ("taggit", "0006_rename_taggeditem_content_type_object_id_taggit_tagg_content_8fc721_idx"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.CreateModel(
            name="ContentRevision",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.PositiveBigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
