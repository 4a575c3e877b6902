"""A source's type (news article, web page, journal article...) and the fields a journal
article or a chapter needs: the title of what it is published in, volume, issue, pages and
editors. ISBNs are checked and kept normalised from now on (migration 0010 normalises the
stored ones and gives existing sources a type).

The new columns are added to the table with ``ALTER TABLE ADD COLUMN``, and then, on SQLite,
the table is rebuilt once with the text layer and its blocks last again (see migration 0005:
lists read the new columns, and a column after the text layer costs a walk over its overflow
pages), and the immutability trigger of migration 0002, dropped with the old table, made
again. Django's own AddField would rebuild the SQLite table once per field.
"""

import importlib

from django.db import migrations, models

import archive.models

triggers = importlib.import_module("archive.migrations.0002_immutable_source_triggers")

NEW_FIELDS = ["source_type", "editors", "container_title", "volume", "issue", "pages"]


def add_columns(apps, schema_editor):
    Source = apps.get_model("archive", "Source")
    fields = [Source._meta.get_field(name) for name in NEW_FIELDS]
    if schema_editor.connection.vendor != "sqlite":
        for field in fields:
            schema_editor.add_field(Source, field)
        return
    table = schema_editor.quote_name(Source._meta.db_table)
    for field in fields:
        definition, _ = schema_editor.column_sql(Source, field, include_default=False)
        default = schema_editor.prepare_default(schema_editor.effective_default(field))
        schema_editor.execute(
            f"ALTER TABLE {table} ADD COLUMN {schema_editor.quote_name(field.column)}"
            f" {definition} DEFAULT {default}"
        )
    # Rebuilt from the model as the state now has it: the text layer last, no column default.
    schema_editor._remake_table(Source)
    triggers.create_triggers(apps, schema_editor)


def remove_columns(apps, schema_editor):
    Source = apps.get_model("archive", "Source")
    for name in NEW_FIELDS:
        schema_editor.remove_field(Source, Source._meta.get_field(name))


class Migration(migrations.Migration):
    dependencies = [("archive", "0008_repair_collection_slugs")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="source",
                    name="source_type",
                    field=models.CharField(
                        choices=[
                            ("article-newspaper", "News article"),
                            ("webpage", "Web page"),
                            ("report", "Report"),
                            ("article-journal", "Journal article"),
                            ("book", "Book"),
                            ("chapter", "Book chapter"),
                            ("thesis", "Thesis"),
                            ("interview", "Interview"),
                            ("dataset", "Dataset"),
                            ("document", "Other"),
                        ],
                        default="document",
                        help_text="What kind of work it is: references are written differently for each.",
                        max_length=20,
                        verbose_name="type",
                    ),
                ),
                migrations.AddField(
                    model_name="source",
                    name="editors",
                    field=models.JSONField(
                        blank=True,
                        default=list,
                        help_text="Of the book a chapter is in, or of an edited volume: names, in order.",
                        validators=[archive.models.validate_editors],
                    ),
                ),
                migrations.AddField(
                    model_name="source",
                    name="container_title",
                    field=models.CharField(
                        blank=True,
                        help_text="The journal, newspaper, website or book it is part of.",
                        max_length=500,
                        verbose_name="published in",
                    ),
                ),
                migrations.AddField(
                    model_name="source",
                    name="volume",
                    field=models.CharField(blank=True, max_length=50),
                ),
                migrations.AddField(
                    model_name="source",
                    name="issue",
                    field=models.CharField(blank=True, max_length=50),
                ),
                migrations.AddField(
                    model_name="source",
                    name="pages",
                    field=models.CharField(blank=True, help_text="e.g. 45–67", max_length=50),
                ),
                # The same column: only its Python cleaning (normalised, check digit) changes.
                migrations.AlterField(
                    model_name="source",
                    name="isbn",
                    field=archive.models.ISBNField(
                        blank=True,
                        help_text="ISBN-10 or ISBN-13; hyphens and spaces are fine.",
                        max_length=20,
                        validators=[archive.models.validate_isbn],
                        verbose_name="ISBN",
                    ),
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
        migrations.RunPython(add_columns, remove_columns),
    ]
