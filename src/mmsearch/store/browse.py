"""Browsing a catalog without a query: items newest first, a page at a time.

Read-only SQL over ``catalog.conn``. The order is ``items.taken_at`` descending
(the EXIF date, else the file's mtime; items without one come last), then id
descending (the most recently added first), so pages never overlap or skip an
item while the catalog is unchanged. Conditions come from the caller as SQL over
``items i`` with their parameters (see :func:`mmsearch.search.filters.build_where`),
so browsing filters exactly as searching does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mmsearch.store.catalog import Catalog
from mmsearch.store.rows import ItemRow


@dataclass(frozen=True)
class BrowsePage:
    items: list[ItemRow]
    total: int
    """How many items match the conditions in all."""


def browse_items(
    catalog: Catalog,
    where: str = "",
    params: Sequence[Any] = (),
    *,
    offset: int = 0,
    limit: int = 50,
) -> BrowsePage:
    """Items matching ``where`` (SQL over ``items i``; empty for all), newest first."""
    cond = f"WHERE {where}" if where else ""
    ids = [
        int(r[0])
        for r in catalog.conn.execute(
            f"SELECT i.id FROM items i {cond} "
            # SQLite sorts NULL lowest: items without a date come last.
            "ORDER BY i.taken_at DESC, i.id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
    ]
    rows = catalog.items(ids)
    total = catalog.conn.execute(f"SELECT COUNT(*) FROM items i {cond}", list(params)).fetchone()
    # An item deleted between the two statements is simply left out.
    return BrowsePage([rows[i] for i in ids if i in rows], int(total[0]))
