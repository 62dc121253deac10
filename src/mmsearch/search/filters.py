"""Filters -> a SQL condition over items, evaluated to the vector ids a search may return.

Reserved keys: ``modality`` (handled by the engine: each vector modality has
its own index), ``type`` (the item's own kind: image, text, video, audio; a
string or a list), ``path_prefix``, ``date_from`` / ``date_to`` (EXIF date or mtime; ISO
date/time strings or epoch seconds). Any other key is a user metadata field:
a scalar means equality; a dict with ``gt``/``gte``/``lt``/``lte`` (or a
two-element list ``[low, high]``) is a numeric range.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import Any

from mmsearch.errors import QueryError

RESERVED = ("modality", "type", "path_prefix", "date_from", "date_to")
_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def to_epoch(value: Any, *, end: bool = False) -> float:
    """Epoch seconds from a number or an ISO date/time (a bare date covers the whole day)."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, dt.date):
        value = value.isoformat()
    text = str(value).strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min)
            return moment.timestamp()
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise QueryError(f"not a date: {value!r} (use YYYY-MM-DD or ISO date-time)") from exc


def build_where(filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """SQL condition over ``items i`` for every non-modality filter; ("", []) if none."""
    clauses: list[str] = []
    params: list[Any] = []
    for key, value in filters.items():
        if key == "modality" or value is None:
            continue
        if key == "path_prefix":
            prefix = os.fsencode(os.path.abspath(os.path.expanduser(str(value))))
            clauses.append("i.path_key >= ? AND i.path_key < ?")
            params += [prefix, prefix + b"\xff"]
        elif key == "type":
            kinds = [value] if isinstance(value, str) else list(value)
            clauses.append(f"i.modality IN ({','.join('?' * len(kinds))})")
            params += [str(k) for k in kinds]
        elif key == "date_from":
            clauses.append("i.taken_at >= ?")
            params.append(to_epoch(value))
        elif key == "date_to":
            clauses.append("i.taken_at <= ?")
            params.append(to_epoch(value, end=True))
        else:
            clause, p = _field_clause(key, value)
            clauses.append(clause)
            params += p
    return " AND ".join(f"({c})" for c in clauses), params


def _field_clause(key: str, value: Any) -> tuple[str, list[Any]]:
    # "i.id IN (subquery)" lets SQLite start from the fields index instead of scanning items.
    base = "i.id IN (SELECT f.item_id FROM fields f WHERE f.key = ? AND "
    if isinstance(value, (list, tuple)) and len(value) == 2:
        value = {"gte": value[0], "lte": value[1]}
    if isinstance(value, Mapping):
        conds: list[str] = []
        params: list[Any] = [key]
        for op, bound in value.items():
            if op not in _OPS:
                raise QueryError(f"unknown range operator {op!r} for {key!r}; use gt/gte/lt/lte")
            conds.append(f"f.value_num {_OPS[op]} ?")
            params.append(float(bound))
        if not conds:
            raise QueryError(f"empty range for {key!r}")
        return base + " AND ".join(conds) + ")", params
    if isinstance(value, bool):
        return base + "f.value_text = ?)", [key, str(value).lower()]
    if isinstance(value, (int, float)):
        return base + "f.value_num = ?)", [key, float(value)]
    return base + "f.value_text = ?)", [key, str(value)]


def parse_where(expr: str) -> tuple[str, Any]:
    """Parse a CLI filter such as ``brand=acme``, ``price<=20`` or ``year>2019``."""
    for op, name in (("<=", "lte"), (">=", "gte"), ("<", "lt"), (">", "gt"), ("=", None)):
        if op in expr:
            key, _, raw = expr.partition(op)
            key, raw = key.strip(), raw.strip()
            if not key:
                break
            if name is None:
                return key, _scalar(raw)
            return key, {name: float(raw)}
    raise QueryError(f"cannot parse filter {expr!r}: use key=value, key<=N, key>=N, key<N, key>N")


def merge_ranges(filters: dict[str, Any], key: str, value: Any) -> None:
    """Add ``key: value`` to ``filters``, merging two range bounds on the same key."""
    old = filters.get(key)
    if isinstance(old, dict) and isinstance(value, dict):
        old.update(value)
    else:
        filters[key] = value


def _scalar(raw: str) -> Any:
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            return raw
