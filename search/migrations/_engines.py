"""What the search app's migrations share: SQL run on one engine only, and FTS5 tables."""

from django.db import migrations


class RunSQLOn(migrations.RunSQL):
    """RunSQL that runs only on one database engine."""

    def __init__(self, vendor, sql, reverse_sql):
        super().__init__(sql, reverse_sql)
        self.vendor = vendor

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def fts5(table, fts, rowid, columns, detail="full"):
    """An FTS5 table over ``table`` as external content, and the triggers keeping it in step."""
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    delete = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.{rowid}, {old});"
    insert = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.{rowid}, {new});"
    options = "" if detail == "full" else f", detail='{detail}'"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{table}',"
        f" content_rowid='{rowid}', tokenize='unicode61 remove_diacritics 0', prefix='2 3'"
        f"{options});",
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN {insert} END;",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN {delete} END;",
        f"CREATE TRIGGER {fts}_au AFTER UPDATE ON {table} BEGIN {delete} {insert} END;",
    ], [
        f"DROP TRIGGER IF EXISTS {fts}_au;",
        f"DROP TRIGGER IF EXISTS {fts}_ad;",
        f"DROP TRIGGER IF EXISTS {fts}_ai;",
        f"DROP TABLE IF EXISTS {fts};",
    ]
