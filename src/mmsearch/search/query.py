"""Queries made of weighted parts: text, image, a raw vector, or an item ("more like this").

The command-line form follows rclip: terms joined by ``+`` and ``-``, each
optionally weighted with ``N:``; a term naming an existing file is an image::

    "2:golden retriever" + ./pool.jpg - "fruit"

The query vector is the weighted sum of each part's normalised embedding
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

PartKind = Literal["text", "image", "vector", "item"]

_WEIGHT = re.compile(r"^(?P<w>[+-]?\d+(?:\.\d+)?):(?P<rest>.+)$", re.S)


@dataclass(frozen=True)
class QueryPart:
    kind: PartKind
    value: Any
    """str for text; path or PIL image for image; float array for vector; int for item."""
    weight: float = 1.0

    def describe(self) -> str:
        shown = self.value if self.kind in ("text", "image", "item") else "<vector>"
        return f"{self.weight:g}×{self.kind}:{shown}"


@dataclass
class Query:
    parts: list[QueryPart]
    k: int = 10
    filters: dict[str, Any] = field(default_factory=dict)
    min_score: float | None = None

    def __post_init__(self) -> None:
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
        return QueryPart("image", expanded, sign * weight)
    return QueryPart("text", term, sign * weight)


def combine(vectors: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of unit vectors, renormalised; raises if they cancel out."""
    w = np.asarray(weights, dtype=np.float32)[:, None]
    q = (np.asarray(vectors, dtype=np.float32) * w).sum(axis=0)
    norm = float(np.linalg.norm(q))
    if norm < 1e-6:
        raise QueryError("the query parts cancel each other out")
    return (q / norm).astype(np.float32)
