"""Each source's distinct words, indexed without positions, to find sources by word quickly.

SQLite: an FTS5 table with ``detail=none`` (rowids only) reading search_sourcevocabulary as
external content, kept in step by triggers. PostgreSQL: a generated ``tsvector`` of bare
lexemes (no positions) with a GIN index. Sources already indexed get their vocabulary from
their indexed stretches of text, so no rebuild is needed.
"""

import django.db.models.deletion
from django.db import migrations, models

from search.migrations._engines import RunSQLOn, fts5

vocabulary_sql, vocabulary_reverse = fts5(
    "search_sourcevocabulary",
    "search_vocabulary_fts",
    "source_id",
    ["text_words", "metadata_words"],
    detail="none",
)

POSTGRES_SQL = [
    "ALTER TABLE search_sourcevocabulary ADD COLUMN document tsvector GENERATED ALWAYS AS ("
    " array_to_tsvector(array_remove("
    " string_to_array(text_words || ' ' || metadata_words, ' '), ''))) STORED;",
    "CREATE INDEX search_sourcevocabulary_document ON search_sourcevocabulary"
    " USING gin (document);",
    # The covering indexes visible_to decides by (search_source_access,
    # search_annotation_access) were made here; the apps whose tables they index make them
    # now (archive 0011, annotations 0007).
    # Matching rows, always through the GIN index. Each row's words are stored out of line,
    # so the planner prices a scan of the table at a few pages, when every row it reads
    # means fetching and decompressing a long tsvector (bench/NOTES.md); and joined into a
    # larger statement, it mistakes how many rows a word matches.
    # A function with its own settings is planned on its own: only its result is joined.
    *(
        f"CREATE FUNCTION {name}(query tsquery) RETURNS SETOF bigint"
        " LANGUAGE sql STABLE PARALLEL SAFE ROWS 1000 SET enable_seqscan = off"
        f" AS $$ SELECT {column} FROM {table} WHERE document @@ query $$;"
        for name, column, table in [
            ("search_vocabulary_sources", "source_id", "search_sourcevocabulary"),
            ("search_entry_annotations", "annotation_id", "search_annotationentry"),
        ]
    ),
]
POSTGRES_REVERSE = [
    "DROP FUNCTION IF EXISTS search_entry_annotations(tsquery);",
    "DROP FUNCTION IF EXISTS search_vocabulary_sources(tsquery);",
    "DROP INDEX IF EXISTS search_sourcevocabulary_document;",
    "ALTER TABLE search_sourcevocabulary DROP COLUMN IF EXISTS document;",
]


def fill(apps, schema_editor):
    """A vocabulary for each completely indexed source, from its indexed words."""
    SourceSegment = apps.get_model("search", "SourceSegment")
    SourceVocabulary = apps.get_model("search", "SourceVocabulary")
    metadata = SourceSegment.objects.filter(kind="meta").order_by("source_id")
    batch = []
    for row in metadata.values("source_id", "words").iterator(chunk_size=200):
        texts = SourceSegment.objects.filter(source_id=row["source_id"], kind="text")
        words = set()
        for text in texts.values_list("words", flat=True):
            words.update(text.split())
        batch.append(
            SourceVocabulary(
                source_id=row["source_id"],
                text_words=" ".join(sorted(words)),
                metadata_words=row["words"],
            )
        )
        if len(batch) == 200:
            SourceVocabulary.objects.bulk_create(batch)
            batch = []
    SourceVocabulary.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0002_citations"),
        ("archive", "0004_source_media_type_index"),
        ("search", "0002_engine_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="SourceVocabulary",
            fields=[
                (
                    "source",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="search_vocabulary",
                        serialize=False,
                        to="archive.source",
                    ),
                ),
                ("text_words", models.TextField(blank=True)),
                ("metadata_words", models.TextField(blank=True)),
            ],
        ),
        RunSQLOn("sqlite", vocabulary_sql, vocabulary_reverse),
        RunSQLOn("postgresql", POSTGRES_SQL, POSTGRES_REVERSE),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
