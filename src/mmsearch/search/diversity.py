"""Near-duplicates and variety: fold copies into one hit; trade relevance for variety.

Each hit is represented by the image–text vector of its strongest picture (or,
failing that, text) segment. Two hits of the same kind (pictures, or texts) whose
representatives are closer than ``DUPLICATE_COSINE`` show the same thing (one photo resized or re-encoded, one frame
in two videos): the weaker folds into the stronger, which lists it in
``Hit.similar`` (as clip-retrieval's ``deduplicate`` option does, on embeddings
rather than file hashes). Maximal marginal relevance (Carbonell & Goldstein 1998)
picks, one at a time, the hit that best balances its score against its
similarity to those already picked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mmsearch.spaces import MAIN, Space
from mmsearch.store.catalog import Catalog
from mmsearch.store.rows import blob_to_vec
from mmsearch.store.segment_vectors import segment_vectors
from mmsearch.types import Hit

DUPLICATE_COSINE = 0.985
"""Representatives at least this close are one picture (resized, re-encoded, re-cut)."""
_PICTURE_KINDS = frozenset({"image", "frame", "video", "clip"})


@dataclass(frozen=True)
class Representative:
    """The vector a hit is compared by, and whether it is a picture's or a text's."""

    vector: np.ndarray
    picture: bool


def representatives(
    catalog: Catalog, spaces: Mapping[str, Space], hits: Sequence[Hit]
) -> list[Representative | None]:
    """One unit vector per hit in the image–text space (None when it has none)."""
    main = spaces.get(MAIN)
    if main is None:
        return [None] * len(hits)
    choice: list[list[tuple[int, str]]] = []
    for h in hits:
        segs = [s for s in h.evidence if s.source and s.source.startswith("main/")]
        segs += list(h.segments)
        choice.append([(s.segment_id, s.kind) for s in segs])
    vecs = segment_vectors(catalog, [sid for c in choice for sid, _ in c], main.id)
    out: list[Representative | None] = []
    for h, c in zip(hits, choice, strict=True):
        found = next(((vecs[s], k) for s, k in c if s in vecs), None)
        if found is not None:
            out.append(Representative(_unit(blob_to_vec(found[0])), found[1] in _PICTURE_KINDS))
            continue
        item = catalog.item_vectors(h.item_id, main.id)
        picture = h.metadata.get("item_modality") in ("image", "video")
        out.append(Representative(_unit(item.mean(axis=0)), picture) if len(item) else None)
    return out


def fold_duplicates(
    catalog: Catalog,
    spaces: Mapping[str, Space],
    hits: Sequence[Hit],
    threshold: float = DUPLICATE_COSINE,
) -> list[Hit]:
    """Hits with near-copies folded into the first (best) of each group."""
    reps = representatives(catalog, spaces, hits)
    kept: list[tuple[Hit, Representative | None]] = []
    for hit, rep in zip(hits, reps, strict=True):
        if rep is not None:
            twin = next((k for k, r in kept if r is not None and _alike(r, rep, threshold)), None)
            if twin is not None:
                twin.similar.append(hit.item_id)
                continue
        kept.append((hit, rep))
    return [h for h, _ in kept]


def mmr(
    catalog: Catalog, spaces: Mapping[str, Space], hits: Sequence[Hit], k: int, diversity: float
) -> list[Hit]:
    """``k`` hits chosen by maximal marginal relevance (``diversity`` 0 keeps the order)."""
    if diversity <= 0 or len(hits) <= 1:
        return list(hits[:k])
    reps = representatives(catalog, spaces, hits)

    def gain(i: int, chosen: list[int]) -> float:
        ri = reps[i]
        sims = [
            float(ri.vector @ rj.vector)
            for rj in (reps[j] for j in chosen)
            if ri is not None and rj is not None
        ]
        return (1 - diversity) * hits[i].score - diversity * max(sims, default=0.0)

    left = list(range(len(hits)))
    chosen: list[int] = []
    while left and len(chosen) < k:
        best = max(left, key=lambda i: (gain(i, chosen), -i))
        chosen.append(best)
        left.remove(best)
    return [hits[i] for i in chosen]


def _alike(a: Representative, b: Representative, threshold: float) -> bool:
    """Near-copies: the same kind (a picture is never a copy of a text) and close."""
    return a.picture == b.picture and float(a.vector @ b.vector) >= threshold


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v
