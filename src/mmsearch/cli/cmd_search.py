"""``mmsearch search``: text, image, audio/video clip, item and weighted multi-part queries."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from mmsearch.cli.main import add_library_args

if TYPE_CHECKING:
    from mmsearch.ingest.report import IngestReport
    from mmsearch.library import Library
    from mmsearch.search.query import QueryPart


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
    where = p.add_mutually_exclusive_group()
    where.add_argument("--path-prefix", metavar="DIR", help="only items under this folder")
    where.add_argument(
        "--in",
        dest="in_dir",
        metavar="DIR",
        help="index DIR into the library first (incremental: only new and changed files are "
        "embedded), then search only there",
    )
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
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "--paths", action="store_true", help="print only the paths, one a line (for piping)"
    )
    out.add_argument(
        "-0",
        dest="nul",
        action="store_true",
        help="print only the paths, each ended by a NUL byte (for xargs -0)",
    )


def run(args: argparse.Namespace) -> int:
    from mmsearch.cli.output import emit_json, format_hits, printable, write_paths
    from mmsearch.errors import QueryError
    from mmsearch.library import Library

    if args.json and (args.paths or args.nul):
        raise QueryError("--paths and -0 print paths only; leave out --json")
    parts = _parts(args)
    filters = _filters(args)
    if args.in_dir is not None:
        folder = filters["path_prefix"]
        if not os.path.isdir(folder):
            raise QueryError(f"--in {printable(args.in_dir)}: no such folder")
        with Library.open(args.library, model=args.model) as lib:
            report = _index_in(lib, folder, json_out=args.json)
            hits = lib.search(
                parts, k=args.k, filters=filters, min_score=args.min_score, mode=args.mode
            )
    else:
        report = None
        with Library.open(args.library, model=args.model, readonly=True) as lib:
            hits = lib.search(
                parts, k=args.k, filters=filters, min_score=args.min_score, mode=args.mode
            )
    if args.json:
        payload: dict[str, Any] = {
            "query": [p.describe() for p in parts],
            "hits": [h.to_dict() for h in hits],
        }
        if report is not None:
            payload["indexed"] = report.to_dict()
        emit_json(payload)
    elif args.paths or args.nul:
        write_paths(hits, nul=args.nul)
    else:
        print(format_hits(hits))
    return 0


def _parts(args: argparse.Namespace) -> list[QueryPart]:
    from mmsearch.errors import QueryError
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
    return parts


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    from mmsearch.search.filters import merge_ranges, parse_where

    filters: dict[str, Any] = {
        "modality": args.modality,
        "type": args.type,
        "path_prefix": args.path_prefix,
        "date_from": args.after,
        "date_to": args.before,
    }
    if args.in_dir is not None:
        filters["path_prefix"] = os.path.abspath(os.path.expanduser(args.in_dir))
    for expr in args.where:
        merge_ranges(filters, *parse_where(expr))
    return filters


def _index_in(lib: Library, folder: str, *, json_out: bool) -> IngestReport:
    """``--in DIR``: add DIR to the library quietly (a progress bar only on a terminal)."""
    from mmsearch.cli.output import printable
    from mmsearch.ingest.pipeline import IngestOptions

    report = lib.add([folder], options=IngestOptions(progress=sys.stderr.isatty() and not json_out))
    if report.failures and not json_out:
        print(
            f"mmsearch: {report.failed} file(s) under {printable(folder)} could not be indexed "
            "(`mmsearch info` lists them)",
            file=sys.stderr,
        )
    return report
