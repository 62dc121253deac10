"""Versioned schema with stepwise migrations.

Each entry of ``MIGRATIONS`` moves the schema from version ``i`` to ``i + 1``.
A catalog written by a newer mmsearch (higher version than we know) is refused
rather than guessed at. Vector adds and removes are journaled into
``index_log`` by triggers, inside the same transaction as the catalog rows, so
the FAISS index (a derived cache) can always be brought up to date after a crash.
"""

from __future__ import annotations

import sqlite3

from mmsearch.errors import LibraryError

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE spaces (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    dim INTEGER NOT NULL,
    info_json TEXT NOT NULL
);
CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path_key BLOB NOT NULL UNIQUE,
    path TEXT NOT NULL,
    modality TEXT NOT NULL,
    size INTEGER,
    mtime REAL,
    content_hash TEXT,
    width INTEGER,
    height INTEGER,
    taken_at REAL,
    meta_json TEXT NOT NULL DEFAULT '{}',
    added_at REAL NOT NULL
);
CREATE INDEX items_hash ON items(content_hash);
CREATE INDEX items_path ON items(path);
CREATE INDEX items_taken ON items(taken_at);
CREATE TABLE fields (
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value_text TEXT,
    value_num REAL,
    PRIMARY KEY (item_id, key)
);
CREATE INDEX fields_text ON fields(key, value_text);
CREATE INDEX fields_num ON fields(key, value_num);
CREATE TABLE segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    modality TEXT NOT NULL,
    kind TEXT NOT NULL,
    ord INTEGER NOT NULL,
    t_start REAL,
    t_end REAL,
    text TEXT
);
CREATE INDEX segments_item ON segments(item_id);
CREATE TABLE vectors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    space_id INTEGER NOT NULL REFERENCES spaces(id),
    modality TEXT NOT NULL,
    vec BLOB NOT NULL
);
CREATE INDEX vectors_segment ON vectors(segment_id);
CREATE INDEX vectors_space ON vectors(space_id, modality);
CREATE TABLE index_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id INTEGER NOT NULL,
    modality TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'remove')),
    vector_id INTEGER NOT NULL
);
CREATE TRIGGER vectors_added AFTER INSERT ON vectors BEGIN
    INSERT INTO index_log (space_id, modality, op, vector_id)
    VALUES (new.space_id, new.modality, 'add', new.id);
END;
CREATE TRIGGER vectors_removed AFTER DELETE ON vectors BEGIN
    INSERT INTO index_log (space_id, modality, op, vector_id)
    VALUES (old.space_id, old.modality, 'remove', old.id);
END;
CREATE TABLE failures (
    path_key BLOB PRIMARY KEY,
    path TEXT NOT NULL,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    size INTEGER,
    mtime REAL,
    at REAL NOT NULL
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    finished_at REAL,
    roots_json TEXT NOT NULL,
    stats_json TEXT
);
"""

# v2: time-coded media. Keyframe thumbnails live beside their segments (deleted with
# them); segment text (chunks, captions, subtitles, transcripts) gets a full-text
# index for lexical search. The trigram tokenizer matches inside words and works
# for scripts without spaces (Chinese) as well as for English.
_V2 = """
CREATE TABLE thumbnails (
    segment_id INTEGER PRIMARY KEY REFERENCES segments(id) ON DELETE CASCADE,
    jpeg BLOB NOT NULL
);
CREATE VIRTUAL TABLE segments_fts USING fts5(
    text, content='segments', content_rowid='id', tokenize='trigram'
);
INSERT INTO segments_fts (rowid, text) SELECT id, text FROM segments WHERE text IS NOT NULL;
CREATE TRIGGER segments_fts_add AFTER INSERT ON segments WHEN new.text IS NOT NULL BEGIN
    INSERT INTO segments_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER segments_fts_remove AFTER DELETE ON segments WHEN old.text IS NOT NULL BEGIN
    INSERT INTO segments_fts (segments_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE INDEX segments_kind ON segments(kind);
"""

# v3: safety. Items record the file's device and inode, so the server can tell that a file
# it is asked to serve is still the one indexed. Exclusions keep removed paths, orphaned
# sidecars and user patterns out of later runs. Roots are the folders the user indexed
# (resolved): the server serves files only under them or its own allowed folders.
_V3 = """
ALTER TABLE items ADD COLUMN dev INTEGER;
ALTER TABLE items ADD COLUMN ino INTEGER;
CREATE TABLE exclusions (
    kind TEXT NOT NULL CHECK (kind IN ('path', 'pattern')),
    value_key BLOB NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (kind, value_key)
);
CREATE TABLE roots (
    path_key BLOB PRIMARY KEY,
    path TEXT NOT NULL,
    added_at REAL NOT NULL
);
INSERT OR IGNORE INTO roots (path_key, path, added_at)
    SELECT DISTINCT CAST(j.value AS BLOB), j.value, r.started_at
    FROM runs r, json_each(r.roots_json) j;
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the catalog to ``SCHEMA_VERSION`` one step at a time; return the version."""
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise LibraryError(
            f"this library has catalog schema v{current}, newer than this mmsearch "
            f"understands (v{SCHEMA_VERSION}); upgrade mmsearch to open it"
        )
    for version in range(current, SCHEMA_VERSION):
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE; {MIGRATIONS[version]}; "
                f"PRAGMA user_version = {version + 1}; COMMIT;"
            )
        except sqlite3.OperationalError:
            if conn.in_transaction:
                conn.rollback()
            if schema_version(conn) > version:
                continue  # another process (a racing first `index`) took this step first
            raise
    return SCHEMA_VERSION
