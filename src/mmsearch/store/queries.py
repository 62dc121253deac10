"""Read-only questions about a library's catalog, asked to explain a query to its user.

Each function takes an open :class:`~mmsearch.store.catalog.Catalog` and only reads
from it: which metadata field keys exist (to name them when a filter uses an unknown
one), which item ids exist (to say "no item 99999"), how many items there are.
"""

from __future__ import annotations

from collections.abc import Iterable

from mmsearch.store.catalog import Catalog

SQLITE_MAX_INT = 2**63 - 1
"""Larger ids cannot be stored, so they name no item (and must not reach SQLite)."""


def field_keys(catalog: Catalog) -> list[str]:
    """The user metadata field keys any item has (from sidecars or ``--meta``), sorted."""
    rows = catalog.conn.execute("SELECT DISTINCT key FROM fields ORDER BY key").fetchall()
    return [str(r[0]) for r in rows]


def has_field_key(catalog: Catalog, key: str) -> bool:
    """Whether any item has the metadata field ``key``."""
    row = catalog.conn.execute("SELECT 1 FROM fields WHERE key = ? LIMIT 1", (key,)).fetchone()
    return row is not None


def existing_item_ids(catalog: Catalog, ids: Iterable[int]) -> set[int]:
    """The ids among ``ids`` that name an item of the library (out-of-range ids never do)."""
    wanted = sorted({int(i) for i in ids if 0 <= int(i) <= SQLITE_MAX_INT})
    found: set[int] = set()
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        marks = ",".join("?" * len(chunk))
        rows = catalog.conn.execute(f"SELECT id FROM items WHERE id IN ({marks})", chunk)
        found.update(int(r[0]) for r in rows)
    return found


def item_count(catalog: Catalog) -> int:
    """How many items the library holds."""
    return int(catalog.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
