"""``mmsearch remove``: remove items by id, file path or folder."""

from __future__ import annotations

import argparse

from mmsearch.cli.main import add_library_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", nargs="+", metavar="ID|PATH", help="item ids, files or folders")
    add_library_args(p, model=False)


def run(args: argparse.Namespace) -> int:
    from mmsearch.cli.output import emit_json
    from mmsearch.library import Library

    targets: list[str | int] = [int(t) if t.isdigit() else t for t in args.targets]
    with Library.open(args.library, create=False) as lib:
        n = lib.remove(targets)
    if args.json:
        emit_json({"removed": n})
    else:
        print(f"removed {n} item(s)")
    return 0
