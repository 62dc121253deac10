"""Run a :class:`Query` against a library: every source of evidence, calibrated, fused.

A *target* is one FAISS index: a (space, vector modality) pair such as
(main, image) for photos and video frames or (audio, audio) for sound windows.
A text query searches every index whose space can embed it (pictures, text
segments in the image–text and the text space, sound windows, X-CLIP clips)
and, in ``hybrid`` mode, the full-text index; a query by image, clip or item
searches each space's primary index. ``modality`` narrows the indexes; ``type``
(item kind) picks the indexes that hold that kind. Other filters become the set
of vector ids an index may return, applied inside FAISS.

Each source's raw scores are calibrated against the query's background in that
index (``calibrate.py``), fused per item (``fusion.py``), optionally re-scored by
cross-attention rerankers (``rerank/``), folded when near-duplicate
(``diversity.py``) and cut at ``min_score``. A hit's moments are its strongest
segments, neighbouring time ranges merged (``moments.py``); its evidence lists
the best match of each source, with the query's words marked in matched text.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from mmsearch.errors import DecodeError, QueryError
from mmsearch.search.calibrate import (
    SAMPLE_SIZE,
    Background,
    BackgroundSample,
    Curve,
    evidence_of,
    lexical_evidence,
    model_calibration,
    score_of,
)
from mmsearch.search.diversity import fold_duplicates
from mmsearch.search.filters import build_where, check_fields, check_modalities, user_fields
from mmsearch.search.fusion import Fused, Match, fuse
from mmsearch.search.highlight import highlights, matched_words, proximity, query_words
from mmsearch.search.lexical import lexical_segments, term_weights
from mmsearch.search.moments import merge_moments
from mmsearch.search.query import Query, QueryPart, combine
from mmsearch.spaces import MAIN, PRIMARY_MODALITIES, Space
from mmsearch.store.catalog import Catalog
from mmsearch.store.queries import existing_item_ids, field_keys, has_field_key
from mmsearch.store.rows import SegmentRow
from mmsearch.store.sample import sample_vectors
from mmsearch.types import Hit, Hits, SegmentHit, Vectors

SEGMENTS_PER_HIT = 3
"""Moments (or segments) reported per hit."""
MOMENT_FLOOR = 0.1
"""Further moments are listed only with at least this share of the best one's evidence."""
_SEGMENTS_GATHERED = 24
"""Matching segments gathered per item and source before moments are merged."""

TEXT_QUERY_MODALITIES: dict[str, tuple[str, ...]] = {
    "main": ("image", "text"),
    "audio": ("audio",),
    "video": ("video",),
    "text": ("text",),
}
"""What a text query searches in each space by default: everything that can answer
it. (``main/video``, a video's frames pooled, is left out: the frames already speak
for the video, and counting them twice would favour videos over photos.)"""

TYPE_MODALITIES: dict[str, frozenset[str]] = {
    "image": frozenset({"image", "text"}),
    "video": frozenset({"image", "video", "text", "audio"}),
    "audio": frozenset({"audio", "text"}),
    "text": frozenset({"text"}),
}
"""The vector modalities that hold segments of each item kind (captions and
subtitles are text; a video has frames, clips, sound and subtitles)."""


def source_name(space: Space, modality: str) -> str:
    return f"{space.name}/{modality}"


def _legacy_signal(source: str) -> str:
    space, modality = source.split("/")
    return f"{modality}_cosine" if space == MAIN else f"{space}_{modality}_cosine"


class SearchEngine:
    def __init__(self, catalog: Catalog, spaces: dict[str, Space]) -> None:
        self.catalog = catalog
        self.spaces = spaces
        self._backgrounds: dict[tuple[int, str], BackgroundSample] = {}

    # -- targets and query vectors -----------------------------------------------------
    def space_parts(self, space: Space, query: Query) -> list[QueryPart] | None:
        """The parts ``space`` embeds for ``query``: all required ones and the feedback
        items it has vectors for; None when it cannot take part."""
        required = [p for p in query.parts if not p.optional]
        if not all(space.can_embed(p) for p in required):
            return None
        usable = required + [p for p in query.parts if p.optional and space.can_embed(p)]
        return usable if any(p.weight > 0 for p in usable) else None

    def targets(self, query: Query) -> list[tuple[Space, str]]:
        """The indexes ``query`` searches; raises when no space can embed its parts."""
        wanted = query.filters.get("modality")
        kinds = query.filters.get("type")
        allowed: frozenset[str] | None = None
        if kinds:
            names = [kinds] if isinstance(kinds, str) else list(kinds)
            allowed = frozenset().union(*(TYPE_MODALITIES.get(k, frozenset()) for k in names))
        out: list[tuple[Space, str]] = []
        fallback: list[tuple[Space, str]] = []
        refused: list[str] = []
        for space in self.spaces.values():
            present = space.modalities()
            if not present:
                continue
            parts = self.space_parts(space, query)
            if parts is None:
                refused.append(space.name)
                continue
            if wanted not in (None, ""):
                names = [wanted] if isinstance(wanted, str) else list(wanted)
                if {"any", "all"} & set(names):
                    mods = list(present)
                else:
                    mods = [m for m in names if m in present]
            else:
                text_query = all(p.kind == "text" for p in parts if not p.optional)
                table = TEXT_QUERY_MODALITIES if text_query else PRIMARY_MODALITIES
                mods = [m for m in table[space.name] if m in present]
                if allowed is not None:
                    mods = [m for m in mods if m in allowed] or [
                        m for m in present if m in allowed and (m != "video" or space.name != MAIN)
                    ]
                else:
                    fallback += [(space, m) for m in present]
            out += [(space, m) for m in mods]
        if not out and wanted in (None, "") and allowed is None:
            out = fallback
        if not out and refused:
            kinds_asked = sorted({str(p.kind) for p in query.parts if not p.optional})
            raise QueryError(
                f"no space of this library can embed a query of {', '.join(kinds_asked)}: "
                + _missing_space_hint(kinds_asked)
            )
        return out

    def embed(self, space: Space, query: Query) -> Vectors:
        """One unit vector for the parts of ``query`` that ``space`` embeds (weighted sum)."""
        parts = self.space_parts(space, query) or list(query.parts)
        vecs = [_embed_part(space, p) for p in parts]
        return combine(np.stack(vecs), [p.weight for p in parts])

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
    def search(self, query: Query) -> Hits:
        self.check(query)
        exclude = set(query.exclude) | {
            int(p.value) for p in query.parts if p.kind == "item" and p.weight > 0
        }
        want = max(query.k, query.rerank_top if query.rerank else 0)
        if query.dedupe:
            want *= 2
        sources = self.gather(query, exclude, want)
        fused = fuse(sources, query.weights, query.fusion)
        text = query_text(query)
        hits = self.hits(fused[:want], query.weights, text)
        if query.rerank and text:
            hits = self._rerank(hits, text, query)
        if query.dedupe:
            hits = fold_duplicates(self.catalog, self.spaces, hits)
        return cut(hits, query.k, query.min_score)

    def gather(self, query: Query, exclude: set[int], want: int) -> list[list[Match]]:
        """The calibrated matches of every source ``query`` searches."""
        sources: list[list[Match]] = []
        if query.mode in ("vector", "hybrid"):
            qvecs: dict[str, Vectors] = {}
            for space, modality in self.targets(query):
                if space.name not in qvecs:
                    qvecs[space.name] = self.embed(space, query)
                found = self._search_target(
                    space, modality, qvecs[space.name], query, exclude, want
                )
                sources.append(found)
        wanted = query.filters.get("modality")
        names = [] if wanted in (None, "") else [wanted] if isinstance(wanted, str) else wanted
        if query.mode in ("lexical", "hybrid") and (
            not names or {"text", "any", "all"} & set(names) or query.mode == "lexical"
        ):
            text = query_text(query)
            if text:
                sources.append(self._lexical(text, query, exclude, want))
            elif query.mode == "lexical":
                raise QueryError("lexical search needs a text query")
        return sources

    def calibration(
        self, space: Space, modality: str, qvec: Vectors, size: int, query: Query
    ) -> Background | Curve:
        """How raw scores of this index become evidence for ``query``: the model's own
        curve for this modality pair when it ships one and the query is of one kind
        (no feedback items mixed in), held to the query's background; else the
        background alone."""
        bg = self.background(space, modality, qvec, size)
        kinds = {p.kind for p in query.parts}
        if len(kinds) == 1 and space.encoder_obj is not None:
            platt = model_calibration(space.encoder_obj, f"{kinds.pop()}-{modality}")
            if platt is not None:
                return Curve(platt, bg)
        return bg

    def background(self, space: Space, modality: str, qvec: Vectors, size: int) -> Background:
        key = (space.id, modality)
        sample = self._backgrounds.get(key)
        if sample is None:
            sample = self._backgrounds[key] = BackgroundSample()
        if sample.stale(size):
            sample.set(
                sample_vectors(self.catalog, space.id, modality, SAMPLE_SIZE, space.dim), size
            )
        return sample.background(qvec, size)

    def _search_target(
        self,
        space: Space,
        modality: str,
        qvec: Vectors,
        query: Query,
        exclude: set[int],
        want: int,
    ) -> list[Match]:
        where, params = build_where(query.filters)
        allowed = None
        if where:
            allowed = self.catalog.vector_ids_where(space.id, modality, where, params)
            if len(allowed) == 0:
                return []
        size = space.vectors.size(modality)
        total = size if allowed is None else len(allowed)
        fetch = min(total, want * 8 + len(exclude))
        source = source_name(space, modality)
        bg = self.calibration(space, modality, qvec, size, query)
        while True:
            scores, ids = space.vectors.search(modality, qvec[None, :], fetch, allowed=allowed)
            matches, items = self._matches(source, scores[0], ids[0], exclude, bg)
            if items >= want or fetch >= total:
                return matches
            fetch = min(total, fetch * 4)

    def _matches(
        self,
        source: str,
        scores: np.ndarray,
        ids: np.ndarray,
        exclude: set[int],
        bg: Background | Curve,
    ) -> tuple[list[Match], int]:
        keep = ids >= 0
        scores, ids = scores[keep], ids[keep]
        evidence = bg.evidence(scores)
        segs = self.catalog.segments_for_vectors(ids.tolist())
        per_item: dict[int, int] = {}
        out: list[Match] = []
        for raw, ev, vid in zip(scores.tolist(), evidence.tolist(), ids.tolist(), strict=True):
            seg = segs.get(vid)
            if seg is None or seg.item_id in exclude:
                continue
            n = per_item.get(seg.item_id, 0)
            if n >= _SEGMENTS_GATHERED:
                continue
            per_item[seg.item_id] = n + 1
            out.append(Match(source, seg.item_id, seg, float(raw), float(ev), int(vid)))
        return out, len(per_item)

    def _lexical(self, text: str, query: Query, exclude: set[int], want: int) -> list[Match]:
        where, params = build_where(query.filters)
        found = lexical_segments(self.catalog, text, want * 5 + len(exclude), where, params)
        if not found:
            return []
        segs = self.catalog.segments([sid for sid, _ in found])
        words = query_words(text)
        idf = term_weights(self.catalog, words)
        total = sum(idf.values()) or 1.0
        common = min(idf.values(), default=1.0)
        out: list[Match] = []
        per_item: dict[int, int] = {}
        for sid, rel in found:
            seg = segs.get(sid)
            if seg is None or seg.item_id in exclude:
                continue
            hit = matched_words(seg.text, words)
            if not hit:
                continue  # a trigram inside another word: no word of the query is there
            n = per_item.get(seg.item_id, 0)
            if n >= _SEGMENTS_GATHERED:
                continue
            per_item[seg.item_id] = n + 1
            weight = [idf.get(w, common) for w in hit]
            coverage = min(1.0, sum(weight) / total)
            rarity = sum(weight) / math.log(10)
            ev = lexical_evidence(coverage, rarity) * proximity(seg.text, sorted(hit))
            out.append(Match("lexical", seg.item_id, seg, float(rel), ev))
        return out

    # -- hits --------------------------------------------------------------------------
    def hits(self, fused: Sequence[Fused], weights: Mapping[str, float], text: str) -> list[Hit]:
        items = self.catalog.items([f.item_id for f in fused])
        words = query_words(text) if text else []
        out = []
        for f in fused:
            it = items.get(f.item_id)
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
            seg_ev = f.segment_evidence(weights)
            segments = [_segment_hit(ms, seg_ev[sid]) for sid, ms in f.segments.items()]
            merged = merge_moments(segments)
            floor = MOMENT_FLOOR * (merged[0].evidence or 0.0) if merged else 0.0
            moments = [
                replace(s, highlights=highlights(s.text, words))
                for i, s in enumerate(merged[:SEGMENTS_PER_HIT])
                if i == 0 or (s.evidence or 0.0) >= floor
            ]
            evidence = sorted(
                (_evidence_hit(m, float(weights.get(s, 1.0)), words) for s, m in f.best.items()),
                key=lambda s: -(s.evidence or 0.0),
            )
            signals: dict[str, float] = {"evidence": f.evidence, "rrf": f.rrf}
            for s, m in f.best.items():
                signals["lexical" if s == "lexical" else _legacy_signal(s)] = m.raw
            out.append(
                Hit(
                    item_id=it.id,
                    path=it.path,
                    modality=_modality(f.strongest(weights)),
                    score=score_of(f.evidence),
                    segments=moments,
                    metadata={k: v for k, v in meta.items() if v is not None},
                    signals=signals,
                    evidence=evidence,
                )
            )
        return out

    def _rerank(self, hits: list[Hit], text: str, query: Query) -> list[Hit]:
        """Re-score the top ``rerank_top`` hits with the query's rerankers.

        A reranker reads a picture or a text of the hit together with the query; its
        probability ``p`` gives evidence ``-log10(1 - p)``, which joins the hit's
        evidence as one more source (``rerank:<name>``, weight ``weights["rerank"]``),
        the best verdict per kind it read. A hit no reranker could read keeps its
        first-stage evidence."""
        from mmsearch.search.rerank.apply import rerank_hits  # torch and decoders, when asked

        top = hits[: query.rerank_top]
        scored = rerank_hits(self.catalog, top, text, list(query.rerank), query.rerank_top)
        verdicts: dict[int, dict[str, SegmentHit]] = {}
        for r in scored:
            ev = evidence_of(r.probability)
            seg = SegmentHit(
                r.segment_id,
                score_of(ev),
                r.kind,
                r.t_start,
                r.t_end,
                r.text,
                source=f"rerank:{r.reranker}",
                raw=r.probability,
                evidence=ev,
            )
            mine = verdicts.setdefault(r.hit_index, {})
            if r.candidate not in mine or ev > (mine[r.candidate].evidence or 0.0):
                mine[r.candidate] = seg
        weight = float(query.weights.get("rerank", 1.0))
        for i, mine in verdicts.items():
            hit = top[i]
            first = hit.signals.get("evidence", 0.0)
            ev = first + weight * sum((s.evidence or 0.0) for s in mine.values())
            hit.signals["first_stage"] = first
            hit.signals["rerank"] = max((s.raw or 0.0) for s in mine.values())
            hit.signals["evidence"] = ev
            hit.score = score_of(ev)
            hit.evidence[:0] = sorted(mine.values(), key=lambda s: -(s.evidence or 0.0))
        return sorted(
            hits, key=lambda h: (-h.signals["evidence"], -h.signals.get("first_stage", 0.0))
        )


def query_text(query: Query) -> str:
    """The positive text of a query (what full-text search and rerankers read)."""
    return " ".join(str(p.value) for p in query.parts if p.kind == "text" and p.weight > 0)


def cut(hits: Sequence[Hit], k: int, min_score: float | None) -> Hits:
    """The first ``k`` hits scoring at least ``min_score``; the best one dropped is kept."""
    out = Hits()
    for h in hits:
        if min_score is not None and h.score < min_score:
            if out.best_below is None or h.score > out.best_below.score:
                out.best_below = h
            continue
        if len(out) < k:
            out.append(h)
    if out:
        out.best_below = None
    return out


def _segment_hit(matches: Sequence[Match], evidence: float) -> SegmentHit:
    """A segment found by ``matches`` (one per source), shown by its strongest source."""
    return _as_hit(max(matches, key=lambda m: m.evidence), evidence)


def _evidence_hit(m: Match, weight: float, words: Sequence[str]) -> SegmentHit:
    """One source's best match of a hit, with the query's words marked."""
    return _as_hit(m, weight * m.evidence, highlights(m.segment.text, words))


def _as_hit(m: Match, evidence: float, marks: tuple[tuple[int, int], ...] = ()) -> SegmentHit:
    seg: SegmentRow = m.segment
    return SegmentHit(
        seg.id,
        score_of(evidence),
        seg.kind,
        seg.t_start,
        seg.t_end,
        seg.text,
        source=m.source,
        raw=m.raw,
        evidence=evidence,
        highlights=marks,
    )


def _modality(m: Match) -> str:
    return "text" if m.source == "lexical" else m.source.split("/")[1]


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
