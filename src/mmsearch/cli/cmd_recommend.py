"""``mmsearch recommend``: "more like these" from a history of item ids.

The positive ids (a history, oldest first) are the query; ``--negative`` ids steer
away, ``--exclude`` ids (already seen) are never returned, nor are the positives and
negatives themselves. ``--diversity`` trades relevance for variety (maximal marginal
relevance) and ``--recency`` weighs older positives less. Filters are those of
``search``; output too (text, ``--json``, ``--paths``, ``-0``).
"""

from __future__ import annotations

import argparse
from typing import Any

from mmsearch.cli.main import add_library_args
from mmsearch.cli.search_args import (
    add_count_arg,
    add_filter_args,
    add_ids_arg,
    add_min_score_arg,
    add_output_args,
    check_output,
    filters,
    flat_ids,
    fraction,
    id_list,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "positive",
        nargs="+",
        type=id_list("positive ids"),
        metavar="ID",
        help="item ids liked or watched, oldest first (12 40 7 or 12,40,7)",
    )
    add_library_args(p)
    add_ids_arg(
        p,
        "--negative",
        "item ids disliked: recommend away from them (12,40 or repeated)",
    )
    add_ids_arg(
        p,
        "--exclude",
        "item ids never to recommend, e.g. already seen (12,40 or repeated)",
    )
    add_count_arg(p)
    p.add_argument(
        "--diversity",
        type=fraction("--diversity"),
        default=0.0,
        metavar="D",
        help="0-1: trade relevance for variety by maximal marginal relevance "
        "(default 0: by relevance alone; 0.3 is a good start)",
    )
    p.add_argument(
        "--recency",
        type=fraction("--recency", below_one=True),
        metavar="R",
        help="0-1 (1 excluded): weigh each older positive that much less than the next "
        "(default: all alike)",
    )
    add_filter_args(p)
    p.add_argument("--path-prefix", metavar="DIR", help="only items under this folder")
    add_min_score_arg(p)
    add_output_args(p)


def run(args: argparse.Namespace) -> int:
    from mmsearch.cli.output import emit_hits
    from mmsearch.library import Library

    check_output(args)
    positive = flat_ids(args.positive)
    negative = flat_ids(args.negative)
    exclude = flat_ids(args.exclude)
    with Library.open(args.library, model=args.model, readonly=True) as lib:
        hits = lib.recommend(
            positive,
            negative=negative,
            exclude=exclude,
            k=args.k,
            diversity=args.diversity,
            recency=args.recency,
            filters=filters(args),
            min_score=args.min_score,
        )
    payload: dict[str, Any] = {
        "positive": positive,
        "negative": negative,
        "exclude": exclude,
        "diversity": args.diversity,
        "recency": args.recency,
    }
    return emit_hits(hits, payload, json_out=args.json, paths=args.paths, nul=args.nul)
