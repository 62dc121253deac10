"""Which words of a matched text answer the query: ranges to mark, and the share matched.

A query word matches a text word that starts with it and runs on by at most three
letters (``circle`` marks ``circles``, ``lighthouse`` marks ``lighthouses``; ``cat``
does not mark ``category``). Chinese and Japanese have no spaces between words, so
their query words (cut into trigrams as the full-text index does) match anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mmsearch.search.lexical import _CJK, query_terms

_SUFFIX = 3


def _pattern(term: str) -> re.Pattern[str]:
    if _CJK.search(term):
        return re.compile(re.escape(term))
    return re.compile(rf"(?<!\w){re.escape(term)}\w{{0,{_SUFFIX}}}(?!\w)", re.IGNORECASE)


def query_words(text: str) -> list[str]:
    """The words of a query that can be marked (long and short terms, stop words out)."""
    long, short = query_terms(text)
    return long + short


def highlights(text: str | None, words: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Sorted, merged (start, end) character ranges of ``text`` matching ``words``."""
    if not text or not words:
        return ()
    spans = sorted(m.span() for w in words for m in _pattern(w).finditer(text))
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return tuple(merged)


def matched_words(text: str | None, words: Sequence[str]) -> set[str]:
    """The query words found in ``text``."""
    if not text:
        return set()
    return {w for w in words if _pattern(w).search(text)}


_TOKEN = re.compile(r"\w+", re.UNICODE)


def proximity(text: str | None, words: Sequence[str]) -> float:
    """How close together the matched query words sit (1: side by side; less when
    scattered): ``(n + 1) / span`` for ``n`` distinct words found within a smallest
    window of ``span`` text words, at most 1. Words of languages written without
    spaces (Chinese, Japanese) and single-word matches count 1."""
    if not text or len(words) < 2 or any(_CJK.search(w) for w in words):
        return 1.0
    patterns = {w: _pattern(w) for w in words}
    hits: list[tuple[int, str]] = []
    for pos, tok in enumerate(_TOKEN.findall(text)):
        for w, pat in patterns.items():
            if pat.fullmatch(tok):
                hits.append((pos, w))
    found = {w for _, w in hits}
    if len(found) < 2:
        return 1.0
    best = len(_TOKEN.findall(text)) + 1
    for i, (start, _) in enumerate(hits):
        seen: set[str] = set()
        for pos, w in hits[i:]:
            seen.add(w)
            if seen == found:
                best = min(best, pos - start + 1)
                break
    return min(1.0, (len(found) + 1) / best)
