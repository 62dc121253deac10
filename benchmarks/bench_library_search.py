"""End-to-end ``Library.search`` latency vs the bare index search, on one library.

    .venv/bin/python benchmarks/bench_library_search.py [--n 100000] [--dim 384]

Fills a library's catalog directly with ``n`` image items (clustered unit
vectors; no media decoding), then times single queries on one thread:
the bare ``FaissIndex.search`` and the full ``Library.search(vector=...)``
(journal check, ANN search, segment/item lookups, grouping, hit building),
with and without a metadata filter. Writes benchmarks/results/library-search.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "library-search.md"


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 50), dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, dim)).astype(
        np.float32
    )
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fill(lib_dir: Path, vecs: np.ndarray) -> None:
    from mmsearch.encoders.base import EncoderInfo
    from mmsearch.store.catalog import Catalog
    from mmsearch.store.rows import NewItem, NewSegment

    cat = Catalog.open(lib_dir / "catalog.sqlite")
    info = EncoderInfo("bench:vectors", "bench", "bench/vectors", vecs.shape[1])
    space = cat.create_space("main", info.spec, info.fingerprint, info.dim, info.to_dict())
    batch = []
    for i, v in enumerate(vecs):
        batch.append(
            NewItem(
                path=f"/bench/{i:07d}.jpg",
                modality="image",
                fields={"shard": i % 100},
                segments=[NewSegment("image", "image", v)],
            )
        )
        if len(batch) == 5000:
            cat.commit_items(batch, space)
            batch = []
    if batch:
        cat.commit_items(batch, space)
    cat.close()


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    import faiss
    from threadpoolctl import threadpool_limits

    from mmsearch.encoders.base import EncoderInfo
    from mmsearch.library import Library

    faiss.omp_set_num_threads(1)
    vecs = clustered(args.n + args.queries, args.dim)
    base, queries = vecs[: args.n], vecs[args.n :]

    class VectorsOnly:  # the library needs an encoder identity; queries come as vectors
        info = EncoderInfo("bench:vectors", "bench", "bench/vectors", args.dim)

    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        lib_dir = Path(tmp) / "lib"
        lib_dir.mkdir()
        t = time.perf_counter()
        fill(lib_dir, base)
        fill_s = time.perf_counter() - t
        lib = Library.open(lib_dir, encoder=VectorsOnly())  # type: ignore[arg-type]
        t = time.perf_counter()
        index = lib.vectors.get("image")
        build_s = time.perf_counter() - t
        lib.close()
        lib = Library.open(lib_dir, encoder=VectorsOnly(), readonly=True)  # type: ignore[arg-type]
        index = lib.vectors.get("image")
        rows = []
        bare, full, filtered = [], [], []
        for q in queries:
            t = time.perf_counter()
            index.search(q[None], 10)
            bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            lib.search(vector=q, k=10)
            full.append(time.perf_counter() - t)
            t = time.perf_counter()
            lib.search(vector=q, k=10, filters={"shard": 7})
            filtered.append(time.perf_counter() - t)
        for name, xs in (
            ("FaissIndex.search (bare)", bare),
            ("Library.search(vector=...)", full),
            ("Library.search, filter shard=7 (1% of items)", filtered),
        ):
            rows.append((name, pct(xs, 50), pct(xs, 99)))
        overhead = statistics.median(f - b for f, b in zip(full, bare, strict=True)) * 1000
        kind = str(index.spec)
        lib.close()
    cpu = subprocess.run(
        "lscpu | grep 'Model name' | sed 's/.*: *//'", shell=True, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "## Library search, end to end",
        "",
        f"`.venv/bin/python benchmarks/bench_library_search.py --n {args.n} --dim {args.dim}` — {cpu}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}. "
        f"{args.n:,} items (clustered unit vectors), index `{kind}` chosen by the planner, opened "
        f"read-only (memory-mapped) as `mmsearch search` does; one thread; {args.queries} queries, k = 10. "
        f"Catalog fill {fill_s:.1f} s, index build {build_s:.1f} s.",
        "",
        "| call | p50 ms | p99 ms |",
        "| --- | --- | --- |",
        *[f"| {n} | {a:.3f} | {b:.3f} |" for n, a, b in rows],
        "",
        f"Median per-query cost of the library around the index (SQLite look-ups of segments, items and "
        f"fields, grouping, hit objects): **{overhead:.3f} ms**.",
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
