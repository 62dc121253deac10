"""What a library covers: the folders the user indexed and what is kept out of them.

Roots are recorded (resolved) on every ``add``; the server serves files only under
them or its own allowed folders. Exclusions keep paths out of later runs:

- ``path``: an exact file or folder (a removed item, an orphaned caption sidecar);
  lifted when the user indexes that very path by name, on purpose (:meth:`Scope.lift`);
  indexing a folder above it keeps it out, as a scheduled re-index does.
- ``pattern``: a gitignore-style pattern given with ``index --exclude``, matched
  against paths relative to each indexed root; kept until removed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from mmsearch.store.catalog import Catalog, display_path, path_key


class Scope:
    """Roots and exclusions of one catalog (its connection, its transactions)."""

    def __init__(self, catalog: Catalog) -> None:
        self.conn = catalog.conn

    # -- roots -----------------------------------------------------------------------
    def add_roots(self, paths: Iterable[str]) -> None:
        now = time.time()
        with self.conn:
            self.conn.executemany(
                "INSERT OR IGNORE INTO roots (path_key, path, added_at) VALUES (?, ?, ?)",
                [(path_key(p), display_path(p), now) for p in paths],
            )

    def roots(self) -> list[str]:
        rows = self.conn.execute("SELECT path_key FROM roots ORDER BY added_at").fetchall()
        return [os.fsdecode(bytes(r[0])) for r in rows]

    # -- exclusions ------------------------------------------------------------------
    def exclude_paths(self, paths: Iterable[str], reason: str) -> None:
        self._add("path", [(path_key(p), display_path(p)) for p in paths], reason)

    def exclude_patterns(self, patterns: Iterable[str]) -> None:
        self._add("pattern", [(p.encode("utf-8"), p) for p in patterns], "--exclude")

    def _add(self, kind: str, values: list[tuple[bytes, str]], reason: str) -> None:
        now = time.time()
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO exclusions (kind, value_key, value, reason, added_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(kind, key, value, reason, now) for key, value in values],
            )

    def excluded_paths(self) -> dict[str, str]:
        """Excluded path -> why."""
        rows = self.conn.execute(
            "SELECT value_key, reason FROM exclusions WHERE kind = 'path'"
        ).fetchall()
        return {os.fsdecode(bytes(r[0])): str(r[1]) for r in rows}

    def patterns(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT value FROM exclusions WHERE kind = 'pattern' ORDER BY added_at"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def remove_patterns(self, patterns: Iterable[str]) -> int:
        with self.conn:
            return self.conn.executemany(
                "DELETE FROM exclusions WHERE kind = 'pattern' AND value_key = ?",
                [(p.encode("utf-8"),) for p in patterns],
            ).rowcount

    def lift(self, paths: Iterable[str]) -> int:
        """Forget the path exclusions of exactly ``paths`` (the user indexes them by name)."""
        with self.conn:
            return self.conn.executemany(
                "DELETE FROM exclusions WHERE kind = 'path' AND value_key = ?",
                [(path_key(p),) for p in paths],
            ).rowcount
