"""Fusion: one ranking of items from the matches of every source.

A *source* is one index searched for the query (``main/image``: photos and video
frames; ``main/text``, ``text/text``: captions, text chunks, subtitles,
transcripts; ``audio/audio``: sound windows; ``video/video``: X-CLIP clips) or the
full-text index (``lexical``). Each match carries *evidence*, its calibrated
strength (``calibrate.py``).

``calibrated`` (the default) adds, per item, the weighted evidence of each source's
best match, as Fisher's method adds ``-log p`` of independent tests: an item that
both looks like the query and says it outranks one that only looks like it, and a
source with nothing to say adds next to nothing. A segment found by several
sources (a subtitle cue found by meaning and by its words) adds theirs too; the
strongest segments become the hit's moments.

``rrf`` ranks by reciprocal rank (``sum w/(60 + rank)``, Cormack et al. 2009),
kept for comparison: it throws the scores away, so the first result of a source
that knows nothing of the query ties with the best real match. Ties in either
ranking go to the stronger evidence, then the lower item id: never to chance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mmsearch.store.rows import SegmentRow

RRF_K = 60


@dataclass
class Match:
    """One segment found by one source."""

    source: str
    item_id: int
    segment: SegmentRow
    raw: float
    evidence: float
    vector_id: int | None = None


@dataclass
class Fused:
    """One item with the matches of every source that found it."""

    item_id: int
    evidence: float = 0.0
    rrf: float = 0.0
    best: dict[str, Match] = field(default_factory=dict)
    """The best match of each source."""
    segments: dict[int, list[Match]] = field(default_factory=dict)
    """Every match, by segment id."""

    def segment_evidence(self, weights: Mapping[str, float]) -> dict[int, float]:
        """Weighted evidence of each segment, summed over the sources that found it."""
        return {
            sid: sum(_w(weights, m.source) * m.evidence for m in ms)
            for sid, ms in self.segments.items()
        }

    def strongest(self, weights: Mapping[str, float]) -> Match:
        return max(self.best.values(), key=lambda m: (_w(weights, m.source) * m.evidence, m.raw))


def _w(weights: Mapping[str, float], source: str) -> float:
    return float(weights.get(source, 1.0))


def fuse(
    sources: Sequence[Sequence[Match]], weights: Mapping[str, float], method: str = "calibrated"
) -> list[Fused]:
    """Items found by any source, best first (``method``: calibrated or rrf)."""
    by_item: dict[int, Fused] = {}
    for matches in sources:
        ranked: list[int] = []
        for m in sorted(matches, key=lambda m: (-m.evidence, -m.raw, m.segment.id)):
            f = by_item.get(m.item_id)
            if f is None:
                by_item[m.item_id] = f = Fused(m.item_id)
            if m.source not in f.best:
                f.best[m.source] = m
                ranked.append(m.item_id)
            f.segments.setdefault(m.segment.id, []).append(m)
        weight = _w(weights, matches[0].source) if matches else 0.0
        for rank, item_id in enumerate(ranked, start=1):
            by_item[item_id].rrf += weight / (RRF_K + rank)
    for f in by_item.values():
        f.evidence = sum(_w(weights, s) * m.evidence for s, m in f.best.items())
    if method == "rrf":
        key = lambda f: (-round(f.rrf, 12), -f.evidence, f.item_id)  # noqa: E731
    else:
        key = lambda f: (-f.evidence, -f.rrf, f.item_id)  # noqa: E731
    return sorted(by_item.values(), key=key)
