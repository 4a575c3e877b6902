"""PostgreSQL: the matching functions of migration 0003, reading only from a given id on.

A GIN index yields every match of a word, in no order; for a word in thousands of rows,
reading each row found costs more than the index. ``search.query`` first asks for the
matches among the newest ids only: with ``id >= from_id`` PostgreSQL combines the GIN index
with the primary key's range (a BitmapAnd) and reads only the rows in both. How wide a
window to start with comes from the planner's estimate of how many rows a word matches; with
the default statistics (the 1,000 most common words of a sample) it guesses a prefix's rows at
half what they are, so the two ``document`` columns keep ten times as many.
"""

from django.db import migrations

from search.migrations._engines import RunSQLOn

FUNCTIONS = [
    ("search_vocabulary_sources", "source_id", "search_sourcevocabulary"),
    ("search_entry_annotations", "annotation_id", "search_annotationentry"),
]


class Migration(migrations.Migration):
    dependencies = [("search", "0003_source_vocabulary")]

    operations = [
        RunSQLOn(
            "postgresql",
            [
                f"CREATE FUNCTION {name}(query tsquery, from_id bigint) RETURNS SETOF bigint"
                " LANGUAGE sql STABLE PARALLEL SAFE ROWS 1000 SET enable_seqscan = off"
                f" AS $$ SELECT {column} FROM {table}"
                f" WHERE document @@ query AND {column} >= from_id $$;"
                for name, column, table in FUNCTIONS
            ],
            [f"DROP FUNCTION IF EXISTS {name}(tsquery, bigint);" for name, _, _ in FUNCTIONS],
        ),
        RunSQLOn(
            "postgresql",
            [
                sql
                for table in ("search_annotationentry", "search_sourcevocabulary")
                for sql in (
                    f"ALTER TABLE {table} ALTER COLUMN document SET STATISTICS 1000;",
                    f"ANALYZE {table};",
                )
            ],
            [
                f"ALTER TABLE {table} ALTER COLUMN document SET STATISTICS -1;"
                for table in ("search_annotationentry", "search_sourcevocabulary")
            ],
        ),
    ]
