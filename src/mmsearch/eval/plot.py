"""A PNG of Recall@K curves: one line per model and direction, K on a log axis.

Recall at each K comes from the stored rankings of each result (the same
similarity matrix as the table), so any K can be drawn, not only the ones
in the table. matplotlib is imported here, with the Agg backend (no display).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mmsearch.eval.runner import EvalResult

FIGSIZE_IN: tuple[float, float] = (8.0, 5.0)
DPI = 100
"""The PNG is ``FIGSIZE_IN * DPI`` pixels: 800 × 500."""
_STYLES = {"t2m": ("-", "o"), "m2t": ("--", "s")}
"""Line style and marker per direction (text→media solid circles, media→text dashed squares)."""


def _ks_for(results: Sequence[EvalResult], ks: Sequence[int]) -> list[int]:
    """The requested Ks, cut at the largest gallery (beyond it every curve is flat at 100%)."""
    largest = max(max(r.n_media, r.n_captions) for r in results)
    kept = sorted({int(k) for k in ks if 1 <= int(k) <= largest})
    return kept or [1]


def plot_recall_curves(
    results: Sequence[EvalResult],
    path: str | os.PathLike[str],
    ks: Sequence[int] = (1, 2, 5, 10, 20, 50),
) -> Path:
    """Draw Recall@K for every result and direction into the PNG ``path``; return its path."""
    if not results:
        raise ValueError("nothing to plot: no results")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator, PercentFormatter

    xs = _ks_for(results, ks)
    fig, ax = plt.subplots(figsize=FIGSIZE_IN, dpi=DPI)
    try:
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, r in enumerate(results):
            colour = colours[i % len(colours)]
            for direction in ("t2m", "m2t"):
                ys = [100.0 * v for v in r.recall_curve(direction, xs)]
                label = f"{r.model} · {r.direction_name(direction)}"
                if len({res.dataset for res in results}) > 1:
                    label += f" · {r.dataset}"
                line, marker = _STYLES[direction]
                ax.plot(xs, ys, line, marker=marker, color=colour, label=label)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(k) for k in xs])
        ax.yaxis.set_major_formatter(PercentFormatter())
        ax.set_ylim(0, 102)
        ax.set_xlabel("K (results looked at)")
        ax.set_ylabel("Recall@K")
        names = sorted({r.dataset for r in results})
        first = results[0]
        ax.set_title(
            f"Recall@K on {', '.join(names)} "
            f"({first.n_media} {first.modality}s, {first.n_captions} captions)"
        )
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return out
