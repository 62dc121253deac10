"""``mmsearch remove``: remove items by id, file path or folder, with guards against surprises.

Every target must match something (a typo removes nothing and says so); removing
more than half of the library in one call needs ``--yes``; ``--dry-run`` lists what
would go. By default removed files stay out of later ``index`` runs of their folder;
``--forget`` only drops them, so the next ``index`` of the folder adds them again.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from mmsearch.cli.main import add_library_args

if TYPE_CHECKING:
    from mmsearch.pathargs import Target
    from mmsearch.store.rows import ItemRow


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", nargs="+", metavar="ID|PATH", help="item ids, files or folders")
    add_library_args(p, model=False)
    p.add_argument(
        "--forget",
        action="store_true",
        help="only drop the items from the library: the next `index` of their folder adds "
        "them again. Without it, removed files stay out of later `index` runs (indexing "
        "the file itself by name brings it back)",
    )
    p.add_argument(
        "--dry-run", "-n", action="store_true", help="list what would be removed; remove nothing"
    )
    p.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="go ahead when more than half of the library's items would be removed",
    )


def parse_targets(raw: list[str]) -> list[str | int]:
    """Digits name an item id; anything else is a file or folder path."""
    return [int(t) if t.isdigit() else t for t in raw]


def run(args: argparse.Namespace) -> int:
    from mmsearch.cli.output import emit_json, printable
    from mmsearch.errors import QueryError
    from mmsearch.library import Library
    from mmsearch.store.queries import SQLITE_MAX_INT, item_count

    targets = parse_targets(args.targets)
    with Library.open(args.library, create=False, readonly=args.dry_run) as lib:
        # Ids SQLite cannot hold match nothing (and must not reach it).
        sane = [t for t in targets if not (isinstance(t, int) and t > SQLITE_MAX_INT)]
        found = dict(lib.match_targets(sane))
        missing = [t for t in targets if not found.get(t)]
        if missing:
            shown = ", ".join(printable(str(t)) for t in missing)
            raise QueryError(f"nothing in the library matches {shown} (nothing removed)")
        ids = sorted({i for matched in found.values() for i in matched})
        total = item_count(lib.catalog)
        if args.dry_run:
            items = lib.catalog.items(ids)
            _report_dry_run(args, ids, items, total)
            return 0
        if len(ids) > 1 and 2 * len(ids) > total and not args.yes:
            raise QueryError(
                f"this would remove {len(ids)} of the library's {total} items (more than half); "
                "add --yes to go ahead, or --dry-run to list them"
            )
        n = lib.remove(sane, forget=args.forget)
    if args.json:
        emit_json({"removed": n, "forget": args.forget, "targets": _per_target(found)})
    elif args.forget:
        print(f"removed {n} item(s); they come back at the next index of their folder")
    else:
        print(f"removed {n} item(s); they stay out of later index runs (see --forget)")
    return 0


def _per_target(found: dict[Target, list[int]]) -> list[dict[str, Any]]:
    return [
        {"target": os.fspath(t) if not isinstance(t, int) else t, "items": len(ids)}
        for t, ids in found.items()
    ]


def _report_dry_run(
    args: argparse.Namespace, ids: list[int], items: dict[int, ItemRow], total: int
) -> None:
    from mmsearch.cli.output import emit_json, printable

    if args.json:
        emit_json(
            {
                "would_remove": len(ids),
                "of": total,
                "items": [
                    {"item_id": i, "path": os.fsencode(items[i].path).decode("utf-8", "replace")}
                    for i in ids
                    if i in items
                ],
            }
        )
        return
    width = len(str(ids[-1])) + 1 if ids else 2
    for i in ids:
        if i in items:
            print(f"{'#' + str(i):<{width}}  {printable(items[i].path)}")
    print(f"would remove {len(ids)} item(s) of {total}")
