"""SQLite catalog of one library: items, segments, vectors, fields, failures.

The catalog is the source of truth. Vectors are stored here (float32 blobs) in
the same transaction as their item and segment rows; the FAISS index is a
cache rebuilt or caught up from ``index_log`` (see ``mmsearch.index.sync``).
WAL mode lets searches read while an ingest writes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.errors import LibraryError
from mmsearch.store.migrations import SCHEMA_VERSION, migrate, schema_version
from mmsearch.store.rows import FailureRow, ItemRow, NewItem, SegmentRow, blob_to_vec, vec_to_blob
from mmsearch.types import MODALITIES, Ids, Vectors

_ITEM_COLS = (
    "id, path, path_key, modality, size, mtime, content_hash, width, height, taken_at, meta_json,"
    " dev, ino"
)


def path_key(path: str) -> bytes:
    """Exact bytes of a path (non-UTF-8 names survive), used as the unique key."""
    return os.fsencode(path)


def under_range(path: str) -> tuple[bytes, bytes, bytes]:
    """``(key, low, high)``: a path is ``path`` itself or inside it when its key equals
    ``key`` or lies in ``[low, high)`` (``/a/photos`` does not take in ``/a/photos2``)."""
    key, sep = path_key(path), os.fsencode(os.sep)
    inside = key if key.endswith(sep) else key + sep
    return key, inside, inside + b"\xff"


def display_path(path: str) -> str:
    """A printable form of a path: undecodable bytes become U+FFFD."""
    return os.fsencode(path).decode("utf-8", "replace")


def _item(row: sqlite3.Row) -> ItemRow:
    return ItemRow(
        id=row["id"],
        path=os.fsdecode(bytes(row["path_key"])),
        path_key=bytes(row["path_key"]),
        modality=row["modality"],
        size=row["size"],
        mtime=row["mtime"],
        content_hash=row["content_hash"],
        width=row["width"],
        height=row["height"],
        taken_at=row["taken_at"],
        meta=json.loads(row["meta_json"] or "{}"),
        dev=row["dev"],
        ino=row["ino"],
    )


def _segment(r: sqlite3.Row) -> SegmentRow:
    return SegmentRow(
        r["id"], r["item_id"], r["modality"], r["kind"], r["t_start"], r["t_end"], r["text"]
    )


class Catalog:
    """One SQLite connection to a library's catalog file."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> Catalog:
        """Open the catalog file (migrating it to the current schema when writable).

        The file is named by a ``file:`` URI built with ``Path.as_uri`` (so ``#`` and ``?``
        in folder names are escaped, not cut off), or by its plain path when writable.
        """
        if readonly and not path.exists():
            raise LibraryError(f"no library catalog at {path}")
        conn: sqlite3.Connection | None = None
        try:
            if readonly:
                uri = f"{path.absolute().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False)
            else:
                conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            if not readonly:
                migrate(conn)
            elif schema_version(conn) < SCHEMA_VERSION:
                conn.close()
                conn = None
                _upgrade(path)  # an older catalog opened to read: migrate it once, then read
                return cls.open(path, readonly=True)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise LibraryError(f"cannot open library catalog {path}: {exc}") from exc
            raise
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    # -- meta and spaces -------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)
            )

    def get_space(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM spaces WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return {**dict(row), "info": json.loads(row["info_json"])}

    def create_space(
        self, name: str, spec: str, fingerprint: str, dim: int, info: dict[str, Any]
    ) -> int:
        """Create a space (a racing process may have created it first: then it stays)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO spaces (name, spec, fingerprint, dim, info_json)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, spec, fingerprint, dim, json.dumps(info, default=str)),
            )
        row = self.conn.execute("SELECT id FROM spaces WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    # -- items -----------------------------------------------------------------------
    def item_by_path(self, path: str) -> ItemRow | None:
        row = self.conn.execute(
            f"SELECT {_ITEM_COLS} FROM items WHERE path_key = ?", (path_key(path),)
        ).fetchone()
        return None if row is None else _item(row)

    def items_by_hash(self, content_hash: str) -> list[ItemRow]:
        rows = self.conn.execute(
            f"SELECT {_ITEM_COLS} FROM items WHERE content_hash = ?", (content_hash,)
        ).fetchall()
        return [_item(r) for r in rows]

    def items(self, ids: Sequence[int]) -> dict[int, ItemRow]:
        out: dict[int, ItemRow] = {}
        for chunk in _chunks(list(ids), 900):
            marks = ",".join("?" * len(chunk))
            for r in self.conn.execute(
                f"SELECT {_ITEM_COLS} FROM items WHERE id IN ({marks})", chunk
            ):
                out[r["id"]] = _item(r)
        return out

    def iter_items(self, under: str | None = None) -> Iterator[ItemRow]:
        """All items, or those whose path is ``under`` (a folder or file path)."""
        if under is None:
            cur = self.conn.execute(f"SELECT {_ITEM_COLS} FROM items ORDER BY id")
        else:
            cur = self.conn.execute(
                f"SELECT {_ITEM_COLS} FROM items WHERE path_key = ? "
                "OR (path_key >= ? AND path_key < ?) ORDER BY id",
                under_range(under),
            )
        for r in cur:
            yield _item(r)

    def commit_items(
        self, items: Sequence[NewItem], space_id: int, *, replace: Iterable[int] = ()
    ) -> list[int]:
        """Insert items with their segments and vectors, deleting ``replace`` first, atomically."""
        now = time.time()
        ids: list[int] = []
        with self.conn:
            self._delete(list(replace))
            for it in items:
                ids.append(self._insert_item(it, space_id, now))
        return ids

    def _insert_item(self, it: NewItem, space_id: int, now: float) -> int:
        c = self.conn
        c.execute("DELETE FROM failures WHERE path_key = ?", (path_key(it.path),))
        cur = c.execute(
            "INSERT INTO items (path_key, path, modality, size, mtime, content_hash, width, height,"
            " taken_at, meta_json, added_at, dev, ino) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                path_key(it.path),
                display_path(it.path),
                it.modality,
                it.size,
                it.mtime,
                it.content_hash,
                it.width,
                it.height,
                it.taken_at,
                json.dumps(it.meta, ensure_ascii=False, default=str),
                now,
                it.dev,
                it.ino,
            ),
        )
        item_id = int(cur.lastrowid or 0)
        self._write_fields(item_id, it.fields)
        for ord_, seg in enumerate(it.segments):
            scur = c.execute(
                "INSERT INTO segments (item_id, modality, kind, ord, t_start, t_end, text)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (item_id, seg.modality, seg.kind, ord_, seg.t_start, seg.t_end, seg.text),
            )
            if seg.vector is not None:
                c.execute(
                    "INSERT INTO vectors (segment_id, space_id, modality, vec) VALUES (?, ?, ?, ?)",
                    (
                        scur.lastrowid,
                        seg.space_id if seg.space_id is not None else space_id,
                        seg.modality,
                        vec_to_blob(seg.vector),
                    ),
                )
            if seg.thumbnail is not None:
                c.execute(
                    "INSERT INTO thumbnails (segment_id, jpeg) VALUES (?, ?)",
                    (scur.lastrowid, seg.thumbnail),
                )
        return item_id

    def _write_fields(self, item_id: int, fields: dict[str, Any]) -> None:
        for key, value in fields.items():
            if value is None or isinstance(value, (dict, list)):
                continue
            num = _as_number(value)
            text = str(value).lower() if isinstance(value, bool) else str(value)
            self.conn.execute(
                "INSERT OR REPLACE INTO fields (item_id, key, value_text, value_num) VALUES (?, ?, ?, ?)",
                (item_id, key, text, num),
            )

    def set_fields(self, item_id: int, fields: dict[str, Any]) -> None:
        with self.conn:
            self._write_fields(item_id, fields)

    def item_fields(self, item_id: int) -> dict[str, Any]:
        rows = self.conn.execute(
            "SELECT key, value_text, value_num FROM fields WHERE item_id = ?", (item_id,)
        ).fetchall()
        return {
            r["key"]: (r["value_num"] if r["value_num"] is not None else r["value_text"])
            for r in rows
        }

    def update_stat(
        self,
        item_id: int,
        *,
        path: str | None = None,
        size: int,
        mtime: float,
        dev: int | None = None,
        ino: int | None = None,
    ) -> None:
        """Record a new size/mtime/inode (content unchanged) and, for a moved file, its path."""
        with self.conn:
            if path is not None:
                self.conn.execute(
                    "UPDATE items SET path_key = ?, path = ? WHERE id = ?",
                    (path_key(path), display_path(path), item_id),
                )
                self.conn.execute("DELETE FROM failures WHERE path_key = ?", (path_key(path),))
            self.conn.execute(
                "UPDATE items SET size = ?, mtime = ?, dev = ?, ino = ? WHERE id = ?",
                (size, mtime, dev, ino, item_id),
            )

    def delete_items(self, ids: Sequence[int]) -> int:
        with self.conn:
            return self._delete(list(ids))

    def _delete(self, ids: list[int]) -> int:
        n = 0
        for chunk in _chunks(ids, 900):
            marks = ",".join("?" * len(chunk))
            n += self.conn.execute(f"DELETE FROM items WHERE id IN ({marks})", chunk).rowcount
        return n

    # -- segments and vectors ----------------------------------------------------------
    def segments_for_vectors(self, vector_ids: Sequence[int]) -> dict[int, SegmentRow]:
        """Map vector id -> its segment."""
        out: dict[int, SegmentRow] = {}
        for chunk in _chunks([int(v) for v in vector_ids], 900):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                "SELECT v.id AS vid, s.* FROM vectors v JOIN segments s ON s.id = v.segment_id"
                f" WHERE v.id IN ({marks})",
                chunk,
            )
            for r in rows:
                out[r["vid"]] = _segment(r)
        return out

    def vectors(self, vector_ids: Sequence[int], dim: int) -> Vectors:
        """Vectors for the given ids, in that order (missing ids raise KeyError)."""
        found: dict[int, Vectors] = {}
        for chunk in _chunks([int(v) for v in vector_ids], 900):
            marks = ",".join("?" * len(chunk))
            for r in self.conn.execute(f"SELECT id, vec FROM vectors WHERE id IN ({marks})", chunk):
                found[r[0]] = blob_to_vec(r[1])
        if not vector_ids:
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([found[int(v)] for v in vector_ids])

    def item_has_vectors(self, item_id: int, space_id: int) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM segments s JOIN vectors v ON v.segment_id = s.id"
            " WHERE s.item_id = ? AND v.space_id = ? LIMIT 1",
            (item_id, space_id),
        ).fetchone()
        return row is not None

    def item_vectors(self, item_id: int, space_id: int) -> Vectors:
        rows = self.conn.execute(
            "SELECT v.vec FROM vectors v JOIN segments s ON s.id = v.segment_id"
            " WHERE s.item_id = ? AND v.space_id = ? ORDER BY v.id",
            (item_id, space_id),
        ).fetchall()
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([blob_to_vec(r[0]) for r in rows])

    def iter_vectors(
        self, space_id: int, modality: str, batch: int = 10_000
    ) -> Iterator[tuple[Ids, Vectors]]:
        """All vectors of one (space, modality), in id order, in batches."""
        last = -1
        while True:
            rows = self.conn.execute(
                "SELECT id, vec FROM vectors WHERE space_id = ? AND modality = ? AND id > ?"
                " ORDER BY id LIMIT ?",
                (space_id, modality, last, batch),
            ).fetchall()
            if not rows:
                return
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            yield ids, np.stack([blob_to_vec(r[1]) for r in rows])
            last = int(ids[-1])

    def count_vectors(self, space_id: int, modality: str) -> int:
        row = self.conn.execute(
            "SELECT COUNT(*) FROM vectors WHERE space_id = ? AND modality = ?", (space_id, modality)
        ).fetchone()
        return int(row[0])

    def vector_modalities(self, space_id: int) -> list[str]:
        """Modalities that have vectors in ``space_id`` (one indexed probe each, no scan)."""
        return [
            m
            for m in MODALITIES
            if self.conn.execute(
                "SELECT 1 FROM vectors WHERE space_id = ? AND modality = ? LIMIT 1", (space_id, m)
            ).fetchone()
        ]

    # -- index journal -----------------------------------------------------------------
    def last_seq(self) -> int:
        """The last journal sequence number ever used (trimming the journal keeps it)."""
        row = self.conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'index_log'"
        ).fetchone()
        if row is not None:
            return int(row[0] or 0)
        row = self.conn.execute("SELECT MAX(seq) FROM index_log").fetchone()
        return int(row[0] or 0)

    def changes_since(self, space_id: int, modality: str, seq: int) -> tuple[Ids, Ids]:
        """Net index changes after ``seq``: (ids to remove, ids to add that still exist)."""
        removed = [
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT vector_id FROM index_log WHERE space_id = ? AND modality = ?"
                " AND seq > ? AND op = 'remove'",
                (space_id, modality, seq),
            )
        ]
        added = [
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT l.vector_id FROM index_log l JOIN vectors v ON v.id = l.vector_id"
                " WHERE l.space_id = ? AND l.modality = ? AND l.seq > ? AND l.op = 'add'"
                " ORDER BY l.vector_id",
                (space_id, modality, seq),
            )
        ]
        return np.array(removed, dtype=np.int64), np.array(added, dtype=np.int64)

    def trim_log(self, upto: int, space_id: int) -> None:
        """Forget journal entries of ``space_id`` its index files have all absorbed."""
        with self.conn:
            self.conn.execute(
                "DELETE FROM index_log WHERE seq <= ? AND space_id = ?", (upto, space_id)
            )

    # -- filters -----------------------------------------------------------------------
    def vector_ids_where(
        self, space_id: int, modality: str, where: str, params: Sequence[Any]
    ) -> Ids:
        sql = (
            # CROSS JOIN fixes the order: filter items first (by their indexes), then
            # reach their vectors; starting from all vectors of a space is a full scan.
            "SELECT v.id FROM items i CROSS JOIN segments s ON s.item_id = i.id"
            " CROSS JOIN vectors v ON v.segment_id = s.id"
            f" WHERE ({where}) AND +v.space_id = ? AND +v.modality = ?"
        )
        rows = self.conn.execute(sql, (*params, space_id, modality)).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    # -- segments: thumbnails, text, lexical search --------------------------------------
    def thumbnail(self, segment_id: int) -> bytes | None:
        row = self.conn.execute(
            "SELECT jpeg FROM thumbnails WHERE segment_id = ?", (segment_id,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def item_thumbnail_segment(self, item_id: int) -> int | None:
        """The first segment of an item that has a thumbnail (a video's opening keyframe)."""
        row = self.conn.execute(
            "SELECT s.id FROM segments s JOIN thumbnails t ON t.segment_id = s.id"
            " WHERE s.item_id = ? ORDER BY s.ord LIMIT 1",
            (item_id,),
        ).fetchone()
        return None if row is None else int(row[0])

    def item_segments(self, item_id: int) -> list[SegmentRow]:
        rows = self.conn.execute(
            "SELECT * FROM segments WHERE item_id = ? ORDER BY ord", (item_id,)
        ).fetchall()
        return [_segment(r) for r in rows]

    def segments(self, segment_ids: Sequence[int]) -> dict[int, SegmentRow]:
        out: dict[int, SegmentRow] = {}
        for chunk in _chunks([int(s) for s in segment_ids], 900):
            marks = ",".join("?" * len(chunk))
            for r in self.conn.execute(f"SELECT * FROM segments WHERE id IN ({marks})", chunk):
                out[int(r["id"])] = _segment(r)
        return out

    def lexical_search(
        self, match: str, limit: int, where: str = "", params: Sequence[Any] = ()
    ) -> list[tuple[int, float]]:
        """(segment id, bm25 relevance, higher is better) for an FTS5 ``match`` expression."""
        sql = (
            "SELECT f.rowid, -bm25(segments_fts) AS rel FROM segments_fts f"
            " JOIN segments s ON s.id = f.rowid JOIN items i ON i.id = s.item_id"
            " WHERE segments_fts MATCH ?"
            + (f" AND ({where})" if where else "")
            + " ORDER BY bm25(segments_fts) LIMIT ?"
        )
        rows = self.conn.execute(sql, (match, *params, int(limit))).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def substring_search(
        self, needle: str, limit: int, where: str = "", params: Sequence[Any] = ()
    ) -> list[int]:
        """Segment ids whose text contains ``needle`` (for terms too short for trigrams)."""
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql = (
            "SELECT s.id FROM segments s JOIN items i ON i.id = s.item_id"
            " WHERE s.text LIKE ? ESCAPE '\\'" + (f" AND ({where})" if where else "") + " LIMIT ?"
        )
        rows = self.conn.execute(sql, (f"%{escaped}%", *params, int(limit))).fetchall()
        return [int(r[0]) for r in rows]

    # -- spaces --------------------------------------------------------------------------
    def replace_space_model(
        self, name: str, spec: str, fingerprint: str, dim: int, info: dict[str, Any]
    ) -> None:
        """Point a space at another model, dropping its vectors (journaled), atomically."""
        with self.conn:
            row = self.conn.execute("SELECT id FROM spaces WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise LibraryError(f"no {name} space")
            self.conn.execute("DELETE FROM vectors WHERE space_id = ?", (row[0],))
            self.conn.execute(
                "UPDATE spaces SET spec = ?, fingerprint = ?, dim = ?, info_json = ? WHERE id = ?",
                (spec, fingerprint, dim, json.dumps(info), row[0]),
            )

    def count_items_upto(self, item_id: int) -> int:
        row = self.conn.execute("SELECT COUNT(*) FROM items WHERE id <= ?", (item_id,)).fetchone()
        return int(row[0])

    def max_item_id(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM items").fetchone()[0])

    def spaces(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT name FROM spaces ORDER BY id").fetchall()
        return [s for s in (self.get_space(r[0]) for r in rows) if s is not None]

    # -- failures ----------------------------------------------------------------------
    def record_failure(
        self,
        path: str,
        stage: str,
        reason: str,
        size: int | None = None,
        mtime: float | None = None,
    ) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO failures (path_key, path, stage, reason, size, mtime, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (path_key(path), display_path(path), stage, reason, size, mtime, time.time()),
            )

    def failure_stat(self, path: str) -> tuple[int | None, float | None] | None:
        row = self.conn.execute(
            "SELECT size, mtime FROM failures WHERE path_key = ?", (path_key(path),)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def clear_failures(self, paths: Iterable[str]) -> None:
        with self.conn:
            self.conn.executemany(
                "DELETE FROM failures WHERE path_key = ?", [(path_key(p),) for p in paths]
            )

    def clear_all_failures(self) -> int:
        """Forget every recorded failure (the library's models changed: retry them all)."""
        with self.conn:
            return self.conn.execute("DELETE FROM failures").rowcount

    def failures(self, limit: int | None = None) -> list[FailureRow]:
        sql = "SELECT path, stage, reason, at FROM failures ORDER BY at DESC"
        rows = self.conn.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
        return [FailureRow(r[0], r[1], r[2], r[3]) for r in rows]

    # -- runs and stats ----------------------------------------------------------------
    def start_run(self, roots: Sequence[str]) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (started_at, roots_json) VALUES (?, ?)",
                (time.time(), json.dumps([display_path(r) for r in roots])),
            )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, stats: dict[str, Any]) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET finished_at = ?, stats_json = ? WHERE id = ?",
                (time.time(), json.dumps(stats), run_id),
            )

    def counts(self) -> dict[str, Any]:
        c = self.conn
        by_modality = dict(
            c.execute("SELECT modality, COUNT(*) FROM items GROUP BY modality").fetchall()
        )
        return {
            "items": int(c.execute("SELECT COUNT(*) FROM items").fetchone()[0]),
            "items_by_modality": by_modality,
            "segments": int(c.execute("SELECT COUNT(*) FROM segments").fetchone()[0]),
            "vectors": int(c.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]),
            "failures": int(c.execute("SELECT COUNT(*) FROM failures").fetchone()[0]),
        }


def _upgrade(path: Path) -> None:
    """Migrate an older catalog in place (a reader found it); say how when it cannot be."""
    try:
        Catalog.open(path).close()
    except (LibraryError, OSError) as exc:
        raise LibraryError(
            f"the library at {path.parent} has an older catalog and cannot be upgraded "
            f"here ({exc}); run `mmsearch index` on it once where it is writable"
        ) from exc


def _chunks(seq: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _as_number(value: Any) -> float | None:
    """The numeric value of a field (numbers and numeric strings), for range and equality filters."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None
