"""Run a :class:`Query` against a library: encode parts, search per modality, group by item.

Each modality (image vectors, text vectors) has its own index, so a modality
filter picks an index rather than filtering inside one. Other filters become
the set of vector ids the index may return, applied inside the FAISS search.
Scores are cosine similarities; they are comparable within one modality.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmsearch.encoders.base import Encoder
from mmsearch.errors import QueryError
from mmsearch.search.filters import build_where
from mmsearch.search.query import Query, QueryPart, combine
from mmsearch.store.catalog import Catalog
from mmsearch.types import Hit, SegmentHit, Vectors, l2_normalize
from mmsearch.vectorstore import VectorStore

SEGMENTS_PER_HIT = 3


@dataclass
class _Group:
    item_id: int
    modality: str
    score: float
    segments: list[SegmentHit]


class SearchEngine:
    def __init__(
        self,
        catalog: Catalog,
        vectors: VectorStore,
        space_id: int,
        encoder: Callable[[], Encoder],
    ) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.space_id = space_id
        self._encoder = encoder

    # -- query vector ------------------------------------------------------------------
    def embed(self, parts: list[QueryPart]) -> Vectors:
        """One unit vector for all parts (weighted sum)."""
        vecs = [self._embed_part(p) for p in parts]
        return combine(np.stack(vecs), [p.weight for p in parts])

    def _embed_part(self, part: QueryPart) -> Vectors:
        if part.kind == "text":
            return self._encoder().encode_text([str(part.value)])[0]
        if part.kind == "image":
            return self._encoder().encode_images([part.value])[0]
        if part.kind == "vector":
            v = np.asarray(part.value, dtype=np.float32).reshape(-1)
            if v.shape[0] != self.vectors.dim:
                raise QueryError(
                    f"vector has dimension {v.shape[0]}, library uses {self.vectors.dim}"
                )
            return l2_normalize(v)[0]
        if part.kind == "item":
            vecs = self.catalog.item_vectors(int(part.value), self.space_id)
            if len(vecs) == 0:
                raise QueryError(f"no item with id {part.value}")
            return l2_normalize(vecs.mean(axis=0))[0]
        raise QueryError(f"unknown query part kind {part.kind!r}")

    # -- search ------------------------------------------------------------------------
    def target_modalities(self, filters: dict[str, Any]) -> list[str]:
        present = self.catalog.vector_modalities(self.space_id)
        wanted = filters.get("modality")
        if wanted in (None, ""):
            return ["image"] if "image" in present else present
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        if "any" in names or "all" in names:
            return present
        return [m for m in names if m in present]

    def search(self, query: Query) -> list[Hit]:
        qvec = self.embed(query.parts)
        groups: list[_Group] = []
        exclude = {int(p.value) for p in query.parts if p.kind == "item" and p.weight > 0}
        for modality in self.target_modalities(query.filters):
            groups += self._search_modality(modality, qvec, query, exclude)
        groups.sort(key=lambda g: -g.score)
        if query.min_score is not None:
            groups = [g for g in groups if g.score >= query.min_score]
        return self._hits(groups[: query.k])

    def _search_modality(
        self, modality: str, qvec: Vectors, query: Query, exclude: set[int]
    ) -> list[_Group]:
        where, params = build_where(query.filters)
        allowed = None
        if where:
            allowed = self.catalog.vector_ids_where(self.space_id, modality, where, params)
            if len(allowed) == 0:
                return []
        total = self.vectors.size(modality) if allowed is None else len(allowed)
        fetch = min(total, query.k * 4 + len(exclude))
        while True:
            scores, ids = self.vectors.search(modality, qvec[None, :], fetch, allowed=allowed)
            groups = self._group(modality, scores[0], ids[0], exclude)
            if len(groups) >= query.k or fetch >= total:
                return groups[: query.k]
            fetch = min(total, fetch * 4)

    def _group(
        self, modality: str, scores: np.ndarray, ids: np.ndarray, exclude: set[int]
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
                groups[seg.item_id] = _Group(seg.item_id, modality, float(score), [hit])
            elif len(g.segments) < SEGMENTS_PER_HIT:
                g.segments.append(hit)
        return sorted(groups.values(), key=lambda g: -g.score)

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
                    segments=g.segments,
                    metadata={k: v for k, v in meta.items() if v is not None},
                    signals={f"{g.modality}_cosine": g.score},
                )
            )
        return hits
