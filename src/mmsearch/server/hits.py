"""JSON for hits and items, with the URLs a client needs to show and play them.

URLs are relative to the server root: ``/api/media/{item}`` (the original, with
HTTP range support), ``/api/thumbs/items/{item}`` (photos: scaled on the fly;
videos: their first keyframe) and ``/api/thumbs/segments/{segment}`` (the
keyframe of a video moment). A time-coded segment also carries ``play_from``:
the start of its best-matching part, where a player should seek to. A video item
without a picture size (an ``.mp4`` holding only sound) has no thumbnails.

A hit explains itself (``Hit.to_dict``): its calibrated ``score`` (0–1), its
``evidence`` (the best match of each source, with the source's own ``raw`` number
and the ``highlights`` of the query's words in matched text) and the ``similar``
near-duplicates folded into it, which ``similar_items`` names and links. An
answer whose ``min_score`` removed every hit carries a ``note`` and the best hit
dropped (``best_below``).
"""

from __future__ import annotations

import os
from typing import Any

from mmsearch.library import Library
from mmsearch.store.rows import ItemRow, SegmentRow
from mmsearch.types import Hit, Hits


def media_url(item_id: int) -> str:
    return f"/api/media/{item_id}"


def pictured(modality: str, width: Any) -> bool:
    """Whether an item has pictures to thumbnail: a photo, or a video with a video track."""
    return modality == "image" or (modality == "video" and bool(width))


def item_thumb_url(item_id: int, has_pictures: bool) -> str | None:
    return f"/api/thumbs/items/{item_id}" if has_pictures else None


def segment_thumb_url(segment_id: int) -> str:
    return f"/api/thumbs/segments/{segment_id}"


def display_name(path: str) -> str:
    return os.path.basename(os.fsencode(path).decode("utf-8", "replace"))


def answer_json(lib: Library, hits: Hits) -> dict[str, Any]:
    """``hits``, the note when a cut-off left none, and the best hit it dropped."""
    below = hits.best_below
    return {
        "hits": hits_json(lib, hits),
        "note": hits.note(),
        "best_below": hits_json(lib, [below])[0] if below is not None else None,
    }


def hits_json(lib: Library, hits: list[Hit]) -> list[dict[str, Any]]:
    seg_ids = [s.segment_id for h in hits for s in h.segments if s.t_start is not None]
    rows = lib.catalog.segments(seg_ids) if seg_ids else {}
    similar = [i for h in hits for i in h.similar]
    items = lib.catalog.items(similar) if similar else {}
    out = []
    for h in hits:
        d = hit_json(h, rows)
        if h.similar:
            d["similar_items"] = [similar_json(items[i]) for i in h.similar if i in items]
        out.append(d)
    return out


def similar_json(item: ItemRow) -> dict[str, Any]:
    """A near-duplicate folded into a hit: enough to show and open it."""
    return {
        "item_id": item.id,
        "path": os.fsencode(item.path).decode("utf-8", "replace"),
        "name": display_name(item.path),
        "item_modality": item.modality,
        "media_url": media_url(item.id),
        "thumbnail_url": item_thumb_url(item.id, pictured(item.modality, item.width)),
    }


def hit_json(hit: Hit, rows: dict[int, SegmentRow]) -> dict[str, Any]:
    d = hit.to_dict()
    kind = str(hit.metadata.get("item_modality", hit.modality))
    d["item_modality"] = kind
    d["name"] = display_name(hit.path)
    d["media_url"] = media_url(hit.item_id)
    keyframes = pictured(kind, hit.metadata.get("width"))
    d["thumbnail_url"] = item_thumb_url(hit.item_id, keyframes)
    for seg in d["segments"]:
        if seg.get("t_start") is None:
            continue
        own = rows.get(seg["segment_id"])
        # A moment may span several merged segments; play from the best one's start.
        start = own.t_start if own is not None and own.t_start is not None else seg["t_start"]
        seg["play_from"] = round(float(start), 3)
        if kind == "video" and keyframes:
            seg["thumbnail_url"] = segment_thumb_url(seg["segment_id"])
    if d["segments"] and "thumbnail_url" in d["segments"][0]:
        d["thumbnail_url"] = d["segments"][0]["thumbnail_url"]
    d["play_from"] = d["segments"][0].get("play_from") if d["segments"] else None
    return d


def item_json(item: ItemRow, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "item_id": item.id,
        "path": os.fsencode(item.path).decode("utf-8", "replace"),
        "name": display_name(item.path),
        "modality": item.modality,
        "size": item.size,
        "mtime": item.mtime,
        "width": item.width,
        "height": item.height,
        "taken_at": item.taken_at,
        "meta": item.meta,
        "fields": fields,
        "media_url": media_url(item.id),
        "thumbnail_url": item_thumb_url(item.id, pictured(item.modality, item.width)),
    }


def segment_json(seg: SegmentRow, item: ItemRow, text_limit: int = 500) -> dict[str, Any]:
    out: dict[str, Any] = {
        "segment_id": seg.id,
        "modality": seg.modality,
        "kind": seg.kind,
        "t_start": seg.t_start,
        "t_end": seg.t_end,
    }
    if seg.text:
        out["text"] = seg.text[:text_limit] + ("…" if len(seg.text) > text_limit else "")
    if seg.t_start is not None and pictured(item.modality, item.width):
        out["thumbnail_url"] = segment_thumb_url(seg.id)
    return out
