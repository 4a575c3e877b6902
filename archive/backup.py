"""A whole instance as a BagIt bag, and back: the database as one consistent snapshot and
every stored blob, each file listed with its SHA-256 in the bag's manifest.

    <dest>/bagit.txt, bag-info.txt, manifest-sha256.txt, tagmanifest-sha256.txt
    <dest>/data/database.sqlite3   (SQLite's online backup: a snapshot while others write)
    <dest>/data/database.pgdump    (or pg_dump's custom format, one transaction's view)
    <dest>/data/blobs/sha256/ab/cd/<sha256>

The database is copied first, then the blobs: a blob is never changed once written, so
every blob the snapshot names is there to copy (unless ``cleanup`` removed it meanwhile,
which it does only to blobs nothing names). Restoring checks the bag with bagit first.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bagit
from django.core.files import File
from django.db import connection

from archive.blobstore import archive_storage, blob_name, read_chunks
from archive.cleanup import PARTIAL_PREFIX, stored_blob_names

SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"


class BackupError(Exception):
    """A backup or restore that cannot go ahead, in words for the person running it."""


@dataclass
class Summary:
    engine: str
    blobs: int
    blob_bytes: int


def back_up(dest: Path, report: Callable[[str], None] = lambda line: None) -> Summary:
    """Write this instance's database and blobs to ``dest`` (new or empty) as a bag."""
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: give a new directory for each backup.")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        engine = connection.vendor
        report(f"database ({engine})")
        if engine == "sqlite":
            _sqlite_snapshot(dest / SQLITE_FILE)
        elif engine == "postgresql":
            _pg_dump(dest / PG_FILE)
        else:
            raise BackupError(f"Backups of a {engine} database are not supported.")
        blobs = blob_bytes = 0
        storage = archive_storage()
        for name in stored_blob_names():
            if Path(name).name.startswith(PARTIAL_PREFIX):
                continue  # being written, or left by a killed writer
            target = dest / "blobs" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with open(target, "wb") as out:
                for chunk in read_chunks(name, storage):
                    digest.update(chunk)
                    out.write(chunk)
            if blob_name(digest.hexdigest()) != name:
                raise BackupError(
                    f"The stored blob {name} does not hold the bytes its name says"
                    " (run manage.py verify_fixity): the backup stopped."
                )
            blobs += 1
            blob_bytes += target.stat().st_size
        report(f"{blobs} blobs")
        bagit.make_bag(
            str(dest),
            bag_info={
                "Source-Organization": "Scholion",
                "External-Description": f"A backup of a Scholion instance ({engine}).",
                "Scholion-Database": engine,
            },
            checksums=["sha256"],
        )
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return Summary(engine, blobs, blob_bytes)


def restore(src: Path, report: Callable[[str], None] = lambda line: None) -> Summary:
    """Bring a backup back into this instance, whose database must be empty (no tables)."""
    try:
        bag = bagit.Bag(str(src))
        report("checking the backup's manifest")
        bag.validate(processes=1)
    except (bagit.BagError, bagit.BagValidationError) as exc:
        raise BackupError(f"{src} is not an intact backup: {exc}") from None
    engine = bag.info.get("Scholion-Database", "")
    if engine != connection.vendor:
        raise BackupError(
            f"This backup is of a {engine or 'unknown'} database and this instance uses"
            f" {connection.vendor}: restore it into an instance on {engine or 'that engine'}."
        )
    if connection.introspection.table_names():
        raise BackupError(
            "This instance's database already has tables: restore into an empty database"
            " (a new SQLite file, or a new PostgreSQL database), before any migrate."
        )
    data = Path(bag.path) / "data"
    report(f"database ({engine})")
    if engine == "sqlite":
        _sqlite_restore(data / SQLITE_FILE)
    else:
        _pg_restore(data / PG_FILE)
    blobs = blob_bytes = 0
    storage = archive_storage()
    root = data / "blobs"
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        if not path.is_file():
            continue
        name = path.relative_to(root).as_posix()
        if not storage.exists(name):
            with open(path, "rb") as fh:
                storage.save(name, File(fh, name=name))
        blobs += 1
        blob_bytes += path.stat().st_size
    report(f"{blobs} blobs")
    return Summary(engine, blobs, blob_bytes)


def _sqlite_snapshot(target: Path) -> None:
    connection.ensure_connection()
    with sqlite3.connect(target) as out:
        connection.connection.backup(out)
    out.close()


def _sqlite_restore(snapshot: Path) -> None:
    connection.ensure_connection()
    with sqlite3.connect(snapshot) as source:
        source.backup(connection.connection)
    source.close()


def _pg_args() -> tuple[list[str], dict[str, str]]:
    db = connection.settings_dict
    args = ["--host", db["HOST"] or "127.0.0.1", "--port", str(db["PORT"] or 5432)]
    if db["USER"]:
        args += ["--username", db["USER"]]
    env = {**os.environ}
    if db["PASSWORD"]:
        env["PGPASSWORD"] = db["PASSWORD"]
    return args, env


def _pg_dump(target: Path) -> None:
    args, env = _pg_args()
    _run(
        [
            "pg_dump",
            *args,
            "--format=custom",
            "--no-owner",
            "--file",
            str(target),
            connection.settings_dict["NAME"],
        ],
        env,
    )


def _pg_restore(dump: Path) -> None:
    args, env = _pg_args()
    connection.close()  # pg_restore writes from its own session
    _run(
        [
            "pg_restore",
            *args,
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            connection.settings_dict["NAME"],
            str(dump),
        ],
        env,
    )


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    except FileNotFoundError:
        raise BackupError(
            f"{command[0]} is not installed: PostgreSQL's client programs are needed"
            " (Debian: postgresql-client, of the server's major version or newer)."
        ) from None
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()}")
