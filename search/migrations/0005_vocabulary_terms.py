"""SQLite: the words of every source's vocabulary, listed in order (an fts5vocab table), so
that a search can name the words a long prefix stands for (``search.query.sqlite``)."""

from django.db import migrations

from search.migrations._engines import RunSQLOn


class Migration(migrations.Migration):
    dependencies = [("search", "0004_matches_from")]

    operations = [
        RunSQLOn(
            "sqlite",
            [
                "CREATE VIRTUAL TABLE search_vocabulary_terms"
                " USING fts5vocab(search_vocabulary_fts, 'row');"
            ],
            ["DROP TABLE IF EXISTS search_vocabulary_terms;"],
        ),
    ]
