"""Choose an index kind and its parameters from collection size, dimension and memory budget.

Reasoning, measured with ``benchmarks/bench_search.py`` on one core of a
2-core AMD EPYC (numbers in docs/BENCHMARKS.md, "Search"):

* Below ``exact_threshold`` vectors (50k by default) an exact ``flat`` scan
  costs a few milliseconds per query (a NumPy scan of 100k x 384 takes 13 ms,
  so 50k about 6 ms), needs no training and no parameters, and is always
  exactly right.
* Above it, ``hnsw`` (HNSW over full float32 vectors) gives the best
  recall/latency trade-off. It costs ``n * (4 * dim + 2 * M * 4 * ~1.1)``
  bytes: the vectors plus ~2M int32 links per node on the bottom layer and
  ~10% for the upper layers. ``M=32`` with ``ef_construction=200``; the
  default ``ef_search`` (``hnsw_ef_search``) comes from the measured curves:
  64 gives recall@10 0.992 at 100k real sentence embeddings (0.37 ms), 128
  gives 0.987 at 1M vectors fitted to be as hard as the real ones (1.3 ms);
  recall@10 >= 0.95 needs efSearch 48 at 1M.
* When that does not fit ``memory_budget_bytes``, ``ivfpq``: a coarse inverted
  file with ``nlist ~ 4 * sqrt(n)`` lists (a power of two, at least 39
  training points per list) and product-quantised codes of ``m`` bytes per
  vector, ``m`` the largest divisor of ``dim`` with at least 4 dimensions per
  sub-quantizer that fits the budget. Recall is lower (PQ scores are
  approximate): it is the low-memory fallback, not the default.
"""

from __future__ import annotations

import logging
import math

from mmsearch.index.base import IndexSpec

log = logging.getLogger(__name__)

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
ID_BYTES = 24
"""Per-vector bookkeeping of ``FaissIndex`` (position->id table and sorted id map)."""
PQ_NBITS = 8
MIN_DIMS_PER_SUBQUANTIZER = 4


def hnsw_ef_search(n: int) -> int:
    """Default HNSW beam width for ``n`` vectors (from the benchmark's recall/latency curve)."""
    if n <= 200_000:
        return 64
    if n <= 2_000_000:
        return 128
    return 256


def hnsw_bytes(n: int, dim: int, m: int = HNSW_M) -> int:
    """Estimated memory of an HNSW-flat index of ``n`` vectors."""
    return int(n * (dim * 4 + m * 2 * 4 * 1.1 + ID_BYTES))


def ivfpq_bytes(n: int, dim: int, nlist: int, m: int, nbits: int = PQ_NBITS) -> int:
    """Estimated memory of an IVF-PQ index: codes + stored positions + centroids + codebooks."""
    codes = n * (math.ceil(m * nbits / 8) + 8 + ID_BYTES)
    return int(codes + nlist * dim * 4 + (1 << nbits) * dim * 4)


def ivf_nlist(n: int) -> int:
    """``4 * sqrt(n)`` rounded to a power of two, kept within [16, n / 39]."""
    target = 4 * math.sqrt(max(n, 1))
    nlist = 1 << max(4, round(math.log2(target)))
    while nlist > 16 and nlist * 39 > n:
        nlist //= 2
    return nlist


def pq_m(n: int, dim: int, nlist: int, budget: int | None) -> int:
    """Largest divisor ``m`` of ``dim`` (>= 4 dims each) whose IVF-PQ index fits ``budget``."""
    candidates = [m for m in range(1, dim + 1) if dim % m == 0]
    good = [m for m in candidates if dim // m >= MIN_DIMS_PER_SUBQUANTIZER] or [candidates[0]]
    for m in sorted(good, reverse=True):
        if budget is None or ivfpq_bytes(n, dim, nlist, m) <= budget:
            return m
    smallest = min(good)
    log.warning(
        "no IVF-PQ setting for %d x %d vectors fits %d bytes; using the smallest (m=%d, ~%d bytes)",
        n,
        dim,
        budget,
        smallest,
        ivfpq_bytes(n, dim, nlist, smallest),
    )
    return smallest


def choose_spec(
    n: int,
    dim: int,
    *,
    memory_budget_bytes: int | None = None,
    exact_threshold: int = 50_000,
) -> IndexSpec:
    """The index to build for ``n`` vectors of ``dim`` dimensions (see the module docstring)."""
    if n < 0 or dim <= 0:
        raise ValueError(f"need n >= 0 and dim > 0, got n={n}, dim={dim}")
    if n < exact_threshold:
        return IndexSpec("flat", {})
    if memory_budget_bytes is None or hnsw_bytes(n, dim) <= memory_budget_bytes:
        return IndexSpec(
            "hnsw",
            {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": hnsw_ef_search(n)},
        )
    nlist = ivf_nlist(n)
    m = pq_m(n, dim, nlist, memory_budget_bytes)
    nprobe = max(8, min(nlist, nlist // 64))
    return IndexSpec("ivfpq", {"nlist": nlist, "m": m, "nbits": PQ_NBITS, "nprobe": nprobe})


def needs_rebuild(
    spec_now: IndexSpec,
    n: int,
    dim: int,
    budget: int | None = None,
    *,
    exact_threshold: int = 50_000,
) -> bool:
    """Whether an index built as ``spec_now`` should be rebuilt now that it holds ``n`` vectors.

    Hysteresis keeps a collection hovering around a boundary from flapping:
    an ANN index goes back to flat only below half the threshold, and an
    IVF-PQ index is retrained only when its planned ``nlist`` has doubled or
    halved. HNSW's ``ef_search`` is a search-time setting and never forces a
    rebuild.
    """
    if spec_now.kind == "flat":
        return n >= exact_threshold
    if n < exact_threshold // 2:
        return True
    planned = choose_spec(
        max(n, exact_threshold), dim, memory_budget_bytes=budget, exact_threshold=exact_threshold
    )
    if planned.kind != spec_now.kind:
        return True
    if spec_now.kind == "hnsw":
        return False
    ratio = planned.params["nlist"] / spec_now.params["nlist"]
    return ratio >= 2 or ratio <= 0.5 or dim % spec_now.params["m"] != 0
