"""Catalog schema: stepwise migrations, refusal of newer schemas, journal triggers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from mmsearch.errors import LibraryError
from mmsearch.store.catalog import Catalog
from mmsearch.store.migrations import SCHEMA_VERSION, migrate, schema_version
from mmsearch.store.rows import NewItem, NewSegment


def test_migrates_from_empty_and_is_idempotent(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    assert schema_version(conn) == 0
    assert migrate(conn) == SCHEMA_VERSION
    assert migrate(conn) == SCHEMA_VERSION  # nothing left to do
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"items", "segments", "vectors", "index_log", "failures", "fields"} <= tables


def test_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(LibraryError, match="newer"):
        Catalog.open(path)


def test_journal_follows_vectors_in_the_same_transaction(tmp_path: Path) -> None:
    cat = Catalog.open(tmp_path / "c.sqlite")
    space = cat.create_space("main", "test:x", "fp", 4, {})
    vec = np.array([1, 0, 0, 0], np.float32)
    item = NewItem(path="/x/a.png", modality="image", segments=[NewSegment("image", "image", vec)])
    (item_id,) = cat.commit_items([item], space)
    removed, added = cat.changes_since(space, "image", 0)
    assert removed.size == 0 and added.tolist() == [1]
    seq = cat.last_seq()
    cat.delete_items([item_id])
    removed, added = cat.changes_since(space, "image", seq)
    assert removed.tolist() == [1] and added.size == 0
    # A failed transaction (the second copy breaks the unique path) leaves neither
    # the first copy's rows nor its journal entries.
    bad = NewItem(path="/x/b.png", modality="image", segments=[NewSegment("image", "image", vec)])
    seq = cat.last_seq()
    with pytest.raises(sqlite3.IntegrityError):
        cat.commit_items([bad, bad], space)
    assert cat.last_seq() == seq and cat.item_by_path("/x/b.png") is None


def test_non_utf8_paths_round_trip(tmp_path: Path) -> None:
    import os

    cat = Catalog.open(tmp_path / "c.sqlite")
    space = cat.create_space("main", "test:x", "fp", 2, {})
    odd = os.fsdecode(b"/data/caf\xe9.png")
    cat.commit_items(
        [
            NewItem(
                path=odd,
                modality="image",
                segments=[NewSegment("image", "image", np.ones(2, np.float32))],
            )
        ],
        space,
    )
    row = cat.item_by_path(odd)
    assert row is not None and row.path == odd
    assert [i.path for i in cat.iter_items(under="/data")] == [odd]


def test_a_v2_library_upgrades_in_place_when_opened_to_read(tmp_path: Path) -> None:
    """An older catalog (schema v2) is migrated by the first reader that opens it; its
    runs' roots become the recorded roots the server serves from."""
    import json

    from mmsearch.store.migrations import MIGRATIONS
    from mmsearch.store.scope import Scope

    path = tmp_path / "catalog.sqlite"
    conn = sqlite3.connect(path)
    for version, script in enumerate(MIGRATIONS[:2]):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {version + 1}; COMMIT;")
    conn.execute(
        "INSERT INTO runs (started_at, roots_json) VALUES (1.0, ?)",
        (json.dumps(["/photos", "/notes"]),),
    )
    conn.commit()
    conn.close()
    catalog = Catalog.open(path, readonly=True)
    try:
        assert schema_version(catalog.conn) == SCHEMA_VERSION
        assert sorted(Scope(catalog).roots()) == ["/notes", "/photos"]
    finally:
        catalog.close()
