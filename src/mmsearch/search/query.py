"""Queries made of weighted parts: text, image, a raw vector, or an item ("more like this").

The command-line form follows rclip: terms joined by ``+`` and ``-``, each
optionally weighted with ``N:``; a term naming an existing file is an image::

    "2:golden retriever" + ./pool.jpg - "fruit"

A term naming an existing video or audio file queries by that clip. Each space
of a library embeds the parts it can (images only in the image–text space,
audio clips only in the audio–text space); the query vector of a space is the
weighted sum of each part's normalised embedding
(negative weights subtract), normalised again.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from mmsearch.errors import QueryError

PartKind = Literal["text", "image", "video", "audio", "vector", "item"]
SearchMode = Literal["vector", "lexical", "hybrid"]
SEARCH_MODES: tuple[str, ...] = ("vector", "lexical", "hybrid")
Fusion = Literal["calibrated", "rrf"]
FUSIONS: tuple[str, ...] = ("calibrated", "rrf")
SOURCES: tuple[str, ...] = (
    "main/image",
    "main/text",
    "main/video",
    "text/text",
    "audio/audio",
    "video/video",
    "lexical",
    "rerank",
)
"""Sources of evidence a weight can name: ``space/vector modality`` of each index
(the image–text space ``main``, the sentence-embedding space ``text``, CLAP ``audio``,
X-CLIP ``video``) and the full-text index ``lexical``."""
RERANK_TOP = 50
"""Candidates a reranker re-scores by default."""

_WEIGHT = re.compile(r"^(?P<w>[+-]?\d+(?:\.\d+)?):(?P<rest>.+)$", re.S)


@dataclass(frozen=True)
class QueryPart:
    kind: PartKind
    value: Any
    """str for text; path or PIL image for image; path for video and audio (or a float32
    mono array at the audio encoder's rate); float array for vector; int for item."""
    weight: float = 1.0
    optional: bool = False
    """Feedback (a liked or disliked item): used in the spaces where the item has vectors,
    left out elsewhere instead of keeping that space from being searched."""

    def describe(self) -> str:
        shown = self.value if isinstance(self.value, (str, int, os.PathLike)) else "<array>"
        return f"{self.weight:g}×{self.kind}:{shown}"


@dataclass
class Query:
    parts: list[QueryPart]
    k: int = 10
    filters: dict[str, Any] = field(default_factory=dict)
    min_score: float | None = None
    mode: SearchMode = "hybrid"
    """``hybrid`` (all the evidence: every index that can embed the query, and full text
    over segment text), ``vector`` (embeddings only) or ``lexical`` (full text only)."""
    fusion: Fusion = "calibrated"
    """``calibrated`` (each source's scores put on one scale, evidence added) or ``rrf``
    (reciprocal rank, for comparison)."""
    weights: dict[str, float] = field(default_factory=dict)
    """Weight per source (``main/image``, ``text/text``, ``audio/audio``, ``lexical``, ...);
    unnamed sources weigh 1."""
    rerank: Sequence[Any] = ()
    """Rerankers (``search.rerank.base.Reranker``) applied to the top ``rerank_top``."""
    rerank_top: int = RERANK_TOP
    dedupe: bool = False
    """Fold near-duplicate hits (same picture resized, same frame in two videos) into one."""
    exclude: frozenset[int] = frozenset()
    """Item ids never returned (already seen)."""

    def __post_init__(self) -> None:
        if self.mode not in SEARCH_MODES:
            raise QueryError(f"unknown search mode {self.mode!r}; use {', '.join(SEARCH_MODES)}")
        if self.fusion not in FUSIONS:
            raise QueryError(f"unknown fusion {self.fusion!r}; use {', '.join(FUSIONS)}")
        if self.rerank_top < 1:
            raise QueryError("rerank_top must be at least 1")
        for name, w in self.weights.items():
            if name not in SOURCES:
                raise QueryError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w < 1e6:
                raise QueryError(f"weight of {name!r} must be a number >= 0")
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise QueryError("min_score is on the calibrated scale: a number from 0 to 1")
        if not self.parts:
            raise QueryError("empty query: give text, an image, a vector or an item id")
        if not any(p.weight > 0 for p in self.parts):
            raise QueryError("a query needs at least one part with a positive weight")
        if self.k < 1:
            raise QueryError("k must be at least 1")


def parse_terms(tokens: Sequence[str]) -> list[QueryPart]:
    """Parse argv-style tokens: ``term (('+'|'-') term)*``; see the module docstring."""
    parts: list[QueryPart] = []
    sign = 1.0
    expect_term = True
    for tok in tokens:
        if tok in ("+", "-"):
            if expect_term and parts:
                raise QueryError(f"two operators in a row near {tok!r}")
            sign = -1.0 if tok == "-" else 1.0
            expect_term = True
            continue
        if not expect_term:
            # Two terms side by side: treat them as one text, as a shell user means.
            last = parts.pop()
            if last.kind != "text":
                raise QueryError(f"missing + or - before {tok!r}")
            parts.append(QueryPart("text", f"{last.value} {tok}", last.weight))
            continue
        parts.append(parse_term(tok, sign))
        sign, expect_term = 1.0, False
    if expect_term and tokens:
        raise QueryError("query ends with an operator")
    return parts


def parse_query_string(text: str) -> list[QueryPart]:
    """Parse one string such as ``'"2:golden retriever" + ./pool.jpg - fruit'``."""
    if not re.search(r"(^|\s)[+-](\s|$)", text):
        return [parse_term(text, 1.0)]
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise QueryError(f"cannot parse query: {exc}") from exc
    return parse_terms(tokens)


def parse_term(term: str, sign: float = 1.0) -> QueryPart:
    weight = 1.0
    m = _WEIGHT.match(term)
    if m:
        weight = float(m["w"])
        term = m["rest"]
    term = term.strip()
    if not term:
        raise QueryError("empty query term")
    expanded = os.path.expanduser(term)
    if os.path.isfile(expanded):
        return QueryPart(file_part_kind(expanded), expanded, sign * weight)
    return QueryPart("text", term, sign * weight)


def file_part_kind(path: str) -> PartKind:
    """How a query file is used: as an image, a video clip or an audio clip (by its bytes)."""
    from mmsearch.media.probe import HEAD_BYTES, sniff_modality

    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as exc:
        raise QueryError(f"cannot read query file {path}: {exc.strerror or exc}") from exc
    kind = sniff_modality(path, head)
    if kind in ("video", "audio"):
        return kind  # type: ignore[return-value]
    return "image"


def combine(vectors: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of unit vectors, renormalised; raises if they cancel out."""
    w = np.asarray(weights, dtype=np.float32)[:, None]
    q = (np.asarray(vectors, dtype=np.float32) * w).sum(axis=0)
    norm = float(np.linalg.norm(q))
    if norm < 1e-6:
        raise QueryError("the query parts cancel each other out")
    return (q / norm).astype(np.float32)
