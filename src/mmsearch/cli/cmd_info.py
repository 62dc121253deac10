"""``mmsearch info``: what a library holds, its model and index, and recent failures."""

from __future__ import annotations

import argparse

from mmsearch.cli.main import add_library_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_library_args(p, model=False)
    p.add_argument("--failures", type=int, default=10, metavar="N", help="show N recent failures")


def run(args: argparse.Namespace) -> int:
    from mmsearch.cli.output import emit_json, format_info
    from mmsearch.library import Library

    with Library.open(args.library, readonly=True) as lib:
        info = lib.info()
        info["recent_failures"] = lib.failures(args.failures)
    if args.json:
        emit_json(info)
    else:
        print(format_info(info))
    return 0
