"""Which part of each hit a reranker reads: at most one picture and one text per hit.

* picture — a photo: the item's own file (its whole-image segment). A video: the stored
  keyframe of the best ``frame`` segment the hit carries (its evidence first, then its
  moments); else the frame on screen at the time of its best timed evidence (a subtitle
  cue that matched → the picture shown while it was said); else its first keyframe.
  Sound and text items have no picture.
* text — the best text segment the hit carries (caption, text chunk, subtitle cue,
  transcript span; evidence first, then moments); else a photo's caption or a text
  file's first chunk, from the catalog.

Only the choice is made here, from the hits and the catalog's rows; decoding is
``pictures.py``'s.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from mmsearch.search.rerank.base import CandidateKind
from mmsearch.store.catalog import Catalog
from mmsearch.store.rows import ItemRow, SegmentRow
from mmsearch.types import Hit, SegmentHit

TEXT_KINDS = frozenset({"caption", "text", "subtitle", "transcript"})
"""Segment kinds whose text a text reranker reads."""

_WHOLE_TEXT_KINDS = ("caption", "text")
"""Untimed text an item can be judged by when the hit carries none (a timed cue picked
at random would say nothing about the moment that matched)."""


@dataclass(frozen=True)
class Pick:
    """One candidate chosen from a hit: the segment it stands for and how to read it.

    ``item`` is set for a photo (its file is decoded); a video frame's picture is the
    keyframe stored for ``segment_id``; a text candidate's text is ``text``.
    """

    hit_index: int
    kind: CandidateKind
    segment_id: int
    segment_kind: str
    t_start: float | None = None
    t_end: float | None = None
    text: str | None = None
    item: ItemRow | None = None


def pick_candidates(catalog: Catalog, hits: Sequence[Hit], kinds: Collection[str]) -> list[Pick]:
    """The candidates of ``hits`` of the given kinds, hit by hit (picture before text)."""
    items = catalog.items([h.item_id for h in hits])
    picks: list[Pick] = []
    for i, hit in enumerate(hits):
        item = items.get(hit.item_id)
        if item is None:  # removed since the search began
            continue
        rows = _LazyRows(catalog, item.id)
        if "picture" in kinds:
            picture = _picture(i, hit, item, rows)
            if picture is not None:
                picks.append(picture)
        if "text" in kinds:
            text = _text(i, hit, rows)
            if text is not None:
                picks.append(text)
    return picks


class _LazyRows:
    """An item's segment rows, read from the catalog only if a fallback needs them."""

    def __init__(self, catalog: Catalog, item_id: int) -> None:
        self._catalog, self._item_id = catalog, item_id
        self._rows: list[SegmentRow] | None = None

    def of_kind(self, *kinds: str) -> list[SegmentRow]:
        if self._rows is None:
            self._rows = self._catalog.item_segments(self._item_id)
        return [r for r in self._rows if r.kind in kinds]


def _carried(hit: Hit) -> Iterator[SegmentHit]:
    """The hit's segments, strongest evidence first, then its moments."""
    yield from hit.evidence
    yield from hit.segments


def _picture(i: int, hit: Hit, item: ItemRow, rows: _LazyRows) -> Pick | None:
    if item.modality == "image":
        seg = next((s for s in _carried(hit) if s.kind == "image"), None)
        if seg is not None:
            return Pick(i, "picture", seg.segment_id, "image", item=item)
        whole = rows.of_kind("image")
        return Pick(i, "picture", whole[0].id, "image", item=item) if whole else None
    if item.modality != "video":
        return None
    frame = next((s for s in _carried(hit) if s.kind == "frame"), None)
    if frame is not None:
        return Pick(i, "picture", frame.segment_id, "frame", frame.t_start, frame.t_end)
    row = _frame_at(rows.of_kind("frame"), _moment_time(hit))
    if row is None:
        return None
    return Pick(i, "picture", row.id, "frame", row.t_start, row.t_end)


def _text(i: int, hit: Hit, rows: _LazyRows) -> Pick | None:
    seg = next((s for s in _carried(hit) if s.kind in TEXT_KINDS and _has_text(s.text)), None)
    if seg is not None:
        return Pick(i, "text", seg.segment_id, seg.kind, seg.t_start, seg.t_end, seg.text)
    row = next((r for r in rows.of_kind(*_WHOLE_TEXT_KINDS) if _has_text(r.text)), None)
    if row is None:
        return None
    return Pick(i, "text", row.id, row.kind, row.t_start, row.t_end, row.text)


def _has_text(text: str | None) -> bool:
    return bool(text and text.strip())


def _moment_time(hit: Hit) -> float | None:
    """The middle of the hit's strongest timed segment (None when none is timed)."""
    for s in _carried(hit):
        if s.t_start is not None:
            end = s.t_end if s.t_end is not None else s.t_start
            return (s.t_start + end) / 2
    return None


def _frame_at(frames: list[SegmentRow], t: float | None) -> SegmentRow | None:
    """The frame segment shown at ``t`` (the nearest one), or the first when ``t`` is None."""
    if not frames:
        return None
    if t is None:
        return frames[0]

    def distance(r: SegmentRow) -> float:
        start = r.t_start if r.t_start is not None else 0.0
        end = r.t_end if r.t_end is not None else start
        return 0.0 if start <= t <= end else min(abs(t - start), abs(t - end))

    return min(frames, key=distance)
