"""The full-text indexes over the search rows, one kind per database engine.

SQLite: FTS5 tables reading search_sourcesegment / search_annotationentry as external
content (rowid = segment id, which encodes the source, / annotation id), kept in step by triggers in the same
transaction as every insert, update and delete of those rows. The words are folded in
Python already, so the tokenizer only splits them on spaces.

PostgreSQL: a generated tsvector column with a GIN index on each table, whose lexemes are
exactly those words. An annotation's columns carry weights (tags A, quote B, note C) so that a phrase can be held to one column,
as FTS5 does.
"""

from django.db import migrations

from search.migrations._engines import RunSQLOn, fts5


segment_sql, segment_reverse = fts5(
    "search_sourcesegment", "search_segment_fts", "id", ["words"]
)
entry_sql, entry_reverse = fts5(
    "search_annotationentry", "search_annotation_fts", "annotation_id", ["quote", "note", "tags"]
)

POSTGRES_SQL = [
    # The words are folded already: take them as lexemes verbatim, numbered by position,
    # rather than through a text search parser that would split or drop some of them.
    "CREATE FUNCTION search_words_tsvector(words text) RETURNS tsvector"
    " IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql AS $$"
    " SELECT coalesce(string_agg(quote_literal(w) || ':' || n, ' '), '')::tsvector"
    " FROM unnest(string_to_array(words, ' ')) WITH ORDINALITY AS t(w, n) WHERE w <> ''"
    " $$;",
    "ALTER TABLE search_sourcesegment ADD COLUMN document tsvector"
    " GENERATED ALWAYS AS (search_words_tsvector(words)) STORED;",
    # Kept in the table row (compressed) rather than out of line: the planner then prices a
    # scan of the table at what it really costs, and uses the GIN index for rarer words.
    "ALTER TABLE search_sourcesegment ALTER COLUMN document SET STORAGE MAIN;",
    "CREATE INDEX search_sourcesegment_document ON search_sourcesegment USING gin (document);",
    "ALTER TABLE search_annotationentry ADD COLUMN document tsvector GENERATED ALWAYS AS ("
    " setweight(search_words_tsvector(tags), 'A')"
    " || setweight(search_words_tsvector(quote), 'B')"
    " || setweight(search_words_tsvector(note), 'C')) STORED;",
    "ALTER TABLE search_annotationentry ALTER COLUMN document SET STORAGE MAIN;",
    "CREATE INDEX search_annotationentry_document ON search_annotationentry USING gin (document);",
]
POSTGRES_REVERSE = [
    "DROP INDEX IF EXISTS search_annotationentry_document;",
    "ALTER TABLE search_annotationentry DROP COLUMN IF EXISTS document;",
    "DROP INDEX IF EXISTS search_sourcesegment_document;",
    "ALTER TABLE search_sourcesegment DROP COLUMN IF EXISTS document;",
    "DROP FUNCTION IF EXISTS search_words_tsvector(text);",
]


class Migration(migrations.Migration):
    dependencies = [("search", "0001_initial")]

    operations = [
        RunSQLOn("sqlite", segment_sql + entry_sql, segment_reverse + entry_reverse),
        RunSQLOn("postgresql", POSTGRES_SQL, POSTGRES_REVERSE),
    ]
