"""Full-text search over segment text (text chunks, captions, subtitles, transcripts).

The catalog keeps an FTS5 index with the trigram tokenizer, which matches inside
words and needs no word segmentation for Chinese. A query becomes an OR of its
terms (BM25 ranks segments matching more and rarer terms first); Chinese runs
longer than three characters are split into overlapping trigrams so that words
need not be adjacent in the text. Terms shorter than three characters cannot be
trigram-matched and fall back to a substring scan.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from mmsearch.store.catalog import Catalog

_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_STOP = frozenset(
    {
        *("a", "an", "of", "to", "in", "on", "at", "is", "it", "or", "by", "be", "as", "we"),
        *("the", "and", "for", "with", "that", "this", "from", "are", "was", "were", "has"),
        *("have", "had", "not", "but", "its", "into", "than", "then", "there", "their"),
        *("these", "those", "you", "your", "our", "his", "her", "she", "they", "them"),
        *("who", "what", "which", "when", "where", "how", "all", "any", "can", "will"),
    }
)
"""English function words: matching them says nothing about a text."""


def query_terms(text: str) -> tuple[list[str], list[str]]:
    """(trigram-searchable terms, short terms) of a query text."""
    long: list[str] = []
    short: list[str] = []
    for word in _WORD.findall(text.lower()):
        if _CJK.search(word) and len(word) > 3:
            long += [word[i : i + 3] for i in range(len(word) - 2)]
        elif word in _STOP:
            continue
        elif len(word) >= 3:
            long.append(word)
        else:
            short.append(word)
    return list(dict.fromkeys(long)), list(dict.fromkeys(short))


def fts_expression(terms: Sequence[str]) -> str:
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def lexical_segments(
    catalog: Catalog, text: str, limit: int, where: str = "", params: Sequence[Any] = ()
) -> list[tuple[int, float]]:
    """(segment id, relevance) best first; relevance is BM25 (or a match count for short terms)."""
    long, short = query_terms(text)
    if long:
        return catalog.lexical_search(fts_expression(long), limit, where, params)
    counts: dict[int, float] = {}
    for term in short:
        for sid in catalog.substring_search(term, limit, where, params):
            counts[sid] = counts.get(sid, 0.0) + 1.0
    return sorted(counts.items(), key=lambda kv: -kv[1])[:limit]


DF_CAP = 1_000
"""Documents counted per term at most: past it a word is common, whatever its count."""


def term_weights(catalog: Catalog, words: Sequence[str]) -> dict[str, float]:
    """IDF weight of each query word that some segment text holds.

    ``log((N + 1) / (df + 0.5))`` with ``df`` counted by the full-text index (capped);
    words shorter than a trigram cannot be counted and weigh 1. Words no text holds are
    left out: they say nothing about which text matches (in "the zanzibar lighthouse, a
    red circle" only the first two words can be in a subtitle).
    """
    # The full-text index's own document-size table has one row per text segment.
    row = catalog.conn.execute("SELECT count(*) FROM segments_fts_docsize").fetchone()
    n = int(row[0] or 0)
    out: dict[str, float] = {}
    for w in words:
        if len(w) < 3:
            out[w] = 1.0
            continue
        df = catalog.conn.execute(
            "SELECT count(*) FROM (SELECT rowid FROM segments_fts WHERE segments_fts MATCH ?"
            " LIMIT ?)",
            (fts_expression([w]), DF_CAP),
        ).fetchone()[0]
        if df:
            out[w] = max(0.1, math.log((n + 1) / (int(df) + 0.5)))
    return out
