"""``mmsearch index PATH...``: add files and folders to a library (incremental)."""

from __future__ import annotations

import argparse
import sys

from mmsearch.cli.main import add_library_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="files or folders to index")
    add_library_args(p)
    p.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="user metadata for every item of this run (repeatable; filter with --where)",
    )
    p.add_argument("--workers", type=int, default=None, help="decode processes (0 = in-process)")
    p.add_argument("--batch-size", type=int, default=64, help="files per commit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from mmsearch.cli.output import emit_json, format_report
    from mmsearch.library import Library
    from mmsearch.search.filters import parse_where

    metadata = dict(parse_where(m) for m in args.meta)
    with Library.open(args.library, model=args.model) as lib:
        report = lib.add(
            args.paths,
            metadata=metadata,
            workers=args.workers,
            batch_size=args.batch_size,
            progress=not (args.no_progress or args.json) and sys.stderr.isatty(),
        )
    if args.json:
        emit_json(report.to_dict())
    else:
        print(format_report(report))
    return 0
