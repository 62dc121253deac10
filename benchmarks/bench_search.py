"""Search benchmark: the index mmsearch chooses vs raw FAISS vs a NumPy brute-force scan.

    .venv/bin/python benchmarks/bench_search.py --n 100000 --validate
    .venv/bin/python benchmarks/bench_search.py --n 1000000

Vectors are real MiniLM sentence embeddings (``corpus.py``) up to the size of
the real corpus, and above it synthetic vectors fitted to them (``--validate``
at 100k puts the real and the synthetic recall curves side by side). Queries
are held out of the index; ground truth is an exact scan.

Latency is single-query (one vector per call) on ONE thread: FAISS via
``omp_set_num_threads(1)``, NumPy's BLAS via threadpoolctl. Builds use every
core. Results go to stdout and ``benchmarks/results/search-<n>.md``; all the
per-size files are combined into ``benchmarks/results/search.md``.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import corpus  # noqa: E402

log = logging.getLogger("bench.search")
RESULTS = Path(__file__).resolve().parent / "results"
F32 = NDArray[np.float32]

EF_CURVE: tuple[int, ...] = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512)
NPROBE_CURVE: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SELECTIVITIES = (0.5, 0.1, 0.02, 0.01, 0.001)
OFFSET = 10_000_000
"""Caller ids are positions + OFFSET, so a wrapper that confused the two would be caught."""


# -- helpers ----------------------------------------------------------------


def _faiss() -> Any:
    import faiss

    return faiss


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def recall_at(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    k = truth.shape[1]
    hits = sum(len(set(f[:k]) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def single_query_ms(
    search: Callable[[F32], Any], queries: F32, warmup: int | None = None
) -> NDArray[np.float64]:
    """Wall time of one call per query (ms), after an untimed pass over ``warmup`` queries
    (all by default), so that every method is timed with equally warm caches."""
    for q in queries[:warmup]:
        search(q[None, :])
    out = np.empty(len(queries))
    for i, q in enumerate(queries):
        row = q[None, :]
        t0 = time.perf_counter_ns()
        search(row)
        out[i] = (time.perf_counter_ns() - t0) / 1e6
    return out


def overhead_ms(
    ours: Callable[[F32], Any], raw: Callable[[F32], Any], queries: F32, repeats: int = 5
) -> float:
    """Median over queries of (ours - raw), each the fastest of ``repeats`` interleaved calls.

    Taking the minimum removes scheduler noise and gives both the same warm
    caches, so the difference is the wrapper's own work.
    """
    diffs = np.empty(len(queries))
    for i, q in enumerate(queries):
        row = q[None, :]
        best = [np.inf, np.inf]
        for r in range(2 * repeats):
            fn = (ours, raw)[r % 2]
            t0 = time.perf_counter_ns()
            fn(row)
            best[r % 2] = min(best[r % 2], time.perf_counter_ns() - t0)
        diffs[i] = (best[0] - best[1]) / 1e6
    return float(np.median(diffs))


def searcher(index: Any, k: int, **kwargs: Any) -> Callable[[F32], Any]:
    """``index.search(x, k, **kwargs)`` as a one-argument function."""

    def run(x: F32) -> Any:
        return index.search(x, k, **kwargs)

    return run


def brute_force(base: F32, k: int) -> Callable[[F32], tuple[F32, NDArray[np.int64]]]:
    """rclip-style exact search: one float32 matmul, argpartition, sort the top k."""

    def search(q: F32) -> tuple[F32, NDArray[np.int64]]:
        sims = base @ q[0]
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top])]
        return sims[top][None, :], top[None, :]

    return search


def machine() -> dict[str, str]:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if "Model name" in ln), "?"
        )
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor() or "?"
    import faiss

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "memory": f"{mem_gb:.0f} GiB",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
    }


# -- data ----------------------------------------------------------------------


@dataclass
class Dataset:
    name: str
    base: F32
    queries: F32
    notes: list[str] = field(default_factory=list)


def real_dataset(n: int, nq: int) -> Dataset:
    vecs, fp = corpus.real_embeddings(n + nq)
    return Dataset(
        "real",
        np.ascontiguousarray(vecs[nq : nq + n]),
        np.ascontiguousarray(vecs[:nq]),
        [
            f"real: {n:,} sentences from man pages + Python stdlib docstrings "
            f"(corpus {fp}), {corpus.MODEL_NAME}, {nq:,} held-out sentences as queries"
        ],
    )


def synthetic_dataset(n: int, nq: int, real_n: int, per_anchor: int) -> Dataset:
    """``n`` synthetic vectors around ``n / per_anchor`` real anchors, calibrated on ``real_n`` real ones."""
    real, fp = corpus.real_embeddings(real_n + nq)
    anchors = real[nq:]  # the real base; the first nq vectors are the real queries
    n_anchors = n // per_anchor
    if n_anchors > len(anchors):
        raise SystemExit(f"{n:,} vectors at {per_anchor} per anchor need {n_anchors:,} anchors")
    model = corpus.SyntheticModel.fit(anchors)
    calib = model.calibrate(anchors, per_anchor=per_anchor)
    data = model.sample(n + nq, n_anchors, seed=12345)
    SYNTHETIC_FIT.update(calib)
    note = (
        f"synthetic: {n:,} vectors interpolated between {n_anchors:,} real anchors (corpus {fp}) "
        f"and their 10 nearest anchors, {per_anchor} per anchor, plus neighbour-difference noise "
        f"x {calib['scale']:.3f}; the scale was fitted on {real_n:,} real vectors so that a proxy "
        f"HNSW (M=16, efC=40) has the same recall@10 at efSearch 4/8/16/32 "
        f"({'/'.join(f'{r:.3f}' for r in calib['synthetic'])} synthetic vs "
        f"{'/'.join(f'{r:.3f}' for r in calib['real'])} real); {nq:,} held-out synthetic queries"
    )
    return Dataset("synthetic", data[:n], data[n:], [note])


def clustered_dataset(n: int, nq: int, dim: int = 384) -> Dataset:
    """Gaussian clusters; only for a quick check of this script (``--data clustered``)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((max(16, n // 100), dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n + nq)]
    x += 0.6 * rng.standard_normal(x.shape).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return Dataset("clustered", x[:n], x[n:], ["clustered Gaussian smoke-test data"])


# -- the benchmark -------------------------------------------------------------------


@dataclass
class Result:
    lines: list[str] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)
        for ln in lines:
            print(ln, flush=True)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.add(
            "| " + " | ".join(header) + " |",
            "|" + "|".join(" --- " for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows),
            "",
        )


def build_ours(spec: Any, base: F32) -> tuple[Any, float, float]:
    from mmsearch.index import FaissIndex

    before = rss_mb()
    t0 = time.perf_counter()
    index = FaissIndex.build(spec, np.arange(len(base), dtype=np.int64) + OFFSET, base)
    return index, time.perf_counter() - t0, rss_mb() - before


def build_raw(spec: Any, base: F32) -> tuple[Any, float]:
    faiss = _faiss()
    from mmsearch.index import factory_string

    t0 = time.perf_counter()
    raw = faiss.index_factory(base.shape[1], factory_string(spec), faiss.METRIC_INNER_PRODUCT)
    if spec.kind == "hnsw":
        raw.hnsw.efConstruction = spec.params["ef_construction"]
    if spec.kind == "ivfpq":
        raw.do_polysemous_training = False
        p = spec.params
        sample = max(64 * p["nlist"], 64 << p["nbits"])
        rows = np.sort(np.random.default_rng(0).choice(len(base), min(sample, len(base)), False))
        raw.train(base[rows])
    raw.add(base)
    return raw, time.perf_counter() - t0


def raw_params(spec: Any, effort: int | None = None, sel: Any = None) -> Any:
    faiss = _faiss()

    if spec.kind == "hnsw":
        p = faiss.SearchParametersHNSW()
        p.efSearch = effort or spec.params["ef_search"]
    elif spec.kind == "ivfpq":
        p = faiss.SearchParametersIVF()
        p.nprobe = effort or spec.params["nprobe"]
    else:
        p = faiss.SearchParameters()
    if sel is not None:
        p.sel = sel
    return p


def run_size(args: argparse.Namespace, data: Dataset, res: Result, spec: Any) -> None:
    import faiss
    from threadpoolctl import threadpool_limits

    from mmsearch.index import factory_string

    n, k = len(data.base), args.k
    cores = os.cpu_count() or 1
    faiss.omp_set_num_threads(cores)
    t0 = time.perf_counter()
    _, truth = corpus.knn_exact(data.base, data.queries, k)
    log.info("ground truth in %.1f s", time.perf_counter() - t0)

    if args.index:
        from mmsearch.index import FaissIndex

        ours, t_ours, mem_ours = FaissIndex.load(args.index), float("nan"), float("nan")
        if len(ours) != n or ours.spec != spec:
            raise SystemExit(f"{args.index} holds {ours!r}, not {spec} over {n:,} vectors")
        log.info("mmsearch index loaded from %s", args.index)
    else:
        ours, t_ours, mem_ours = build_ours(spec, data.base)
        log.info("mmsearch %s built in %.0f s", spec, t_ours)
    if args.raw_build == "separate" or (args.raw_build == "auto" and n <= 200_000):
        raw, t_raw = build_raw(spec, data.base)
        raw_note = "raw FAISS index built separately with the same factory string and settings"
    else:
        raw, t_raw = ours.faiss_index, float("nan")
        raw_note = "raw FAISS = the very FAISS object inside the mmsearch index, searched directly"
    log.info("raw built in %.0f s", t_raw)
    res.add(f"#### {data.name} vectors, n = {n:,}, dim = {data.base.shape[1]}", "")
    res.add(*(f"- {note}" for note in data.notes))
    res.add(
        f"- mmsearch planner choice: `{spec}` (FAISS `{factory_string(spec)}`, inner product)",
        f"- {raw_note}",
        "",
    )

    save_dir = corpus.CACHE_DIR / ("bench-index-resave" if args.index else "bench-index")
    t0 = time.perf_counter()
    ours.save(save_dir / "ix")
    t_save = time.perf_counter() - t0
    disk = sum(p.stat().st_size for p in save_dir.iterdir()) / 2**20
    from mmsearch.index import FaissIndex

    t0 = time.perf_counter()
    FaissIndex.load(save_dir / "ix")
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    mapped = FaissIndex.load(save_dir / "ix", mmap=True)
    t_mmap = time.perf_counter() - t0

    faiss.omp_set_num_threads(1)
    with threadpool_limits(limits=1):
        single_thread_section(args, data, res, spec, ours, raw, truth, mapped)
    res.add(
        "Build and storage (build uses all cores):",
        "",
    )
    res.table(
        ["", "value"],
        [
            [
                "mmsearch build",
                f"loaded from an earlier run's save ({args.index_built})"
                if args.index
                else f"{t_ours:.1f} s",
            ],
            ["raw FAISS build", "same object" if np.isnan(t_raw) else f"{t_raw:.1f} s"],
            ["memory, estimate (`memory_bytes`)", f"{ours.memory_bytes() / 2**20:.0f} MiB"],
            ["memory, RSS growth during build", "-" if args.index else f"{mem_ours:.0f} MiB"],
            ["raw vectors alone (n x dim x 4)", f"{data.base.nbytes / 2**20:.0f} MiB"],
            ["on disk", f"{disk:.0f} MiB"],
            ["save / load / mmap load", f"{t_save:.2f} s / {t_load:.2f} s / {t_mmap:.2f} s"],
        ],
    )
    del mapped


def single_thread_section(
    args: argparse.Namespace,
    data: Dataset,
    res: Result,
    spec: Any,
    ours: Any,
    raw: Any,
    truth: NDArray[np.int64],
    mapped: Any,
) -> None:
    k, q = args.k, data.queries
    ours_search = searcher(ours, k)
    raw_search = searcher(raw, k, params=raw_params(spec))
    inner_search = searcher(ours.faiss_index, k, params=raw_params(spec))
    mapped_search = searcher(mapped, k)

    brute = brute_force(data.base, k)
    nb = min(len(q), args.brute_queries)
    rows = []
    for name, fn, nq in (
        (f"mmsearch `{spec.kind}` (default settings)", ours_search, len(q)),
        (f"mmsearch `{spec.kind}`, mmap-loaded", mapped_search, len(q)),
        (f"raw FAISS `{spec.kind}`, same settings", raw_search, len(q)),
        ("raw FAISS, the FAISS object inside mmsearch", inner_search, len(q)),
        ("NumPy brute force (matmul + argpartition)", brute, nb),
    ):
        lat = single_query_ms(fn, q[:nq], warmup=20 if fn is brute else None)
        found = np.concatenate([fn(x[None, :])[1] for x in q[:nq]])
        if fn in (ours_search, mapped_search):
            found = np.where(found >= 0, found - OFFSET, -1)
        rows.append(
            [
                name,
                f"{recall_at(found, truth[:nq]):.4f}",
                f"{np.percentile(lat, 50):.3f}",
                f"{np.percentile(lat, 99):.3f}",
                f"{nq}",
            ]
        )
    over = overhead_ms(ours_search, inner_search, q[: args.overhead_queries])
    res.add(f"Single query, one thread, k = {k}:", "")
    res.table(["search", f"recall@{k}", "p50 ms", "p99 ms", "queries"], rows)
    res.add(
        f"mmsearch overhead over raw FAISS (same FAISS object, fastest of 5 calls each, median "
        f"over {min(len(q), args.overhead_queries)} queries): **{over * 1000:.0f} µs** per query.",
        "",
    )
    curve_section(args, data, res, spec, ours, raw, truth)
    filter_section(args, data, res, spec, ours)


def curve_section(
    args: argparse.Namespace,
    data: Dataset,
    res: Result,
    spec: Any,
    ours: Any,
    raw: Any,
    truth: NDArray[np.int64],
) -> None:
    if spec.kind == "flat":
        return
    k, q = args.k, data.queries[: args.curve_queries]
    name, values = ("efSearch", EF_CURVE) if spec.kind == "hnsw" else ("nprobe", NPROBE_CURVE)
    if spec.kind == "ivfpq":
        values = tuple(v for v in values if v <= spec.params["nlist"])
    default = spec.params["ef_search" if spec.kind == "hnsw" else "nprobe"]
    rows = []
    for v in values:
        ours.tune(ef_search=v, nprobe=v)
        params = raw_params(spec, v)
        found = np.concatenate([ours.search(x[None, :], k)[1] for x in q]) - OFFSET
        lat_ours = single_query_ms(searcher(ours, k), q)
        lat_raw = single_query_ms(searcher(raw, k, params=params), q)
        mark = " (default)" if v == default else ""
        rows.append(
            [
                f"{v}{mark}",
                f"{recall_at(found, truth[: len(q)]):.4f}",
                f"{np.percentile(lat_ours, 50):.3f}",
                f"{np.percentile(lat_ours, 99):.3f}",
                f"{np.percentile(lat_raw, 50):.3f}",
            ]
        )
    ours.tune(ef_search=default, nprobe=default)
    res.add(f"Recall/latency curve over {name} ({len(q)} queries, one thread):", "")
    res.table([name, f"recall@{k}", "mmsearch p50 ms", "mmsearch p99 ms", "raw p50 ms"], rows)
    CURVES[data.name] = {r[0].split()[0]: (r[1], r[2]) for r in rows}


def filter_section(
    args: argparse.Namespace, data: Dataset, res: Result, spec: Any, ours: Any
) -> None:
    faiss = _faiss()
    k, n = args.k, len(data.base)
    q = data.queries[: args.filter_queries]
    inner = ours.faiss_index
    rng = np.random.default_rng(7)
    rows = []
    for s in SELECTIVITIES:
        m = max(1, int(n * s))
        pos = np.sort(rng.choice(n, m, replace=False)).astype(np.int64)
        allowed = pos + OFFSET
        _, sub = corpus.knn_exact(data.base[pos], q, min(k, m))
        truth = pos[sub]
        ours_fn = searcher(ours, k, allowed=allowed)
        found = np.concatenate([ours_fn(x[None, :])[1] for x in q])
        found = np.where(found >= 0, found - OFFSET, -1)
        leaks = int((~np.isin(found[found >= 0], pos)).sum())
        full = float(((found >= 0).sum(axis=1) >= min(k, m)).mean())
        lat = single_query_ms(ours_fn, q)
        # raw FAISS: the same graph, a bitmap selector built once, the effort mmsearch would use
        bits = np.packbits(np.isin(np.arange(n), pos), bitorder="little")
        sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        effort = ours._make_params(None, widen=n / m)
        eff = getattr(effort, "efSearch", None) or getattr(effort, "nprobe", None)
        raw_fn = searcher(inner, k, params=raw_params(spec, eff, sel))
        raw_found = np.concatenate([raw_fn(x[None, :])[1] for x in q])
        raw_full = float(((raw_found >= 0).sum(axis=1) >= min(k, m)).mean())
        raw_lat = single_query_ms(raw_fn, q)
        exact_path = m <= ours._exact_scan_limit(k)
        over = "-" if exact_path else f"{overhead_ms(ours_fn, raw_fn, q[:50]) * 1000:.0f}"
        rows.append(
            [
                f"{s:g} ({m:,} ids)",
                "exact scan" if exact_path else f"ANN, effort {eff}",
                f"{recall_at(found, truth):.4f}",
                f"{full:.3f}",
                str(leaks),
                f"{np.percentile(lat, 50):.3f}",
                f"{np.percentile(lat, 99):.3f}",
                f"{recall_at(raw_found, truth):.4f} / {raw_full:.3f} / {np.percentile(raw_lat, 50):.3f}",
                over,
            ]
        )
        del sel, bits
    res.add(
        f"Filtered search (`allowed` = a random subset; {len(q)} queries, one thread; the same "
        "filter array is reused across queries, as a caller searching with one catalog filter "
        "would). 'full' = share of queries that got min(k, |allowed|) hits. Raw FAISS searches "
        "the same FAISS object with a prebuilt bitmap selector at the effort mmsearch's ANN path "
        "would use; overhead is measured as above, for the ANN path:",
        "",
    )
    res.table(
        [
            "selectivity",
            "mmsearch path",
            f"recall@{k}",
            "full",
            "leaks",
            "p50 ms",
            "p99 ms",
            "raw FAISS recall / full / p50 ms",
            "overhead µs",
        ],
        rows,
    )


CURVES: dict[str, dict[str, tuple[str, str]]] = {}
SYNTHETIC_FIT: dict[str, Any] = {}


def validate_section(res: Result) -> None:
    if not {"real", "synthetic"} <= CURVES.keys():
        return
    real, syn = CURVES["real"], CURVES["synthetic"]
    res.add("#### Real vs synthetic at the same size (the synthetic generator's check)", "")
    rows = [[v, real[v][0], syn[v][0], real[v][1], syn[v][1]] for v in real if v in syn]
    res.table(
        ["effort", "recall real", "recall synthetic", "p50 ms real", "p50 ms synthetic"], rows
    )
    if "profile_real" in SYNTHETIC_FIT:
        res.add(
            "Mean similarity of a query to its r-th nearest neighbour (what the fit does not "
            "match: the synthetic set is as hard for the index, with lower absolute scores):",
            "",
        )
        ranks = [str(r) for r in corpus.PROFILE_RANKS]
        res.table(
            ["r", *ranks],
            [
                ["real", *(f"{v:.3f}" for v in SYNTHETIC_FIT["profile_real"])],
                ["synthetic", *(f"{v:.3f}" for v in SYNTHETIC_FIT["profile_synthetic"])],
            ],
        )


# -- main ----------------------------------------------------------------------------------


def combine_results() -> None:
    runs = [p for p in RESULTS.glob("search-*.md") if p.stem.split("-")[1].isdigit()]
    parts = sorted(runs, key=lambda p: (int(p.stem.split("-")[1]), p.stem))
    text = ["## Search", ""]
    notes = RESULTS / "search-notes.md"
    if notes.exists():
        text.append(notes.read_text(encoding="utf-8"))
    text.append(
        "The tables below are generated by `benchmarks/bench_search.py`, one section per run. "
        "Latencies are single-query on one thread.\n"
    )
    for p in parts:
        text.append(p.read_text(encoding="utf-8"))
    (RESULTS / "search.md").write_text("\n".join(text), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="vectors in the index")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--real-n", type=int, default=100_000, help="size of the real corpus used")
    ap.add_argument(
        "--per-anchor", type=int, default=10, help="synthetic points per real anchor vector"
    )
    ap.add_argument("--data", choices=["auto", "real", "synthetic", "clustered"], default="auto")
    ap.add_argument(
        "--validate", action="store_true", help="also run synthetic data at this n, beside real"
    )
    ap.add_argument("--kind", choices=["auto", "flat", "hnsw", "ivfpq"], default="auto")
    ap.add_argument("--budget-mb", type=int, default=None, help="memory budget for the planner")
    ap.add_argument("--raw-build", choices=["auto", "separate", "shared"], default="auto")
    ap.add_argument("--brute-queries", type=int, default=200)
    ap.add_argument("--curve-queries", type=int, default=500)
    ap.add_argument("--filter-queries", type=int, default=200)
    ap.add_argument("--overhead-queries", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--index",
        type=Path,
        default=None,
        help="search a saved mmsearch index of the same data instead of building one",
    )
    ap.add_argument("--index-built", default="build time not recorded", help="note for --index")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from mmsearch.index import IndexSpec, choose_spec

    mach = machine()
    res = Result()
    cmd = "bench_search.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    extra = f", memory budget {args.budget_mb} MiB" if args.budget_mb else ""
    extra += f", kind forced to {args.kind}" if args.kind != "auto" else ""
    res.add(f"### n = {args.n:,}{extra}", "")
    res.add(
        f"`.venv/bin/python benchmarks/{cmd}` on {mach['cpu']}, {mach['cores']} cores, "
        f"{mach['memory']} RAM; {mach['date']}; Python {mach['python']}, NumPy {mach['numpy']}, "
        f"faiss-cpu {mach['faiss']}.",
        "",
    )
    kinds = [args.data] if args.data != "auto" else []
    if not kinds:
        kinds = ["real"] if args.n <= args.real_n else ["synthetic"]
        if args.validate and "synthetic" not in kinds:
            kinds.append("synthetic")
    for kind in kinds:
        if kind == "real":
            data = real_dataset(args.n, args.queries)
        elif kind == "synthetic":
            data = synthetic_dataset(args.n, args.queries, args.real_n, args.per_anchor)
        else:
            data = clustered_dataset(args.n, args.queries)
        budget = args.budget_mb * 2**20 if args.budget_mb else None
        spec = choose_spec(len(data.base), data.base.shape[1], memory_budget_bytes=budget)
        if args.kind != "auto" and spec.kind != args.kind:
            forced = choose_spec(
                len(data.base),
                data.base.shape[1],
                memory_budget_bytes=1 if args.kind == "ivfpq" else None,
                exact_threshold=10**12 if args.kind == "flat" else 0,
            )
            spec = forced if forced.kind == args.kind else IndexSpec(args.kind, {})
        run_size(args, data, res, spec)
    validate_section(res)
    suffix = "" if args.kind == "auto" else f"-{args.kind}"
    suffix += f"-{args.budget_mb}mb" if args.budget_mb else ""
    out = args.out or RESULTS / f"search-{args.n}{suffix}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(res.lines) + "\n", encoding="utf-8")
    if args.out is None:
        combine_results()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
