"""A plain-text table of evaluation results for the terminal (recalls in percent)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mmsearch.eval.runner import EvalResult


def _pct(v: float) -> str:
    return "—" if math.isnan(v) else f"{100 * v:.1f}"


def _num(v: float) -> str:
    return "—" if math.isnan(v) else f"{v:.1f}"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_results(results: Sequence[EvalResult]) -> str:
    """One row per model and direction: R@K, median/mean rank, mAP@K, nDCG@K and time."""
    if not results:
        return "no results"
    ks = results[0].ks
    kmax = max(ks)
    header = ["model", "direction", *(f"R@{k}" for k in ks), "MdR", "MnR"]
    header += [f"mAP@{kmax}", f"nDCG@{kmax}", "time"]
    rows = [header]
    lines: list[str] = []
    for r in results:
        for d in ("t2m", "m2t"):
            m = r.metrics
            nan = float("nan")
            rows.append(
                [
                    r.model,
                    r.direction_name(d),
                    *(_pct(m.get(f"{d}_R@{k}", nan)) for k in ks),
                    _num(m.get(f"{d}_median_rank", nan)),
                    _num(m.get(f"{d}_mean_rank", nan)),
                    _pct(m.get(f"{d}_mAP@{kmax}", nan)),
                    _pct(m.get(f"{d}_nDCG@{kmax}", nan)),
                    f"{r.seconds:.1f}s" if d == "t2m" else "",
                ]
            )
    datasets = dict.fromkeys((r.dataset, r.modality, r.n_media, r.n_captions) for r in results)
    for name, modality, n_media, n_captions in datasets:
        lines.append(f"dataset {name}: {n_media} {modality} files, {n_captions} captions")
    lines += _table(rows)
    lines.append("R@K, mAP and nDCG in %; MdR/MnR: median/mean rank of the first correct result")
    if any(r.positives == "match_key" for r in results):
        lines.append(
            "correct = the caption's own media or any media with the same match_key "
            "(--strict-pairs: own media only)"
        )
    for r in results:
        if r.dropped:
            lines.append(
                f"{r.model}: {len(r.dropped)} media files could not be decoded (see --json)"
            )
    return "\n".join(lines)
