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

_WEIGHT = re.compile(r"^(?P<w>[+-]?\d+(?:\.\d+)?):(?P<rest>.+)$", re.S)


@dataclass(frozen=True)
class QueryPart:
    kind: PartKind
    value: Any
    """str for text; path or PIL image for image; path for video and audio (or a float32
    mono array at the audio encoder's rate); float array for vector; int for item."""
    weight: float = 1.0

    def describe(self) -> str:
        shown = self.value if isinstance(self.value, (str, int, os.PathLike)) else "<array>"
        return f"{self.weight:g}×{self.kind}:{shown}"


@dataclass
class Query:
    parts: list[QueryPart]
    k: int = 10
    filters: dict[str, Any] = field(default_factory=dict)
    min_score: float | None = None
    mode: SearchMode = "vector"
    """``vector`` (embeddings), ``lexical`` (full-text over segment text) or ``hybrid``
    (both, fused by reciprocal rank)."""

    def __post_init__(self) -> None:
        if self.mode not in SEARCH_MODES:
            raise QueryError(f"unknown search mode {self.mode!r}; use {', '.join(SEARCH_MODES)}")
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
