"""Read text files in whatever encoding they came in, and cut text into chunks to embed.

:func:`read_text_file` accepts UTF-8 (with or without BOM), UTF-16/32 with a
BOM, BOM-less UTF-16, GB18030 (Chinese) and falls back to cp1252; it refuses
empty, oversized and binary files with a :class:`DecodeError`.

:func:`chunk_text` splits text at paragraph, line, sentence (English and
Chinese punctuation), clause and word boundaries, in that order of preference,
so that each chunk fits a model's context. Each chunk's ``text`` is exactly
``text[start:end]``; only whitespace between chunks is left out.
"""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass
from itertools import pairwise

from mmsearch.errors import DecodeError
from mmsearch.media._io import os_error_reason, stat_regular

TEXT_EXTENSIONS = (".txt", ".md", ".markdown", ".rst")
EMPTY_TEXT = "empty text file"
"""The :class:`DecodeError` reason for a file with nothing but whitespace."""

_BINARY_SNIFF_BYTES = 8192
_HEURISTIC_SAMPLE_BYTES = 65536
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class TextChunk:
    """A piece of a text: ``text == source[start:end]``."""

    start: int
    end: int
    text: str


# ----------------------------------------------------------------------------- reading


def read_text_file(path: str | os.PathLike[str], *, max_bytes: int = 5_000_000) -> str:
    """Return the decoded text of ``path`` with newlines normalised to ``\\n``."""
    data = _read_bytes(path, max_bytes)
    if not data.strip():
        raise DecodeError(EMPTY_TEXT)
    text = decode_text(data)
    if not text.strip():
        raise DecodeError(EMPTY_TEXT)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_bytes(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    try:
        st = stat_regular(path)
        if st.st_size > max_bytes:
            raise DecodeError(f"text file too large ({_mb(st.st_size)} MB > {_mb(max_bytes)} MB)")
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise DecodeError(os_error_reason(exc)) from exc
    if len(data) > max_bytes:  # the file grew since it was measured
        raise DecodeError(f"text file too large (> {_mb(max_bytes)} MB)")
    return data


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f}".rstrip("0").rstrip(".")


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding; raise :class:`DecodeError` for binary data."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    head = data[:_BINARY_SNIFF_BYTES]
    if b"\x00" in head:
        utf16 = _bomless_utf16(head)
        if utf16 is None:
            raise DecodeError("binary content, not text")
        return data.decode(utf16, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _looks_like_gb18030(data[:_HEURISTIC_SAMPLE_BYTES]):
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            pass
    return data.decode("cp1252", errors="replace")


def _bomless_utf16(head: bytes) -> str | None:
    """UTF-16 without a BOM: mostly-Latin text has a NUL in every other byte, and
    decodes to printable characters. Anything else with NULs is binary."""
    n = len(head) - len(head) % 2
    if n < 4:
        return None
    half = n // 2
    even_nuls, odd_nuls = head[0:n:2].count(0), head[1:n:2].count(0)
    if odd_nuls >= 0.5 * half and even_nuls == 0:
        codec = "utf-16-le"
    elif even_nuls >= 0.5 * half and odd_nuls == 0:
        codec = "utf-16-be"
    else:
        return None
    sample = head[:n].decode(codec, errors="replace")
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\t\n\r\f")
    return codec if controls <= 0.01 * len(sample) else None


def _looks_like_gb18030(sample: bytes) -> bool:
    """Whether non-UTF-8 bytes read as Chinese rather than as Western accented letters.

    GB18030 accepts most byte strings, but in real Chinese text nearly every
    two-byte character has a trail byte >= 0xA1 (the GB2312 area), while
    cp1252 text read as GB18030 pairs an accented letter with the ASCII letter
    after it (trail byte < 0x80).
    """
    text = sample.decode("gb18030", errors="ignore")
    wide = [c for c in text if ord(c) >= 0x80]
    if not wide:
        return False
    common = 0
    for c in wide:
        encoded = c.encode("gb18030")
        if len(encoded) == 2 and encoded[1] >= 0xA1:
            common += 1
    return common >= 0.8 * len(wide)


# ----------------------------------------------------------------------------- chunking

# Boundaries in order of preference; a piece ends where a match ends.
_LEVELS = (
    re.compile(r"\n[ \t\r\f\v]*\n\s*"),  # paragraph
    re.compile(r"\n\s*"),  # line
    re.compile(r"[.!?]+[\"'”’)\]]*\s+|[。！？；…!?]+[」』”’）)]*\s*"),  # sentence
    re.compile(r"[,;:]\s+|[，、；：]\s*"),  # clause
    re.compile(r"\s+"),  # word
)


def chunk_text(text: str, *, max_chars: int = 300, overlap_chars: int = 0) -> list[TextChunk]:
    """Split ``text`` into chunks of at most ``max_chars`` characters.

    Splits prefer paragraph, then line, sentence, clause and word boundaries;
    a run with none of them is cut hard. With ``overlap_chars``, each chunk
    after the first also starts up to that many characters before the end of
    the previous one (from a word boundary where the overlap has one).
    """
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    if not 0 <= overlap_chars < max_chars:
        raise ValueError("overlap_chars must be >= 0 and < max_chars")
    spans = _split(text, 0, len(text), max_chars - overlap_chars, 0)
    chunks = []
    for start, end in spans:
        start, end = _trim(text, start, end)
        if start < end:
            chunks.append(TextChunk(start, end, text[start:end]))
    if overlap_chars:
        chunks = _add_overlap(text, chunks, overlap_chars)
    return chunks


def _split(text: str, start: int, end: int, limit: int, level: int) -> list[tuple[int, int]]:
    if end - start <= limit:
        return [(start, end)]
    if level >= len(_LEVELS):
        return [(i, min(i + limit, end)) for i in range(start, end, limit)]
    out: list[tuple[int, int]] = []
    cur: tuple[int, int] | None = None
    for piece in _pieces(text, start, end, _LEVELS[level]):
        if cur is not None and piece[1] - cur[0] <= limit:
            cur = (cur[0], piece[1])
            continue
        if cur is not None:
            out.append(cur)
        if piece[1] - piece[0] > limit:
            out.extend(_split(text, piece[0], piece[1], limit, level + 1))
            cur = None
        else:
            cur = piece
    if cur is not None:
        out.append(cur)
    return out


def _pieces(text: str, start: int, end: int, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` after each match of ``pattern``."""
    cuts = [m.end() for m in pattern.finditer(text, start, end) if start < m.end() < end]
    bounds = [start, *cuts, end]
    return [(a, b) for a, b in pairwise(bounds) if a < b]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _add_overlap(text: str, chunks: list[TextChunk], overlap: int) -> list[TextChunk]:
    out = chunks[:1]
    for prev, chunk in pairwise(chunks):
        start = max(prev.start, chunk.start - overlap)
        if start > 0 and not text[start - 1].isspace():  # do not start mid-word
            gap = re.search(r"\s", text[start : chunk.start])
            if gap is not None:
                start += gap.end()
        start, _ = _trim(text, start, chunk.end)
        out.append(TextChunk(start, chunk.end, text[start : chunk.end]))
    return out
