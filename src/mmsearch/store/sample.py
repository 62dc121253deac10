"""A random sample of one index's vectors (the background a query is calibrated against).

Drawn by id from the catalog without scanning the table: random ids between the
smallest and largest vector id of the (space, modality) are looked up, which is
uniform over the vectors that exist; sparse id ranges (spaces interleaved)
fall back to SQLite's ``ORDER BY random()``. The generator is seeded, so one
library gives the same sample, and the same scores, every time.
"""

from __future__ import annotations

import numpy as np

from mmsearch.store.catalog import Catalog
from mmsearch.store.rows import blob_to_vec
from mmsearch.types import Vectors

SEED = 20261204


def sample_vectors(catalog: Catalog, space_id: int, modality: str, m: int, dim: int) -> Vectors:
    """Up to ``m`` vectors of (space, modality), chosen at random with a fixed seed."""
    conn = catalog.conn
    lo, hi = conn.execute(
        "SELECT min(id), max(id) FROM vectors WHERE space_id = ? AND modality = ?",
        (space_id, modality),
    ).fetchone()
    if lo is None:
        return np.zeros((0, dim), dtype=np.float32)
    rng = np.random.default_rng(SEED + space_id)
    where = "space_id = ? AND modality = ?"
    if hi - lo + 1 <= 4 * m:
        rows = conn.execute(
            f"SELECT vec FROM vectors WHERE {where} AND id BETWEEN ? AND ?",
            (space_id, modality, lo, hi),
        ).fetchall()
        if len(rows) > m:
            rows = [rows[i] for i in sorted(rng.choice(len(rows), m, replace=False))]
    else:
        ids = sorted({int(i) for i in rng.integers(lo, hi + 1, size=3 * m)})
        rows = []
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            rows += conn.execute(
                f"SELECT vec FROM vectors WHERE {where} AND id IN ({marks})",
                (space_id, modality, *chunk),
            ).fetchall()
        if len(rows) < m // 2:
            rows = conn.execute(
                f"SELECT vec FROM vectors WHERE {where} ORDER BY random() LIMIT ?",
                (space_id, modality, m),
            ).fetchall()
        rows = rows[:m]
    if not rows:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack([blob_to_vec(r[0]) for r in rows]).astype(np.float32, copy=False)
