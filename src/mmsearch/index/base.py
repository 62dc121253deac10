"""The vector-index contract: an ``IndexSpec`` (what to build) and the ``VectorIndex`` protocol.

Vectors are L2-normalised float32 rows, so inner product is cosine similarity.
Ids are int64 values chosen by the caller (catalog row ids); an index never
invents ids. Missing result slots carry id ``-1`` and score ``-inf``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from mmsearch.types import Ids, Vectors

INDEX_KINDS: tuple[str, ...] = ("flat", "hnsw", "ivfpq")

_REQUIRED_PARAMS: dict[str, tuple[str, ...]] = {
    "flat": (),
    "hnsw": ("M", "ef_construction", "ef_search"),
    "ivfpq": ("nlist", "m", "nbits", "nprobe"),
}


@dataclass(frozen=True)
class IndexSpec:
    """What index to build: its kind and integer parameters.

    ``flat``: exact inner-product scan, no parameters.
    ``hnsw``: HNSW graph over full vectors; ``M`` links per node,
    ``ef_construction`` build beam, ``ef_search`` default search beam.
    ``ivfpq``: inverted file with ``nlist`` lists and product-quantised codes of
    ``m`` sub-vectors of ``nbits`` bits; ``nprobe`` lists visited per query.
    """

    kind: str
    params: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params))  # not shared with the caller
        if self.kind not in _REQUIRED_PARAMS:
            raise ValueError(f"unknown index kind {self.kind!r}; expected one of {INDEX_KINDS}")
        missing = [p for p in _REQUIRED_PARAMS[self.kind] if p not in self.params]
        if missing:
            raise ValueError(f"{self.kind} index spec is missing parameters {missing}")
        bad = [k for k, v in self.params.items() if not isinstance(v, int) or v <= 0]
        if bad:
            raise ValueError(f"index parameters must be positive integers: {bad}")

    def validate_dim(self, dim: int) -> None:
        """Raise ``ValueError`` if this spec cannot index ``dim``-dimensional vectors."""
        if dim <= 0:
            raise ValueError(f"dimension must be positive, got {dim}")
        if self.kind == "ivfpq" and dim % self.params["m"]:
            raise ValueError(f"ivfpq m={self.params['m']} does not divide dim={dim}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(sorted(self.params.items()))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSpec:
        return cls(
            kind=str(data["kind"]), params={str(k): int(v) for k, v in data["params"].items()}
        )

    def __str__(self) -> str:
        return f"{self.kind}({json.dumps(self.to_dict()['params'])[1:-1]})"

    def __hash__(self) -> int:  # params is a dict; hash its sorted items
        return hash((self.kind, tuple(sorted(self.params.items()))))


@runtime_checkable
class VectorIndex(Protocol):
    """An approximate (or exact) inner-product index keyed by caller-chosen int64 ids."""

    spec: IndexSpec
    dim: int

    def __len__(self) -> int:
        """Number of live vectors (removed ones excluded)."""
        ...

    def add(self, ids: Ids, vectors: Vectors) -> None:
        """Add vectors under ``ids``; an id already present is replaced."""
        ...

    def remove(self, ids: Ids) -> int:
        """Remove ``ids``; return how many were present. Unknown ids are ignored."""
        ...

    def search(
        self, queries: Vectors, k: int, *, allowed: Ids | None = None
    ) -> tuple[NDArray[np.float32], Ids]:
        """Top-``k`` inner-product scores and ids per query, shape ``(nq, k)``.

        ``allowed`` restricts results to those ids inside the search; at least
        ``min(k, |allowed ∩ index|)`` hits come back. Empty slots: id -1, score -inf.
        """
        ...

    def ids(self) -> Ids:
        """The live ids, in storage order."""
        ...

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves either the old or the new index, never a torn one."""
        ...
