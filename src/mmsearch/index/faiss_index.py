"""``FaissIndex``: the FAISS implementation of ``VectorIndex`` (flat, HNSW, IVF-PQ; inner product).

Id mapping. FAISS stores vectors at sequential *internal* positions; this class
keeps ``_labels`` (internal position -> caller id, ``-1`` once removed) and a
sorted copy of the live ids for id -> position look-ups. No ``IndexIDMap`` is
used, because HNSW cannot remove vectors: a removed or replaced id must be
hidden per *position*, not per id, or re-adding the id would hide the new copy.

Removal. ``flat`` removes and compacts at once; ``ivfpq`` removes the codes from
the inverted lists (positions are stored in the lists, so nothing shifts);
``hnsw`` keeps the vector in the graph as a tombstone, hidden from every search
by a cached ``IDSelectorBitmap`` over live positions. ``tombstone_ratio`` tells
the caller when a ``compact()`` (or a rebuild) pays off.

Filtered search. ``allowed`` ids are mapped to live positions and applied inside
FAISS through ``SearchParameters.sel``. Small allowed sets are scanned exactly
(a gather of their vectors and one matmul), because a graph or IVF walk would
meet too few of them. Larger sets widen the search (``efSearch`` times
``sqrt(1/selectivity)``, ``nprobe`` divided by it), and any query still short of
``min(k, |allowed|)`` hits is answered by an exact scan of the allowed set.

Files. ``save(path)`` is atomic: ``index.files`` writes new data files and
commits by replacing a small JSON manifest at ``path`` (see there).

Memory mapping (``load(path, mmap=True)``) uses ``IO_FLAG_MMAP_IFC``, which maps
in place the flat vectors of ``flat``, the vector storage of ``hnsw`` (its
graph links are still read into memory) and the inverted lists of ``ivfpq``.
FAISS cannot mutate a mapped index (it aborts the process), so the first
``add``/``remove``/``compact`` on a mapped index copies it into memory first.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mmsearch._lazy import require
from mmsearch.errors import LibraryError
from mmsearch.index import files
from mmsearch.index.base import IndexSpec
from mmsearch.types import Ids, Vectors

log = logging.getLogger(__name__)

EXACT_SCAN_MIN = 1024
"""Allowed sets up to this size are always scanned exactly."""
EXACT_SCAN_MAX = 32768
"""Allowed sets above this size are never scanned exactly up front."""
MAX_EF_SEARCH = 4096
HNSW_VS_SCAN_COST = 14.0
"""Cost of one unit of efSearch over one exactly scanned vector (measured; see _exact_scan_limit)."""
_EMPTY_IDS: Ids = np.empty(0, np.int64)


@cache
def _faiss() -> Any:
    return require("faiss")


def factory_string(spec: IndexSpec) -> str:
    """The ``faiss.index_factory`` description of ``spec`` (the same string the benchmark builds raw)."""
    p = spec.params
    if spec.kind == "flat":
        return "Flat"
    if spec.kind == "hnsw":
        return f"HNSW{p['M']},Flat"
    return f"IVF{p['nlist']},PQ{p['m']}x{p['nbits']}"


def _as_ids(ids: Any) -> Ids:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


@dataclass
class _Filter:
    """An ``allowed`` id set mapped to live positions, with its FAISS selector built on demand."""

    allowed: Ids
    positions: Ids
    _sel: tuple[Any, Any] | None = None  # (selector, the buffer it points into)

    def selector(self, index: FaissIndex) -> Any:
        if self._sel is None:
            self._sel = index._selector(self.positions)
        return self._sel[0]


class FaissIndex:
    """A FAISS index keyed by caller ids. See the module docstring for the design."""

    def __init__(self, spec: IndexSpec, dim: int) -> None:
        spec.validate_dim(dim)
        faiss = _faiss()
        self.spec = spec
        self.dim = dim
        self._index: Any = faiss.index_factory(
            dim, factory_string(spec), faiss.METRIC_INNER_PRODUCT
        )
        if spec.kind == "hnsw":
            self._index.hnsw.efConstruction = spec.params["ef_construction"]
        elif spec.kind == "ivfpq":
            # index_factory turns on polysemous training, which only serves Hamming
            # filtering (unused here) and multiplies training time several-fold.
            self._index.do_polysemous_training = False
        self._labels: Ids = np.empty(0, np.int64)  # capacity-managed; valid up to _ntotal
        self._ntotal = 0
        self._sorted_ids: Ids = _EMPTY_IDS  # live caller ids, sorted
        self._sorted_pos: Ids = _EMPTY_IDS  # their internal positions
        self._tombstones = 0  # removed positions whose vector is still stored (hnsw)
        self._mmapped = False
        self.token: str | None = None
        """The mark of whoever saved the file this index was loaded from (see ``save``)."""
        self._live_selector: tuple[Any, NDArray[np.uint8]] | None = None
        self._params: Any = None  # cached unfiltered SearchParameters
        self._filter_cache: _Filter | None = None

    # -- construction ---------------------------------------------------

    @classmethod
    def build(
        cls, spec: IndexSpec, ids: Ids, vectors: Vectors, *, train_size: int | None = None
    ) -> FaissIndex:
        """A new index of ``spec`` over ``vectors`` (training IVF-PQ on a sample of them)."""
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if vecs.ndim != 2:
            raise ValueError(f"vectors must be 2-D, got shape {vecs.shape}")
        index = cls(spec, vecs.shape[1])
        if spec.kind == "ivfpq" and len(vecs):
            index.train(vecs, sample=train_size)
        index.add(ids, vecs)
        return index

    def min_train_size(self) -> int:
        """Fewest vectors IVF-PQ training accepts (one per list and per PQ centroid)."""
        if self.spec.kind != "ivfpq":
            return 0
        return max(self.spec.params["nlist"], 1 << self.spec.params["nbits"])

    def train(self, vectors: Vectors, *, sample: int | None = None) -> None:
        """Train IVF-PQ centroids and codebooks (no-op for other kinds)."""
        if self.spec.kind != "ivfpq" or self._index.is_trained:
            return
        vecs = self._check_vectors(vectors)
        if len(vecs) < self.min_train_size():
            raise ValueError(
                f"{self.spec} needs at least {self.min_train_size()} vectors to train, "
                f"got {len(vecs)}; use a flat index for small collections"
            )
        p = self.spec.params
        want = sample or max(64 * p["nlist"], 64 << p["nbits"])
        if len(vecs) > want:
            rows = np.sort(np.random.default_rng(0).choice(len(vecs), size=want, replace=False))
            vecs = vecs[rows]
        self._index.train(vecs)

    # -- size and ids ---------------------------------------------------

    def __len__(self) -> int:
        return int(self._sorted_ids.size)

    def ids(self) -> Ids:
        labels = self._labels[: self._ntotal]
        return labels[labels >= 0].copy()

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, int | np.integer):
            return False
        pos = int(np.searchsorted(self._sorted_ids, item))
        return pos < self._sorted_ids.size and int(self._sorted_ids[pos]) == int(item)

    @property
    def tombstone_ratio(self) -> float:
        """Share of stored vectors that are removed but still occupy the index (HNSW only)."""
        stored = int(self._index.ntotal)
        return self._tombstones / stored if stored else 0.0

    @property
    def mmapped(self) -> bool:
        return self._mmapped

    @property
    def faiss_index(self) -> Any:
        """The underlying FAISS index (read-only use; positions are internal, not caller ids)."""
        return self._index

    def memory_bytes(self) -> int:
        """Approximate resident size: vectors/codes, graph links, lists and the id tables."""
        n = int(self._index.ntotal)
        p = self.spec.params
        own = 8 * (self._labels.size + self._sorted_ids.size + self._sorted_pos.size)
        if self.spec.kind == "flat":
            return n * self.dim * 4 + own
        if self.spec.kind == "hnsw":
            links = int(self._index.hnsw.neighbors.size()) * 4
            return n * self.dim * 4 + links + n * 12 + own
        return n * (p["m"] * p["nbits"] // 8 + 8) + p["nlist"] * self.dim * 4 + own

    # -- mutation ---------------------------------------------------------

    def add(self, ids: Ids, vectors: Vectors) -> None:
        """Add ``vectors`` under ``ids`` (non-negative); an id already present is replaced."""
        ids = _as_ids(ids)
        vecs = self._check_vectors(vectors)
        if ids.size != len(vecs):
            raise ValueError(f"{ids.size} ids for {len(vecs)} vectors")
        if not ids.size:
            return
        if int(ids.min()) < 0:
            raise ValueError("ids must be non-negative (-1 marks an empty result slot)")
        ids, vecs = self._last_of_duplicates(ids, vecs)
        self._ensure_writable()
        if self.spec.kind == "ivfpq" and not self._index.is_trained:
            self.train(vecs)
        self._remove_positions(self._positions_of(ids))
        positions = np.arange(self._ntotal, self._ntotal + ids.size, dtype=np.int64)
        if self.spec.kind == "ivfpq":
            # IVF numbers new vectors from its live count, which removals lowered.
            self._index.add_with_ids(vecs, positions)
        else:
            self._index.add(vecs)
        self._append_labels(ids)
        order = np.argsort(ids, kind="stable")
        new_ids, new_pos = ids[order], positions[order]
        at = np.searchsorted(self._sorted_ids, new_ids)
        self._sorted_ids = np.insert(self._sorted_ids, at, new_ids)
        self._sorted_pos = np.insert(self._sorted_pos, at, new_pos)
        self._invalidate()

    def remove(self, ids: Ids) -> int:
        """Remove ``ids``; returns how many were present. Unknown ids are ignored."""
        ids = np.unique(_as_ids(ids))
        positions = self._positions_of(ids)
        if positions.size:
            self._ensure_writable()
            self._remove_positions(positions)
            self._invalidate()
        return int(positions.size)

    def compact(self) -> None:
        """Drop HNSW tombstones by rebuilding the graph from the stored live vectors."""
        if self.spec.kind != "hnsw" or not self._tombstones:
            return
        self._ensure_writable()
        live = np.flatnonzero(self._labels[: self._ntotal] >= 0)
        ids, vecs = self._labels[live], self._stored_vectors()[live]
        fresh = FaissIndex.build(self.spec, ids, vecs)
        self.__dict__.update(fresh.__dict__)

    def tune(self, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Change the default search effort (kept in ``spec`` and so in saved files)."""
        params = dict(self.spec.params)
        if ef_search is not None and self.spec.kind == "hnsw":
            params["ef_search"] = int(ef_search)
        if nprobe is not None and self.spec.kind == "ivfpq":
            params["nprobe"] = int(nprobe)
        self.spec = IndexSpec(self.spec.kind, params)
        self._params = None

    # -- search -------------------------------------------------------------

    def search(
        self, queries: Vectors, k: int, *, allowed: Ids | None = None
    ) -> tuple[NDArray[np.float32], Ids]:
        """Top-``k`` scores and ids per query; see ``VectorIndex.search``."""
        q = self._check_vectors(queries)
        if k <= 0 or not len(q):
            return self._empty(len(q), max(k, 0))
        if allowed is None:
            if not len(self):
                return self._empty(len(q), k)
            scores, pos = self._index.search(q, k, params=self._default_params())
        else:
            scores, pos = self._filtered_search(q, k, _as_ids(allowed))
        return self._finish(scores, pos)

    def _filtered_search(self, q: Vectors, k: int, allowed: Ids) -> tuple[NDArray[np.float32], Ids]:
        filt = self._filter_for(allowed)
        cand = filt.positions
        if not cand.size:
            return self._empty(len(q), k)
        if cand.size <= self._exact_scan_limit(k):
            return self._exact_scan(q, k, cand)
        params = self._make_params(filt.selector(self), widen=self._ntotal / cand.size)
        scores, pos = self._index.search(q, k, params=params)
        short = (pos >= 0).sum(axis=1) < min(k, cand.size)
        if short.any():
            scores[short], pos[short] = self._exact_scan(q[short], k, cand)
        return scores, pos

    def _filter_for(self, allowed: Ids) -> _Filter:
        """The live positions of ``allowed`` (and their selector), reusing the last filter's.

        Callers usually search many queries with one filter (a catalog query's
        result); comparing with the last filter costs far less than mapping it again.
        """
        last = self._filter_cache
        if (
            last is not None
            and last.allowed.size == allowed.size
            and np.array_equal(last.allowed, allowed)
        ):
            return last
        positions = np.sort(self._positions_of(np.unique(allowed)))
        self._filter_cache = _Filter(allowed.copy(), positions)
        return self._filter_cache

    def _exact_scan_limit(self, k: int) -> int:
        """Allowed-set size below which an exact scan beats a widened ANN search.

        Measured on one core (benchmarks/bench_search.py): an exact scan costs
        about ``c * m`` for ``m`` allowed vectors, a filtered HNSW search with
        ``efSearch = ef * sqrt(n / m)`` about ``14 * c * ef * sqrt(n / m)``.
        They cross at ``m = (14 * ef * sqrt(n)) ** (2/3)``: ~4k allowed ids at
        100k vectors (ef 64), ~15k at 1M (ef 128). IVF-PQ never scans exactly
        up front: its fallback is itself an IVF search over every list.
        """
        if self.spec.kind == "flat":
            return EXACT_SCAN_MAX
        if self.spec.kind == "ivfpq":
            return EXACT_SCAN_MIN
        ef = max(k, self.spec.params["ef_search"])
        cross = int((HNSW_VS_SCAN_COST * ef * math.sqrt(self._ntotal)) ** (2 / 3))
        return min(EXACT_SCAN_MAX, max(EXACT_SCAN_MIN, cross))

    def _exact_scan(self, q: Vectors, k: int, cand: Ids) -> tuple[NDArray[np.float32], Ids]:
        """Exact top-k among the positions ``cand`` (IVF-PQ: exhaustive over their codes)."""
        if self.spec.kind == "ivfpq":
            sel, _buffer = self._selector(cand)
            params = self._make_params(sel, widen=float(self.spec.params["nlist"]))
            return self._index.search(q, k, params=params)  # type: ignore[no-any-return]
        vecs = self._stored_vectors()[cand]
        sims = q @ vecs.T
        kk = min(k, cand.size)
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < cand.size else None
        if top is None:
            top = np.broadcast_to(np.arange(cand.size), sims.shape)
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        scores = np.full((len(q), k), -np.inf, np.float32)
        pos = np.full((len(q), k), -1, np.int64)
        scores[:, :kk] = np.take_along_axis(top_scores, order, axis=1)
        pos[:, :kk] = cand[np.take_along_axis(top, order, axis=1)]
        return scores, pos

    def _finish(self, scores: NDArray[np.float32], pos: Ids) -> tuple[NDArray[np.float32], Ids]:
        missing = pos < 0
        ids = self._labels[np.where(missing, 0, pos)] if self._ntotal else pos
        if missing.any():
            ids = np.where(missing, -1, ids)
            scores[missing] = -np.inf
        return scores, ids

    @staticmethod
    def _empty(nq: int, k: int) -> tuple[NDArray[np.float32], Ids]:
        return np.full((nq, k), -np.inf, np.float32), np.full((nq, k), -1, np.int64)

    # -- search parameters and selectors ---------------------------------------

    def _default_params(self) -> Any:
        if self._params is None:
            self._params = self._make_params(self._live_sel(), widen=1.0)
        return self._params

    def _live_sel(self) -> Any:
        """Selector hiding HNSW tombstones (None when there are none), cached until a mutation."""
        if not self._tombstones:
            return None
        if self._live_selector is None:
            bits = np.packbits(self._labels[: self._ntotal] >= 0, bitorder="little")
            sel = _faiss().IDSelectorBitmap(self._ntotal, _faiss().swig_ptr(bits))
            self._live_selector = (sel, bits)
        return self._live_selector[0]

    def _selector(self, cand: Ids) -> tuple[Any, Any]:
        """A selector over live positions ``cand`` and the buffer it points into (keep it alive)."""
        faiss = _faiss()
        # A bitmap test is one load; IDSelectorBatch is a Bloom filter plus a hash
        # lookup, measured slower inside 1M-vector HNSW searches. A bitmap costs
        # n/8 bytes to build, so only tiny sets (the IVF exact path) use a batch.
        if cand.size * 256 < self._ntotal:
            return faiss.IDSelectorBatch(cand.size, faiss.swig_ptr(cand)), cand
        mask = np.zeros(self._ntotal, bool)
        mask[cand] = True
        bits = np.packbits(mask, bitorder="little")
        return faiss.IDSelectorBitmap(self._ntotal, faiss.swig_ptr(bits)), bits

    def _make_params(self, sel: Any, widen: float) -> Any:
        faiss = _faiss()
        p = self.spec.params
        if self.spec.kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            # Widening by sqrt(1/selectivity) keeps filtered recall within ~1% of
            # unfiltered recall down to 1% selectivity (measured), at a fraction of
            # the cost of widening linearly.
            ef = math.ceil(p["ef_search"] * math.sqrt(widen))
            params.efSearch = int(min(MAX_EF_SEARCH, max(p["ef_search"], ef)))
        elif self.spec.kind == "ivfpq":
            params = faiss.SearchParametersIVF()
            params.nprobe = int(min(p["nlist"], math.ceil(p["nprobe"] * widen)))
        else:
            params = faiss.SearchParameters()
        if sel is not None:
            params.sel = sel
        return params

    # -- internals ----------------------------------------------------------------

    def _check_vectors(self, vectors: Vectors) -> Vectors:
        arr = np.asarray(vectors, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {arr.shape}")
        return np.ascontiguousarray(arr)

    @staticmethod
    def _last_of_duplicates(ids: Ids, vecs: Vectors) -> tuple[Ids, Vectors]:
        uniq, first_from_end = np.unique(ids[::-1], return_index=True)
        if uniq.size == ids.size:
            return ids, vecs
        keep = np.sort(ids.size - 1 - first_from_end)
        return ids[keep], vecs[keep]

    def _positions_of(self, ids: Ids) -> Ids:
        """Internal positions of the live ones among ``ids`` (sorted unique input or not)."""
        if not ids.size or not self._sorted_ids.size:
            return _EMPTY_IDS
        at = np.searchsorted(self._sorted_ids, ids)
        at[at == self._sorted_ids.size] = 0
        hit = self._sorted_ids[at] == ids
        return self._sorted_pos[at[hit]]

    def _remove_positions(self, positions: Ids) -> None:
        if not positions.size:
            return
        faiss = _faiss()
        drop = np.zeros(self._sorted_ids.size, bool)
        drop[np.searchsorted(self._sorted_ids, self._labels[positions])] = True
        self._sorted_ids = self._sorted_ids[~drop]
        self._sorted_pos = self._sorted_pos[~drop]
        if self.spec.kind == "hnsw":
            self._labels[positions] = -1
            self._tombstones += int(positions.size)
            return
        removed = self._index.remove_ids(
            faiss.IDSelectorBatch(positions.size, faiss.swig_ptr(positions))
        )
        if removed != positions.size:
            raise LibraryError(f"FAISS removed {removed} of {positions.size} vectors")
        if self.spec.kind == "ivfpq":
            self._labels[positions] = -1  # positions live in the lists; nothing shifts
            return
        keep = np.ones(self._ntotal, bool)
        keep[positions] = False
        new_pos = np.cumsum(keep) - 1
        self._labels = self._labels[: self._ntotal][keep].copy()
        self._ntotal = int(self._labels.size)
        self._sorted_pos = new_pos[self._sorted_pos]

    def _append_labels(self, ids: Ids) -> None:
        need = self._ntotal + ids.size
        if need > self._labels.size:
            grown = np.empty(max(need, 2 * self._labels.size, 1024), np.int64)
            grown[: self._ntotal] = self._labels[: self._ntotal]
            self._labels = grown
        self._labels[self._ntotal : need] = ids
        self._ntotal = need

    def _stored_vectors(self) -> Vectors:
        """Zero-copy (n, dim) view of the stored full vectors (flat and hnsw only)."""
        faiss = _faiss()
        flat = (
            self._index if self.spec.kind == "flat" else faiss.downcast_index(self._index.storage)
        )
        n = int(flat.ntotal)
        if not n:
            return np.empty((0, self.dim), np.float32)
        return faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)

    def _invalidate(self) -> None:
        self._params = None
        self._live_selector = None
        self._filter_cache = None

    def _ensure_writable(self) -> None:
        """FAISS aborts on mutating a memory-mapped index: copy it into memory first."""
        if self._mmapped:
            faiss = _faiss()
            self._index = faiss.deserialize_index(faiss.serialize_index(self._index))
            self._mmapped = False
            self._invalidate()

    # -- persistence --------------------------------------------------------------------

    def save(self, path: Path, *, token: str | None = None) -> None:
        """Write atomically: a crash leaves the previous save loadable (see ``index.files``).

        ``token`` is kept in the manifest (a caller's mark: which catalog wrote the file)
        and read back as :attr:`token`.
        """
        meta = {
            "spec": self.spec.to_dict(),
            "dim": self.dim,
            "count": len(self),
            "tombstones": self._tombstones,
            "token": token,
        }
        files.write(Path(path), self._index, self._labels[: self._ntotal], meta)

    @classmethod
    def load(cls, path: Path, *, mmap: bool = False) -> FaissIndex:
        """Open a saved index; ``mmap=True`` maps vectors/codes from the file (see module docstring)."""
        path = Path(path)
        saved = files.read(path, mmap=mmap)
        try:
            spec = IndexSpec.from_dict(saved.manifest["spec"])
            self = cls(spec, int(saved.manifest["dim"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise LibraryError(f"index manifest {path} is invalid: {exc}") from exc
        if saved.index.d != self.dim:
            raise LibraryError(
                f"index {path} has dimension {saved.index.d}, manifest says {self.dim}"
            )
        labels = saved.labels
        self._index, self._mmapped = saved.index, saved.mmapped
        self._labels, self._ntotal = labels.copy(), int(labels.size)
        live = np.flatnonzero(labels >= 0)
        order = np.argsort(labels[live], kind="stable")
        self._sorted_ids = labels[live][order]
        self._sorted_pos = live[order].astype(np.int64)
        self._tombstones = int(saved.manifest.get("tombstones", 0))
        self.token = saved.manifest.get("token")
        if self._sorted_ids.size != int(saved.manifest.get("count", -1)):
            raise LibraryError(
                f"index {path} holds {self._sorted_ids.size} ids, not as its manifest says"
            )
        return self

    def __repr__(self) -> str:
        mm = ", mmapped" if self._mmapped else ""
        return f"FaissIndex({self.spec}, dim={self.dim}, n={len(self)}{mm})"
