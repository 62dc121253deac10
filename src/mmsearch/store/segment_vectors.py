"""Vectors of a second space for segments that already exist.

A segment is one row however many spaces embed it: a text segment (a text-file chunk, a
caption, a subtitle cue, a transcript span) has its image–text vector, committed with it,
and a vector in the ``text`` space added here (right after the commit, or later when the
space joins an existing library). Inserts go through the ``vectors`` table, so the
journal triggers tell the FAISS indexes as for any other vector.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mmsearch.store.catalog import Catalog
from mmsearch.store.rows import vec_to_blob
from mmsearch.types import Vectors

_CHUNK = 900  # SQLite's bound on host parameters, with room to spare


def segments_lacking(
    catalog: Catalog,
    space_id: int,
    modality: str,
    *,
    item_ids: Iterable[int] | None = None,
    after: int = 0,
    limit: int = 256,
) -> list[tuple[int, str]]:
    """(segment id, text) of ``modality`` segments with text but no vector in ``space_id``,
    in id order from ``after`` (exclusive); only those of ``item_ids`` when given."""
    sql = (
        "SELECT s.id, s.text FROM segments s WHERE s.modality = ? AND s.text IS NOT NULL"
        " AND s.id > ? AND NOT EXISTS (SELECT 1 FROM vectors v"
        " WHERE v.segment_id = s.id AND v.space_id = ?)"
    )
    if item_ids is None:
        rows = catalog.conn.execute(
            sql + " ORDER BY s.id LIMIT ?", (modality, int(after), int(space_id), int(limit))
        ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]
    ids = sorted({int(i) for i in item_ids})
    out: list[tuple[int, str]] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = catalog.conn.execute(
            sql + f" AND s.item_id IN ({marks}) ORDER BY s.id",
            (modality, int(after), int(space_id), *chunk),
        ).fetchall()
        out += [(int(r[0]), str(r[1])) for r in rows]
    return sorted(out)


def count_lacking(catalog: Catalog, space_id: int, modality: str, *, after: int = 0) -> int:
    """How many ``modality`` segments with text, with ids above ``after``, have no vector
    in ``space_id`` (a range of the primary key: cheap when ``after`` is recent)."""
    row = catalog.conn.execute(
        "SELECT COUNT(*) FROM segments s WHERE s.id > ? AND s.modality = ?"
        " AND s.text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM vectors v"
        " WHERE v.segment_id = s.id AND v.space_id = ?)",
        (int(after), modality, int(space_id)),
    ).fetchone()
    return int(row[0])


def max_segment_id(catalog: Catalog) -> int:
    """The highest segment id given so far (ids only grow: AUTOINCREMENT)."""
    row = catalog.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'segments'").fetchone()
    return int(row[0]) if row is not None else 0


def add_segment_vectors(
    catalog: Catalog,
    space_id: int,
    modality: str,
    segment_ids: Sequence[int],
    vectors: Vectors,
) -> int:
    """Give each segment its vector in ``space_id``, in one transaction; returns how many
    were added (a segment deleted meanwhile, or one that has its vector already, is left)."""
    if len(segment_ids) != len(vectors):
        raise ValueError(f"{len(segment_ids)} segments but {len(vectors)} vectors")
    n = 0
    with catalog.conn:
        for seg_id, vec in zip(segment_ids, vectors, strict=True):
            cur = catalog.conn.execute(
                "INSERT INTO vectors (segment_id, space_id, modality, vec)"
                " SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM segments WHERE id = ?)"
                " AND NOT EXISTS (SELECT 1 FROM vectors WHERE segment_id = ? AND space_id = ?)",
                (
                    int(seg_id),
                    int(space_id),
                    modality,
                    vec_to_blob(vec),
                    int(seg_id),
                    int(seg_id),
                    int(space_id),
                ),
            )
            n += cur.rowcount
    return n


def segment_vectors(
    catalog: Catalog, segment_ids: Iterable[int], space_id: int
) -> dict[int, bytes]:
    """The vector blob of each segment in one space (segments without one are left out)."""
    wanted = sorted({int(s) for s in segment_ids})
    out: dict[int, bytes] = {}
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        marks = ",".join("?" * len(chunk))
        rows = catalog.conn.execute(
            f"SELECT segment_id, vec FROM vectors WHERE space_id = ? AND segment_id IN ({marks})"
            " ORDER BY id",
            (space_id, *chunk),
        )
        for sid, vec in rows:
            out.setdefault(int(sid), vec)
    return out
