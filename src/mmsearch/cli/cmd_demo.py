"""``mmsearch demo``: offline end-to-end demo with the shipped model."""

from __future__ import annotations

import argparse
import os
import tempfile


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir", help="where to write the demo media and library (default: a temp folder)"
    )
    p.add_argument("-k", type=int, default=5, help="results per query")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from mmsearch.cli.output import emit_json, printable
    from mmsearch.demo import run_demo
    from mmsearch.search.moments import format_range

    folder = args.dir or tempfile.mkdtemp(prefix="mmsearch-demo-")
    report, results = run_demo(folder, k=args.k)
    if args.json:
        emit_json(
            {
                "folder": folder,
                "ingest": report.to_dict(),
                "queries": [
                    {
                        "title": r.query.title,
                        "precision": r.precision,
                        "hits": [
                            h.to_dict() | {"correct": c}
                            for h, c in zip(r.hits, r.correct, strict=True)
                        ],
                    }
                    for r in results
                ],
            }
        )
        return 0
    library = printable(os.path.join(folder, "library"))
    print(f"demo library: {library}")
    print(f"indexed {report.summary()}\n")
    for r in results:
        print(f"{r.query.title}   [{sum(r.correct)}/{len(r.correct)} correct]")
        for h, ok in zip(r.hits, r.correct, strict=True):
            seg = h.segments[0] if h.segments else None
            extra = f"  “{printable(seg.text.splitlines()[0])}”" if seg and seg.text else ""
            if seg is not None and seg.t_start is not None and seg.t_end is not None:
                extra = f" @ {format_range(seg.t_start, seg.t_end)}" + extra
            print(
                f"   {'✓' if ok else '✗'} {h.score:.3f}  {printable(os.path.basename(h.path))}{extra}"
            )
        print()
    mean = sum(r.precision for r in results) / max(1, len(results))
    print(f"mean precision@{args.k}: {mean:.2f}")
    print(f"Try it yourself: mmsearch search --library {library} " + '"a small orange star"')
    return 0
