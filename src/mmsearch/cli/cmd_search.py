"""``mmsearch search``: text, image, audio/video clip, item and weighted multi-part queries.

By default a query searches all the evidence (``--mode hybrid``: every index that can
embed it and the full text), scores on one calibrated 0-1 scale (``--fusion``,
``--weight``), with optional cross-attention reranking (``--rerank``), relevance
feedback (``--like``/``--unlike``), a cut-off (``--min-score``, exit status 1 when it
leaves nothing) and near-copies folded (``--dedupe``, on by default).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from mmsearch.cli.main import add_library_args
from mmsearch.cli.search_args import (
    SOURCES,
    add_count_arg,
    add_filter_args,
    add_ids_arg,
    add_min_score_arg,
    add_output_args,
    check_output,
    count,
    filters,
    flat_ids,
    source_weight,
)

if TYPE_CHECKING:
    from mmsearch.ingest.report import IngestReport
    from mmsearch.library import Library
    from mmsearch.search.query import QueryPart
    from mmsearch.types import Hits


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
    add_ids_arg(
        p,
        "--like",
        "item ids that are good answers (12,40 or repeated): alone, more like these; "
        "with a query, refine it towards them",
    )
    add_ids_arg(
        p,
        "--unlike",
        "item ids that are bad answers: refine the query away from them (never shown)",
    )
    add_count_arg(p)
    add_filter_args(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--path-prefix", metavar="DIR", help="only items under this folder")
    where.add_argument(
        "--in",
        dest="in_dir",
        metavar="DIR",
        help="index DIR into the library first (incremental: only new and changed files are "
        "embedded), then search only there",
    )
    p.add_argument(
        "--mode",
        choices=("vector", "lexical", "hybrid"),
        default="hybrid",
        help="hybrid (default: every index that can answer the query and the full text of "
        "captions, text files, subtitles and transcripts), vector (embeddings only) or "
        "lexical (full text only)",
    )
    p.add_argument(
        "--fusion",
        choices=("calibrated", "rrf"),
        default="calibrated",
        help="calibrated (default: each source's scores on one 0-1 scale, evidence added) or "
        "rrf (reciprocal rank, for comparison)",
    )
    p.add_argument(
        "--weight",
        action="append",
        type=source_weight,
        default=[],
        metavar="SOURCE=W",
        help=f"weigh a source of evidence (default 1; repeatable): {', '.join(SOURCES)}",
    )
    add_min_score_arg(p)
    p.add_argument(
        "--rerank",
        action="append",
        default=[],
        metavar="SPEC",
        help="re-score the top candidates with a cross-attention reranker (repeatable): "
        "blip:NAME, cross-encoder:NAME, trained:DIR, hf:NAME or a folder",
    )
    p.add_argument(
        "--rerank-top",
        type=count("--rerank-top"),
        metavar="N",
        help="candidates the rerankers re-score (default 50)",
    )
    p.add_argument(
        "--dedupe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fold near-copies (a photo resized, a frame in two videos) into one hit that "
        "says '+n similar' (default: on)",
    )
    add_output_args(p)


def run(args: argparse.Namespace) -> int:
    from mmsearch.cli.output import emit_hits, printable
    from mmsearch.errors import QueryError
    from mmsearch.library import Library

    check_output(args)
    parts = _parts(args)
    flt = filters(args)
    if args.in_dir is not None:
        folder = flt["path_prefix"]
        if not os.path.isdir(folder):
            raise QueryError(f"--in {printable(args.in_dir)}: no such folder")
        with Library.open(args.library, model=args.model) as lib:
            report = _index_in(lib, folder, json_out=args.json)
            hits = _search(lib, parts, flt, args)
    else:
        report = None
        with Library.open(args.library, model=args.model, readonly=True) as lib:
            hits = _search(lib, parts, flt, args)
    payload: dict[str, Any] = {
        "query": [p.describe() for p in parts],
        "like": flat_ids(args.like),
        "unlike": flat_ids(args.unlike),
        "mode": args.mode,
        "fusion": args.fusion,
        "weights": dict(args.weight),
        "dedupe": args.dedupe,
    }
    if report is not None:
        payload["indexed"] = report.to_dict()
    return emit_hits(hits, payload, json_out=args.json, paths=args.paths, nul=args.nul)


def _search(
    lib: Library, parts: list[QueryPart], flt: dict[str, Any], args: argparse.Namespace
) -> Hits:
    extra: dict[str, Any] = {} if args.rerank_top is None else {"rerank_top": args.rerank_top}
    return lib.search(
        parts,
        like=flat_ids(args.like),
        unlike=flat_ids(args.unlike),
        k=args.k,
        filters=flt,
        min_score=args.min_score,
        mode=args.mode,
        fusion=args.fusion,
        weights=dict(args.weight),
        rerank=args.rerank or None,
        dedupe=args.dedupe,
        **extra,
    )


def _parts(args: argparse.Namespace) -> list[QueryPart]:
    """The query's own parts (terms, files); ``--like``/``--unlike`` go to the library."""
    from mmsearch.errors import QueryError
    from mmsearch.search.query import QueryPart, parse_terms

    parts = parse_terms(args.terms)
    parts += [QueryPart("image", path) for path in args.image]
    parts += [QueryPart("audio", path) for path in args.audio]
    parts += [QueryPart("video", path) for path in args.video]
    if not parts and not args.like and not args.unlike:
        raise QueryError(
            "nothing to search for: give text, --image FILE, --audio FILE, --video FILE or --like IDS"
        )
    if args.rerank and not any(p.kind == "text" and p.weight > 0 for p in parts):
        raise QueryError("--rerank re-scores matches against query text: give the query as text")
    return parts


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
