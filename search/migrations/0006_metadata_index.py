"""An index of the sources' metadata rows alone (title, creators, publisher, citation key).

A search lists the sources whose metadata holds every clause first, however long ago they
were archived (``search.query.ranking``). In the index of every stretch of text, a common
word's metadata matches lie among all its matches in text; this index holds one short row
per source.

SQLite: a contentless FTS5 table of the metadata rows of search_sourcesegment (rowid =
segment id, which encodes the source), kept in step by triggers. PostgreSQL: a partial GIN
index on the metadata rows' ``document``.
"""

from django.db import migrations

from search.migrations._engines import RunSQLOn

FTS = "search_metadata_fts"
META = "kind = 'meta'"

SQLITE_SQL = [
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(words, content='',"
    " tokenize='unicode61 remove_diacritics 0', prefix='2 3');",
    f"CREATE TRIGGER {FTS}_ai AFTER INSERT ON search_sourcesegment WHEN new.{META} BEGIN"
    f" INSERT INTO {FTS}(rowid, words) VALUES (new.id, new.words); END;",
    f"CREATE TRIGGER {FTS}_ad AFTER DELETE ON search_sourcesegment WHEN old.{META} BEGIN"
    f" INSERT INTO {FTS}({FTS}, rowid, words) VALUES ('delete', old.id, old.words); END;",
    f"CREATE TRIGGER {FTS}_au AFTER UPDATE ON search_sourcesegment BEGIN"
    f" INSERT INTO {FTS}({FTS}, rowid, words) SELECT 'delete', old.id, old.words"
    f" WHERE old.{META};"
    f" INSERT INTO {FTS}(rowid, words) SELECT new.id, new.words WHERE new.{META}; END;",
    f"INSERT INTO {FTS}(rowid, words) SELECT id, words FROM search_sourcesegment WHERE {META};",
]
SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS {FTS}_au;",
    f"DROP TRIGGER IF EXISTS {FTS}_ad;",
    f"DROP TRIGGER IF EXISTS {FTS}_ai;",
    f"DROP TABLE IF EXISTS {FTS};",
]
POSTGRES_SQL = [
    "CREATE INDEX search_sourcesegment_metadata ON search_sourcesegment USING gin (document)"
    f" WHERE {META};",
]
POSTGRES_REVERSE = ["DROP INDEX IF EXISTS search_sourcesegment_metadata;"]


class Migration(migrations.Migration):
    dependencies = [("search", "0005_vocabulary_terms")]

    operations = [
        RunSQLOn("sqlite", SQLITE_SQL, SQLITE_REVERSE),
        RunSQLOn("postgresql", POSTGRES_SQL, POSTGRES_REVERSE),
    ]
