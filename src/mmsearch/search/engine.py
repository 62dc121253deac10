"""Run a :class:`Query` against a library: embed per space, search each target, fuse, group.

A *target* is one FAISS index: a (space, vector modality) pair such as
(main, image) for photos and video frames or (audio, audio) for sound windows.
Each space embeds the query parts it understands; a plain query searches the
primary modality of every space that can embed all its parts. Other filters
become the set of vector ids an index may return, applied inside FAISS.

Within one target, scores are cosine similarities. When several targets (or
lexical search, in ``hybrid`` mode) contribute, their rankings are fused by
reciprocal rank and the hit score is the fused score; the per-target cosines
stay in ``Hit.signals``. Matches of one item group into one hit whose segments
are its best moments, neighbouring time ranges merged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.errors import DecodeError, QueryError
from mmsearch.search.filters import build_where, check_fields, check_modalities, user_fields
from mmsearch.search.fusion import rrf
from mmsearch.search.lexical import lexical_segments
from mmsearch.search.moments import merge_moments
from mmsearch.search.query import Query, QueryPart, combine
from mmsearch.spaces import PRIMARY_MODALITIES, Space
from mmsearch.store.catalog import Catalog
from mmsearch.store.queries import existing_item_ids, field_keys, has_field_key
from mmsearch.types import Hit, SegmentHit, Vectors

SEGMENTS_PER_HIT = 3
"""Moments (or segments) reported per hit."""
_SEGMENTS_GATHERED = 24
"""Matching segments gathered per item before moments are merged."""


@dataclass
class _Group:
    item_id: int
    modality: str
    score: float
    segments: list[SegmentHit]
    signals: dict[str, float] = field(default_factory=dict)


class SearchEngine:
    def __init__(self, catalog: Catalog, spaces: dict[str, Space]) -> None:
        self.catalog = catalog
        self.spaces = spaces

    # -- targets and query vectors -----------------------------------------------------
    def targets(self, query: Query) -> list[tuple[Space, str]]:
        """The indexes ``query`` searches; raises when no space can embed its parts."""
        wanted = query.filters.get("modality")
        out: list[tuple[Space, str]] = []
        fallback: list[tuple[Space, str]] = []
        refused: list[str] = []
        for space in self.spaces.values():
            present = space.modalities()
            if not present:
                continue
            if not all(space.can_embed(p) for p in query.parts):
                refused.append(space.name)
                continue
            if wanted in (None, ""):
                mods = [m for m in PRIMARY_MODALITIES[space.name] if m in present]
                fallback += [(space, m) for m in present]
            else:
                names = [wanted] if isinstance(wanted, str) else list(wanted)
                mods = (
                    present if {"any", "all"} & set(names) else [m for m in names if m in present]
                )
            out += [(space, m) for m in mods]
        if not out and wanted in (None, ""):
            out = fallback
        if not out and refused:
            kinds = sorted({str(p.kind) for p in query.parts})
            raise QueryError(
                f"no space of this library can embed a query of {', '.join(kinds)}: "
                + _missing_space_hint(kinds)
            )
        return out

    def embed(self, space: Space, query: Query) -> Vectors:
        """One unit vector for all parts of ``query`` in ``space`` (weighted sum)."""
        vecs = [_embed_part(space, p) for p in query.parts]
        return combine(np.stack(vecs), [p.weight for p in query.parts])

    def check(self, query: Query) -> None:
        """Refuse, naming it, what cannot be meant: an unknown modality or metadata field,
        an item id the library does not have, a query file that is not there."""
        wanted = query.filters.get("modality")
        if wanted not in (None, ""):
            check_modalities(wanted)
        build_where(query.filters)  # raises on a malformed value, even with nothing to search
        if any(not has_field_key(self.catalog, k) for k in user_fields(query.filters)):
            check_fields(query.filters, field_keys(self.catalog))  # lists them only when needed
        ids = [int(p.value) for p in query.parts if p.kind == "item"]
        found = existing_item_ids(self.catalog, ids)
        for item_id in ids:
            if item_id not in found:
                raise QueryError(f"no item {item_id} in this library")
        for part in query.parts:
            _check_file(part)

    # -- search ------------------------------------------------------------------------
    def search(self, query: Query) -> list[Hit]:
        self.check(query)
        exclude = {int(p.value) for p in query.parts if p.kind == "item" and p.weight > 0}
        lists: list[list[_Group]] = []
        if query.mode in ("vector", "hybrid"):
            qvecs: dict[str, Vectors] = {}
            for space, modality in self.targets(query):
                if space.name not in qvecs:
                    qvecs[space.name] = self.embed(space, query)
                groups = self._search_target(space, modality, qvecs[space.name], query, exclude)
                if query.min_score is not None:
                    groups = [g for g in groups if g.score >= query.min_score]
                lists.append(groups)
        if query.mode in ("lexical", "hybrid"):
            text = " ".join(str(p.value) for p in query.parts if p.kind == "text" and p.weight > 0)
            if text:
                lists.append(self._lexical(text, query, exclude))
            elif query.mode == "lexical":
                raise QueryError("lexical search needs a text query")
        groups = _fuse(lists) if len(lists) > 1 else (lists[0] if lists else [])
        return self._hits(groups[: query.k])

    def _search_target(
        self, space: Space, modality: str, qvec: Vectors, query: Query, exclude: set[int]
    ) -> list[_Group]:
        where, params = build_where(query.filters)
        allowed = None
        if where:
            allowed = self.catalog.vector_ids_where(space.id, modality, where, params)
            if len(allowed) == 0:
                return []
        total = space.vectors.size(modality) if allowed is None else len(allowed)
        fetch = min(total, query.k * 8 + len(exclude))
        signal = f"{modality}_cosine" if space.name == "main" else f"{space.name}_{modality}_cosine"
        while True:
            scores, ids = space.vectors.search(modality, qvec[None, :], fetch, allowed=allowed)
            groups = self._group(modality, scores[0], ids[0], exclude, signal)
            if len(groups) >= query.k or fetch >= total:
                return groups[: query.k * 2]
            fetch = min(total, fetch * 4)

    def _group(
        self, modality: str, scores: np.ndarray, ids: np.ndarray, exclude: set[int], signal: str
    ) -> list[_Group]:
        keep = ids >= 0
        scores, ids = scores[keep], ids[keep]
        segs = self.catalog.segments_for_vectors(ids.tolist())
        groups: dict[int, _Group] = {}
        for score, vid in zip(scores.tolist(), ids.tolist(), strict=True):
            seg = segs.get(vid)
            if seg is None or seg.item_id in exclude:
                continue
            hit = SegmentHit(seg.id, float(score), seg.kind, seg.t_start, seg.t_end, seg.text)
            g = groups.get(seg.item_id)
            if g is None:
                groups[seg.item_id] = _Group(
                    seg.item_id, modality, float(score), [hit], {signal: float(score)}
                )
            elif len(g.segments) < _SEGMENTS_GATHERED:
                g.segments.append(hit)
        return sorted(groups.values(), key=lambda g: -g.score)

    def _lexical(self, text: str, query: Query, exclude: set[int]) -> list[_Group]:
        where, params = build_where(query.filters)
        found = lexical_segments(self.catalog, text, query.k * 20 + len(exclude), where, params)
        segs = self.catalog.segments([sid for sid, _ in found])
        groups: dict[int, _Group] = {}
        for sid, rel in found:
            seg = segs.get(sid)
            if seg is None or seg.item_id in exclude:
                continue
            hit = SegmentHit(seg.id, rel, seg.kind, seg.t_start, seg.t_end, seg.text)
            g = groups.get(seg.item_id)
            if g is None:
                groups[seg.item_id] = _Group(seg.item_id, "text", rel, [hit], {"lexical": rel})
            elif len(g.segments) < _SEGMENTS_GATHERED:
                g.segments.append(hit)
        return sorted(groups.values(), key=lambda g: -g.score)[: query.k * 2]

    # -- hits --------------------------------------------------------------------------
    def _hits(self, groups: list[_Group]) -> list[Hit]:
        items = self.catalog.items([g.item_id for g in groups])
        hits = []
        for g in groups:
            it = items.get(g.item_id)
            if it is None:  # removed between search and lookup
                continue
            meta: dict[str, Any] = {
                "item_modality": it.modality,
                "width": it.width,
                "height": it.height,
                "taken_at": it.taken_at,
                **it.meta,
                **self.catalog.item_fields(it.id),
            }
            hits.append(
                Hit(
                    item_id=it.id,
                    path=it.path,
                    modality=g.modality,
                    score=g.score,
                    segments=merge_moments(g.segments)[:SEGMENTS_PER_HIT],
                    metadata={k: v for k, v in meta.items() if v is not None},
                    signals=g.signals,
                )
            )
        return hits


def _fuse(lists: list[list[_Group]]) -> list[_Group]:
    """Reciprocal-rank fusion of per-target result lists into one, by item."""
    fused = rrf([[g.item_id for g in groups] for groups in lists])
    merged: dict[int, _Group] = {}
    for groups in lists:
        for rank, g in enumerate(groups, start=1):
            m = merged.get(g.item_id)
            if m is None:
                merged[g.item_id] = m = _Group(g.item_id, g.modality, 0.0, [], {})
                m.signals["best_rank"] = float(rank)
            elif rank < m.signals["best_rank"]:
                m.modality, m.signals["best_rank"] = g.modality, float(rank)
            seen = {s.segment_id for s in m.segments}
            m.segments += [s for s in g.segments if s.segment_id not in seen]
            m.signals.update(g.signals)
    for m in merged.values():
        m.score = float(fused[m.item_id])
        m.signals["rrf"] = m.score
        del m.signals["best_rank"]
    # Equal fused scores (each first in its own list, say) are ordered by the best
    # cosine behind them: a near-perfect match beats another list's weak first place.
    return sorted(merged.values(), key=lambda g: (-g.score, -_best_cosine(g.signals)))


def _best_cosine(signals: dict[str, float]) -> float:
    return max((v for k, v in signals.items() if k.endswith("_cosine")), default=0.0)


def _missing_space_hint(kinds: list[str]) -> str:
    if "audio" in kinds:
        return "audio queries need an audio space (index with --audio-model, e.g. a CLAP model)"
    if "image" in kinds:
        return "image queries need the image–text space"
    if "item" in kinds:
        return "the item has no vectors in a space that can embed the other parts"
    return "no model of this library understands these parts together"


def _check_file(part: QueryPart) -> None:
    """A query file part names an existing, readable file; else a QueryError naming it."""
    if part.kind not in ("image", "audio", "video"):
        return
    if not isinstance(part.value, (str, os.PathLike)):
        return
    path = os.path.expanduser(os.fspath(part.value))
    if not os.path.exists(path):
        raise QueryError(f"query {part.kind} {path}: no such file or directory")
    if os.path.isdir(path):
        raise QueryError(f"query {part.kind} {path} is a folder, not a file")
    if not os.access(path, os.R_OK):
        raise QueryError(f"query {part.kind} {path}: permission denied")


def _embed_part(space: Space, part: QueryPart) -> Vectors:
    """``space.embed(part)``, with a file that cannot be decoded named in the error."""
    try:
        return space.embed(part)
    except DecodeError as exc:
        shown = os.fspath(part.value) if isinstance(part.value, (str, os.PathLike)) else "<data>"
        raise QueryError(f"cannot use {shown} as a query {part.kind}: {exc.reason}") from exc
