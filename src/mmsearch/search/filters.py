"""Filters -> a SQL condition over items, evaluated to the vector ids a search may return.

Reserved keys: ``modality`` (handled by the engine: each vector modality has
its own index), ``type`` (the item's own kind: image, text, video, audio; a
string or a list), ``path_prefix`` (a folder: items inside it, or the file itself),
``date_from`` / ``date_to`` (EXIF date or mtime; ISO
date/time strings or epoch seconds). Any other key is a user metadata field:
a scalar (string, number, bool) means equality; a dict with ``gt``/``gte``/``lt``/``lte``
(or a two-element list ``[low, high]``) is a numeric range with finite number bounds.
Anything else is a :class:`QueryError` naming the key and the value.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from mmsearch.errors import QueryError
from mmsearch.store.catalog import under_range
from mmsearch.types import MODALITIES

RESERVED = ("modality", "type", "path_prefix", "date_from", "date_to")
ANY_MODALITY = ("any", "all")
"""``modality`` values that search every vector modality of the library."""
_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def to_epoch(value: Any, *, end: bool = False) -> float:
    """Epoch seconds from a number or an ISO date/time (a bare date covers the whole day)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
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


def check_modalities(value: Any) -> list[str]:
    """The vector modalities named by a ``modality`` filter; unknown names are refused."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise QueryError(f"filter 'modality': {value!r} is not a modality name or a list of them")
    known = (*MODALITIES, *ANY_MODALITY)
    for name in names:
        if name not in known:
            raise QueryError(f"unknown modality {name!r}; known: {', '.join(known)}")
    return list(names)


def user_fields(filters: Mapping[str, Any]) -> list[str]:
    """The metadata field keys ``filters`` uses (every key that is not reserved)."""
    return [k for k, v in filters.items() if k not in RESERVED and v is not None]


def check_fields(filters: Mapping[str, Any], known: Iterable[str]) -> None:
    """Refuse a filter on a metadata field no item of the library has, naming the known ones."""
    known = list(known)
    for key in user_fields(filters):
        if key not in known:
            have = ", ".join(known) if known else "none (they come from .json sidecars or --meta)"
            raise QueryError(f"unknown field {key!r}; this library's fields: {have}")


def build_where(filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """SQL condition over ``items i`` for every non-modality filter; ("", []) if none."""
    clauses: list[str] = []
    params: list[Any] = []
    for key, value in filters.items():
        if key == "modality" or value is None:
            continue
        clause, p = _clause(key, value)
        clauses.append(clause)
        params += p
    return " AND ".join(f"({c})" for c in clauses), params


def _clause(key: str, value: Any) -> tuple[str, list[Any]]:
    if key == "path_prefix":
        if not isinstance(value, (str, os.PathLike)):
            raise QueryError(f"filter 'path_prefix': {value!r} is not a folder path")
        return _under_clause(os.path.abspath(os.path.expanduser(os.fspath(value))))
    if key == "type":
        kinds = _kinds(value)
        return f"i.modality IN ({','.join('?' * len(kinds))})", kinds
    if key in ("date_from", "date_to"):
        try:
            epoch = to_epoch(value, end=key == "date_to")
        except QueryError as exc:
            raise QueryError(f"filter {key!r}: {exc}") from exc
        return ("i.taken_at >= ?" if key == "date_from" else "i.taken_at <= ?"), [epoch]
    return _field_clause(key, value)


def _under_clause(folder: str) -> tuple[str, list[Any]]:
    """Items at ``folder`` or inside it (``/a/photos`` does not take in ``/a/photos2``)."""
    return "i.path_key = ? OR (i.path_key >= ? AND i.path_key < ?)", list(under_range(folder))


def _kinds(value: Any) -> list[str]:
    kinds = [value] if isinstance(value, str) else value
    if not isinstance(kinds, (list, tuple)) or not all(isinstance(k, str) for k in kinds):
        raise QueryError(f"filter 'type': {value!r} is not an item type or a list of them")
    for kind in kinds:
        if kind not in MODALITIES:
            raise QueryError(f"unknown item type {kind!r}; known: {', '.join(MODALITIES)}")
    return list(kinds)


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
            params.append(_bound(key, bound))
        if not conds:
            raise QueryError(f"empty range for {key!r}")
        return base + " AND ".join(conds) + ")", params
    if isinstance(value, bool):
        return base + "f.value_text = ?)", [key, str(value).lower()]
    if isinstance(value, (int, float)):
        return base + "f.value_num = ?)", [key, float(value)]
    if isinstance(value, str):
        return base + "f.value_text = ?)", [key, value]
    raise QueryError(
        f"filter {key!r}: {value!r} is not a value (string, number, true/false) "
        'or a range ({"gte": a, "lte": b} or [a, b])'
    )


def _bound(key: str, bound: Any) -> float:
    """A range bound as a finite float; anything else names the field and the value."""
    number: float | None = None
    if isinstance(bound, (int, float)) and not isinstance(bound, bool):
        number = float(bound)
    elif isinstance(bound, str):
        try:
            number = float(bound)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise QueryError(f"filter {key!r}: range bound {bound!r} is not a finite number")
    return number


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
            return key, {name: _bound(key, raw)}
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
