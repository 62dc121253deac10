"""Cross-attention reranking on relations a dual encoder confuses: R@1/R@5 with and without it.

    .venv/bin/python benchmarks/bench_rerank.py                   # trains a reranker, then measures
    .venv/bin/python benchmarks/bench_rerank.py --reranker DIR    # measures a trained one

Held-out generated scenes of two shapes (seeds the reranker never saw), each with its
confusers drawn as pictures of their own: the shapes swapped ("a blue square left of
a red circle" for "a red circle left of a blue square"), their colours swapped, their
sizes swapped. Every caption of the gallery is a query; a picture is correct when it
has the attributes the caption states. Two layouts: ``standard`` (as the dual
encoder ``builtin:demo`` was trained: the shapes at fixed thirds of the frame) and
``free`` (anywhere the relation holds, same sizes), where the dual encoder
confuses them. The dual encoder ranks the whole gallery; the reranker re-scores its
top 20 (``--top``). By default the reranker trains on both layouts (other seeds);
``--train-layout standard`` is the control that never sees a free layout. Also reported: how often a caption scores its own picture above
each kind of confuser (chance 50%).

Prints a table and one JSON line; appends both to benchmarks/results/rerank.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mmsearch.datasets.relations import CONFUSER_KINDS, generate_scenes
from mmsearch.datasets.synthetic import SyntheticSample, codes, mention_codes, mention_matches
from mmsearch.encoders.registry import load_encoder
from mmsearch.search.rerank.base import Candidate
from mmsearch.search.rerank.trained import TrainedReranker, load

RESULTS = Path(__file__).parent / "results" / "rerank.md"
LAYOUTS = ("standard", "free")


def recall(order: NDArray[np.int64], fits: NDArray[np.bool_], k: int) -> float:
    """Share of queries (rows) with a fitting picture among the first ``k`` of ``order``."""
    hits = np.take_along_axis(fits, order[:, :k], axis=1)
    return float(hits.any(axis=1).mean())


def rerank_order(
    reranker: TrainedReranker,
    samples: list[SyntheticSample],
    queries: list[str],
    sim: NDArray[np.float32],
    top: int,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Dual-encoder order with its first ``top`` re-sorted by the reranker's probability.

    The gallery's patch features are computed once; each query then runs the
    cross-attention layers over its ``top`` candidates (what ``score`` does, batched).
    Returns the new order and the probabilities of the re-scored candidates.
    """
    torch = __import__("torch")
    model = reranker.model
    pre = reranker.preprocess
    with torch.inference_mode():
        pixels = torch.from_numpy(np.stack([pre(s.image) for s in samples]))
        patches = torch.cat([model.encode_image(c) for c in pixels.split(256)])
        order = np.argsort(-sim, axis=1, kind="stable")
        probs = np.empty((len(queries), top), dtype=np.float32)
        ids = torch.from_numpy(reranker.tokenizer.encode(queries))
        for q in range(len(queries)):
            cand = torch.from_numpy(order[q, :top])
            text, pad = model.encode_text(ids[q : q + 1])
            pair = (text.expand(top, -1, -1), pad.expand(top, -1))
            logits = model.match_logits(pair, patches[cand])
            probs[q] = torch.sigmoid(logits).numpy()
    head = np.argsort(-probs, axis=1, kind="stable")  # ties keep the dual encoder's order
    reordered = order.copy()
    reordered[:, :top] = np.take_along_axis(order[:, :top], head, axis=1)
    return reordered, probs


def check_against_score(reranker: TrainedReranker, samples: list[SyntheticSample],
                        query: str, order: NDArray[np.int64], probs: NDArray[np.float32]) -> None:  # fmt: skip
    """The batched path above gives what the public ``score`` gives."""
    cands = [Candidate("picture", image=samples[i].image) for i in order]
    public = reranker.score(query, cands)
    if not np.allclose(public, probs, atol=1e-4):
        raise SystemExit(f"batched scores differ from score(): {public[:4]} vs {probs[:4]}")


def _groups(samples: list[SyntheticSample]) -> list[dict[str, int]]:
    by_group: dict[int, dict[str, int]] = {}
    for i, s in enumerate(samples):
        by_group.setdefault(s.extra["group"], {})[s.extra["role"]] = i
    return list(by_group.values())


def pairwise(samples: list[SyntheticSample], score: NDArray[np.float32]) -> dict[str, float]:
    """Per confuser kind: how often a scene's caption scores the scene above that confuser.

    ``score[q, i]``: the score of picture ``i`` for the caption of sample ``q``.
    """
    wins: dict[str, list[bool]] = {k: [] for k in CONFUSER_KINDS}
    for roles in _groups(samples):
        scene = roles["scene"]
        for kind in CONFUSER_KINDS:
            if kind in roles:
                wins[kind].append(bool(score[scene, scene] > score[scene, roles[kind]]))
    return {k: float(np.mean(v)) for k, v in wins.items() if v}


def group_probabilities(reranker: TrainedReranker, samples: list[SyntheticSample],
                        queries: list[str]) -> NDArray[np.float32]:  # fmt: skip
    """Reranker probabilities of each scene caption against the pictures of its group (else NaN)."""
    out = np.full((len(samples), len(samples)), np.nan, dtype=np.float32)
    for roles in _groups(samples):
        scene, members = roles["scene"], sorted(roles.values())
        cands = [Candidate("picture", image=samples[i].image) for i in members]
        out[scene, members] = reranker.score(queries[scene], cands)
    return out


def measure(dual: Any, reranker: TrainedReranker, layout: str, lang: str, groups: int,
            seed: int, top: int) -> dict[str, Any]:  # fmt: skip
    samples = generate_scenes(groups, seed, layout=layout)  # type: ignore[arg-type]
    queries = [s.caption_en if lang == "en" else s.caption_zh for s in samples]
    fits = mention_matches(
        np.stack([mention_codes(s.attrs) for s in samples]),
        np.stack([codes(s.attrs) for s in samples]),
    )
    sim = dual.encode_text(queries) @ dual.encode_images([s.image for s in samples]).T
    dual_order = np.argsort(-sim, axis=1, kind="stable")
    t0 = time.perf_counter()
    order, probs = rerank_order(reranker, samples, queries, sim, top)
    seconds = time.perf_counter() - t0
    check_against_score(reranker, samples, queries[0], dual_order[0, :top], probs[0])
    t0 = time.perf_counter()
    for q in range(min(20, len(samples))):  # the public path: decode nothing, preprocess + score
        reranker.score(queries[q], [Candidate("picture", image=samples[i].image)
                                    for i in dual_order[q, :top]])  # fmt: skip
    score_ms = 1000 * (time.perf_counter() - t0) / min(20, len(samples))
    own = group_probabilities(reranker, samples, queries)
    return {
        "layout": layout, "lang": lang, "queries": len(samples), "gallery": len(samples),
        "dual_R@1": recall(dual_order, fits, 1), "dual_R@5": recall(dual_order, fits, 5),
        f"dual_R@{top}": recall(dual_order, fits, top),
        "rerank_R@1": recall(order, fits, 1), "rerank_R@5": recall(order, fits, 5),
        "pairwise_dual": pairwise(samples, sim),
        "pairwise_rerank": pairwise(samples, own),
        "rerank_ms_per_query_batched": 1000 * seconds / len(samples),
        f"score_ms_top{top}": score_ms,
    }  # fmt: skip


def table(rows: list[dict[str, Any]], top: int) -> str:
    head = (f"| layout | lang | queries | dual R@1 | dual R@5 | dual R@{top} | rerank R@1 | "
            "rerank R@5 | own vs swapped places | own vs swapped colours | own vs swapped sizes |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        pw = " | ".join(
            f"{100 * r['pairwise_dual'].get(k, float('nan')):.0f}% → "
            f"{100 * r['pairwise_rerank'].get(k, float('nan')):.0f}%"
            for k in CONFUSER_KINDS
        )
        lines.append(
            f"| {r['layout']} | {r['lang']} | {r['queries']} | {100 * r['dual_R@1']:.1f} | "
            f"{100 * r['dual_R@5']:.1f} | {100 * r[f'dual_R@{top}']:.1f} | "
            f"**{100 * r['rerank_R@1']:.1f}** | {100 * r['rerank_R@5']:.1f} | {pw} |"
        )
    return "\n".join(lines)


def train_one(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from mmsearch.train.reranker import RerankerTrainConfig, train_reranker

    given = {"steps": args.steps, "scenes": args.scenes}
    cfg = RerankerTrainConfig(out=str(folder), dual_encoder=args.dual, seed=args.train_seed,
                              layout=args.train_layout,
                              threads=args.threads,
                              **{k: v for k, v in given.items() if v is not None})  # fmt: skip
    result = train_reranker(cfg)
    return result.card


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dual", default="builtin:demo", help="the dual encoder (default builtin:demo)")
    p.add_argument(
        "--reranker", default=None, help="a trained reranker folder (default: train one)"
    )
    p.add_argument("--steps", type=int, default=None, help="training steps (default: as the CLI)")
    p.add_argument(
        "--scenes", type=int, default=None, help="training scene groups (default: as the CLI)"
    )
    p.add_argument("--train-seed", type=int, default=0)
    p.add_argument("--train-layout", default="mixed", choices=("mixed", "standard", "free"),
                   help="layouts the reranker trains on (standard: a control that never sees "
                   "the free layout)")  # fmt: skip
    p.add_argument("--groups", type=int, default=200, help="held-out scene groups per layout")
    p.add_argument("--seed", type=int, default=1000, help="held-out seed (not the training one)")
    p.add_argument("--top", type=int, default=20, help="candidates the reranker re-scores")
    p.add_argument("--langs", default="en,zh")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-save", action="store_true", help="do not append to results/rerank.md")
    args = p.parse_args(argv)
    if args.seed == args.train_seed:
        p.error("--seed must differ from --train-seed (held-out scenes)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.reranker) if args.reranker else Path(tmp) / "reranker"
        card = {} if args.reranker else train_one(args, folder)
        train_s = time.perf_counter() - start
        reranker = load(str(folder))
        dual = load_encoder(args.dual)
        rows = [measure(dual, reranker, layout, lang, args.groups, args.seed, args.top)
                for layout in LAYOUTS for lang in args.langs.split(",")]  # fmt: skip
    report = {
        "bench": "rerank", "dual": args.dual, "top": args.top, "groups": args.groups,
        "seed": args.seed, "train": card or {"folder": args.reranker},
        "train_seconds": round(train_s, 1), "rows": rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {args.threads}",
        "load": os.getloadavg()[0],
    }  # fmt: skip
    text = table(rows, args.top)
    print(text)
    print(json.dumps(report, default=float))
    if not args.no_save:
        RESULTS.parent.mkdir(exist_ok=True)
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write(f"\n## {time.strftime('%Y-%m-%d %H:%M')} `{' '.join(sys.argv)}`\n\n")
            fh.write(text + "\n\n```json\n" + json.dumps(report, default=float) + "\n```\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
