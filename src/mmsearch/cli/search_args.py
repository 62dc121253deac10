"""Arguments shared by ``search`` and ``recommend``: filters, item ids, numbers, output.

The value types here check a value where it enters and raise :class:`QueryError`
naming the flag, which ``main`` prints as one line (exit status 2), never a usage
dump or a traceback. Nothing here imports a model library.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable
from typing import Any

from mmsearch.errors import QueryError
from mmsearch.search.query import SOURCES


def id_list(flag: str) -> Callable[[str], list[int]]:
    """An argparse type: ``12,40`` (or ``12``) as item ids."""

    def parse(text: str) -> list[int]:
        pieces = [p.strip() for p in text.split(",")]
        ids = []
        for piece in pieces:
            if not piece:
                continue  # "12,40," is a slip, not a mistake worth refusing
            if not piece.isascii() or not piece.isdigit():
                raise QueryError(f"{flag}: {piece!r} is not an item id; give ids such as 12,40")
            ids.append(int(piece))
        if not ids:
            raise QueryError(f"{flag}: no item id given; give ids such as 12,40")
        return ids

    return parse


def flat_ids(groups: Iterable[list[int]] | None) -> list[int]:
    """Ids of a repeated id-list flag, in order, each once."""
    return list(dict.fromkeys(i for group in groups or () for i in group))


def fraction(flag: str, *, below_one: bool = False) -> Callable[[str], float]:
    """An argparse type: a number from 0 to 1 (1 excluded with ``below_one``)."""
    bound = "0 and 1 (1 excluded)" if below_one else "0 and 1"

    def parse(text: str) -> float:
        value = _number(flag, text)
        if not 0.0 <= value <= 1.0 or (below_one and value >= 1.0):
            raise QueryError(f"{flag} must be between {bound}, got {text}")
        return value

    return parse


def count(flag: str) -> Callable[[str], int]:
    """An argparse type: a whole number of at least 1."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise QueryError(f"{flag} must be a whole number, got {text!r}") from None
        if value < 1:
            raise QueryError(f"{flag} must be at least 1, got {value}")
        return value

    return parse


def source_weight(text: str) -> tuple[str, float]:
    """An argparse type: ``SOURCE=W`` for ``--weight``."""
    source, sep, raw = text.partition("=")
    source = source.strip()
    if not sep or not source:
        raise QueryError(f"--weight {text!r}: use SOURCE=WEIGHT, e.g. lexical=2")
    if source not in SOURCES:
        raise QueryError(f"--weight: unknown source {source!r}; known: {', '.join(SOURCES)}")
    value = _number(f"--weight {source}", raw.strip())
    if value < 0:
        raise QueryError(f"--weight {source}: the weight must be 0 or more, got {raw.strip()}")
    return source, value


def _number(flag: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise QueryError(f"{flag} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise QueryError(f"{flag} must be a finite number, got {text!r}")
    return value


def add_ids_arg(p: argparse.ArgumentParser, flag: str, help: str) -> None:
    """A repeatable ``--flag 12,40`` option of item ids (``flat_ids`` joins the groups)."""
    p.add_argument(flag, action="append", type=id_list(flag), metavar="IDS", help=help)


def add_count_arg(p: argparse.ArgumentParser) -> None:
    """``-k N``: how many results."""
    p.add_argument("-k", type=count("-k"), default=10, help="number of results (default 10)")


def add_filter_args(p: argparse.ArgumentParser) -> None:
    """``--modality``, ``--type``, ``--path-prefix``, ``--after``, ``--before``, ``--where``."""
    p.add_argument(
        "--modality",
        help="which vectors: image (photos, video frames), text, video (whole videos, "
        "X-CLIP clips), audio, or any (default: every index that can answer the query)",
    )
    p.add_argument(
        "--type",
        action="append",
        choices=("image", "text", "video", "audio"),
        help="only items of this kind (repeatable); the indexes holding it are searched",
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


def add_min_score_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--min-score",
        type=fraction("--min-score"),
        metavar="X",
        help="only hits scoring at least X on the calibrated 0-1 scale (0.99: one chance in "
        "a hundred that the match is chance); when none is left, says so and exits with 1",
    )


def add_output_args(p: argparse.ArgumentParser) -> None:
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


def filters(args: argparse.Namespace) -> dict[str, Any]:
    """The library filters the filter flags ask for."""
    from mmsearch.search.filters import merge_ranges, parse_where

    out: dict[str, Any] = {
        "modality": args.modality,
        "type": args.type,
        "path_prefix": getattr(args, "path_prefix", None),
        "date_from": args.after,
        "date_to": args.before,
    }
    in_dir = getattr(args, "in_dir", None)
    if in_dir is not None:
        out["path_prefix"] = os.path.abspath(os.path.expanduser(in_dir))
    for expr in args.where:
        merge_ranges(out, *parse_where(expr))
    return out


def check_output(args: argparse.Namespace) -> None:
    if args.json and (args.paths or args.nul):
        raise QueryError("--paths and -0 print paths only; leave out --json")
