"""``mmsearch search``: text, image, audio/video clip, item and weighted multi-part queries."""

from __future__ import annotations

import argparse

from mmsearch.cli.main import add_library_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "terms",
        nargs="*",
        metavar="TERM",
        help="query terms joined by + and -, optionally weighted: "
        '"2:golden retriever" + ./pool.jpg - "fruit"',
    )
    add_library_args(p)
    p.add_argument(
        "--image", action="append", default=[], metavar="FILE", help="query image (repeatable)"
    )
    p.add_argument("--audio", action="append", default=[], metavar="FILE", help="query audio clip")
    p.add_argument("--video", action="append", default=[], metavar="FILE", help="query video clip")
    p.add_argument("--like", type=int, metavar="ITEM_ID", help="more like this item")
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument(
        "--modality",
        help="which vectors: image (photos, video frames), text, video (whole videos, "
        "X-CLIP clips), audio, or any (default: each space's primary vectors)",
    )
    p.add_argument(
        "--type",
        action="append",
        choices=("image", "text", "video", "audio"),
        help="only items of this kind (repeatable)",
    )
    p.add_argument(
        "--mode",
        choices=("vector", "lexical", "hybrid"),
        default="vector",
        help="vector (embeddings), lexical (full text of captions, text, subtitles, "
        "transcripts) or hybrid (both, rank-fused)",
    )
    p.add_argument("--path-prefix", help="only items under this folder")
    p.add_argument("--after", metavar="DATE", help="taken/modified on or after (YYYY-MM-DD)")
    p.add_argument("--before", metavar="DATE", help="taken/modified on or before (YYYY-MM-DD)")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="EXPR",
        help="metadata filter: key=value, key<=N, key>=N, key<N, key>N (repeatable)",
    )
    p.add_argument("--min-score", type=float, help="drop hits scoring below this")


def run(args: argparse.Namespace) -> int:
    from mmsearch.cli.output import emit_json, format_hits
    from mmsearch.errors import QueryError
    from mmsearch.library import Library
    from mmsearch.search.filters import merge_ranges, parse_where
    from mmsearch.search.query import QueryPart, parse_terms

    parts = parse_terms(args.terms)
    parts += [QueryPart("image", path) for path in args.image]
    parts += [QueryPart("audio", path) for path in args.audio]
    parts += [QueryPart("video", path) for path in args.video]
    if args.like is not None:
        parts.append(QueryPart("item", args.like))
    if not parts:
        raise QueryError(
            "nothing to search for: give text, --image FILE, --audio FILE, --video FILE or --like ID"
        )
    filters: dict = {
        "modality": args.modality,
        "type": args.type,
        "path_prefix": args.path_prefix,
        "date_from": args.after,
        "date_to": args.before,
    }
    for expr in args.where:
        merge_ranges(filters, *parse_where(expr))
    with Library.open(args.library, model=args.model, readonly=True) as lib:
        hits = lib.search(
            parts, k=args.k, filters=filters, min_score=args.min_score, mode=args.mode
        )
    if args.json:
        emit_json({"query": [p.describe() for p in parts], "hits": [h.to_dict() for h in hits]})
    else:
        print(format_hits(hits))
    return 0
