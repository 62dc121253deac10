"""Checks of client input where it enters: ids, filters, text and numbers.

Everything here runs before the library sees a value, so a value of the wrong
shape is answered 422 (or 404 for an id that can name nothing) with a message,
never passed on to fail as a 500 deep inside SQLite, FAISS or an encoder:

- ids fit SQLite's 64-bit integers (larger ones name no item);
- filters have the shapes :mod:`mmsearch.search.filters` takes: ``type`` and
  ``modality`` name known kinds, ``path_prefix`` is an absolute path, dates are
  ISO dates or epoch seconds, a field is a plain value, a ``[low, high]`` pair
  or a ``{gt, gte, lt, lte}`` range of finite numbers;
- query text is valid Unicode (a lone surrogate cannot be encoded by any model);
- lists of item ids (feedback, history) are bounded, source weights name a source
  (``main/image``, ``text/text``, ``lexical``, ...) and are finite numbers >= 0.

Functions raise :class:`InvalidInput`, or ``ValueError`` inside pydantic
validators (which FastAPI answers 422 too).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from mmsearch.errors import MMSearchError
from mmsearch.search.query import SOURCES
from mmsearch.types import MODALITIES

MIN_ID = -(2**63)
MAX_ID = 2**63 - 1
"""SQLite's integer range: no row id lies outside it."""
MAX_FILTERS = 64
MAX_FIELD_NAME = 200
VECTOR_MODALITIES = (*MODALITIES, "any", "all")
RANGE_OPS = ("gt", "gte", "lt", "lte")
RESERVED = ("modality", "type", "path_prefix", "date_from", "date_to")
MAX_IDS = 1000
"""Item ids in one list (liked, disliked, excluded, a history)."""
MAX_WEIGHT = 1000.0

_INT = re.compile(r"-?\d+")


class InvalidInput(MMSearchError):
    """A value of the wrong shape or out of range (answered 422)."""


class IdOutOfRange(MMSearchError):
    """An id no row can have (answered 404: it names nothing)."""


def ids_in_range(request: Request) -> None:
    """A route dependency: a path parameter ``<thing>_id`` holding an integer that no
    SQLite row can have names nothing: 404 before the route runs."""
    for name, value in request.path_params.items():
        numeric = name.endswith("_id") and isinstance(value, str) and _INT.fullmatch(value)
        if numeric and not fits_id(value):
            raise IdOutOfRange(f"no {name[:-3]} {value}")


def fits_id(value: str | int) -> bool:
    """Whether ``value`` (an int or its decimal text) is within SQLite's integer range."""
    if isinstance(value, str):
        if len(value.lstrip("-")) > 19:  # also keeps int() away from huge digit strings
            return False
        value = int(value)
    return MIN_ID <= value <= MAX_ID


def check_item_id(value: int, what: str = "item id") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ValueError(f"{what} must be an integer from 1 to {MAX_ID}, not {value!r}")
    return value


def check_ids(value: Any) -> list[int]:
    """``value`` (an id or a list of ids) as a list of item ids, each named once (messages
    leave out the field's name: validation adds it)."""
    ids = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(ids, list):
        raise ValueError("give an item id or a list of item ids")
    if len(ids) > MAX_IDS:
        raise ValueError(f"at most {MAX_IDS} item ids")
    for i in ids:
        check_item_id(i, "an item id")
    return list(dict.fromkeys(ids))


def check_weights(value: Any) -> dict[str, float]:
    """Source weights: ``{source: number >= 0}``, each source one of :data:`SOURCES`."""
    if not isinstance(value, Mapping):
        raise ValueError('give a JSON object such as {"main/image": 1, "lexical": 0.5}')
    out: dict[str, float] = {}
    for name, w in value.items():
        if name not in SOURCES:
            raise ValueError(f"unknown source {_show(name)}; known: {', '.join(SOURCES)}")
        number = finite(w, str(name))
        if not 0 <= number <= MAX_WEIGHT:
            raise ValueError(f"{name} must be from 0 to {MAX_WEIGHT:g}, not {w}")
        out[name] = number
    return out


def check_text(value: str, what: str = "text") -> str:
    """``value``, if every character can be encoded (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid Unicode (a lone surrogate at {exc.start})") from exc
    return value


def finite(value: Any, what: str) -> float:
    """``value`` as a float, if it is a number (not a bool) that a float holds exactly
    enough and that is finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, not {_show(value)}")
    try:
        out = float(value)
    except OverflowError as exc:
        raise ValueError(f"{what} is too large") from exc
    if not math.isfinite(out):
        raise ValueError(f"{what} must be a finite number, not {value}")
    return out


# -- filters ----------------------------------------------------------------------------
def check_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """``filters`` if every key and value has a shape the library takes; raises
    ``ValueError`` naming the first that does not."""
    if not isinstance(filters, Mapping):
        raise ValueError("filters must be a JSON object")
    if len(filters) > MAX_FILTERS:
        raise ValueError(f"at most {MAX_FILTERS} filters")
    for key, value in filters.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_FIELD_NAME:
            raise ValueError(f"a filter needs a field name (1 to {MAX_FIELD_NAME} characters)")
        check_text(key, "a filter name")
        if value is not None:
            _check_filter(key, value)
    return dict(filters)


def _check_filter(key: str, value: Any) -> None:
    if key == "modality":
        _check_names(key, value, VECTOR_MODALITIES)
    elif key == "type":
        _check_names(key, value, MODALITIES)
    elif key == "path_prefix":
        _check_path(value)
    elif key in ("date_from", "date_to"):
        _check_date(key, value)
    elif isinstance(value, Mapping):
        _check_range(key, value)
    elif isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"{key}: a list is a range [low, high] of two numbers")
        for bound in value:
            finite(bound, f"{key}: a range bound")
    elif isinstance(value, str):
        check_text(value, key)
    elif not isinstance(value, bool):
        finite(value, key)


def _check_names(key: str, value: Any, known: tuple[str, ...]) -> None:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{key}: give one of {', '.join(known)} (or a list of them)")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"{key}: unknown {unknown[0]!r}; known: {', '.join(known)}")


def _check_path(value: Any) -> None:
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError("path_prefix must be a path (text without NUL characters)")
    if not os.path.isabs(os.path.expanduser(value)):
        raise ValueError(f"path_prefix must be an absolute path on the server, not {value!r}")


def _check_date(key: str, value: Any) -> None:
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                dt.date.fromisoformat(text)
            else:
                dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(
                f"{key}: not a date: {_show(value)} (use YYYY-MM-DD or an ISO date-time)"
            ) from exc
        return
    finite(value, f"{key} (epoch seconds or an ISO date)")


def _check_range(key: str, value: Mapping[str, Any]) -> None:
    if not value:
        raise ValueError(f"{key}: an empty range; use gt, gte, lt or lte")
    for op, bound in value.items():
        if op not in RANGE_OPS:
            raise ValueError(f"{key}: unknown range operator {_show(op)}; use gt, gte, lt, lte")
        finite(bound, f"{key}: the {op} bound")


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
