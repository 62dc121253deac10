"""Matched text for the terminal: one line, the query's words marked, escaped.

The engine gives each matched text the character ranges of the query's words
(``SegmentHit.highlights``). Here the text becomes one printable line: runs of
white space collapse to one space, a long text is cut to a window that opens just
before the first marked word, and each piece goes through :func:`printable` *before*
the marks are added, so a text holding an escape sequence cannot repaint the
terminal while our own bold still works. Marks are ANSI bold on a terminal
(unless ``NO_COLOR`` is set) and ``[brackets]`` elsewhere: plain ASCII that
survives pipes, files and any locale.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Literal, TextIO

from mmsearch.media.discover import display_path as printable

MarkStyle = Literal["bold", "brackets"]
BOLD, RESET = "\x1b[1m", "\x1b[0m"
WIDTH = 120
"""Characters of matched text shown per line (before escaping)."""
LEAD = 30
"""Characters kept before the first marked word when a long text is cut."""
_SPACE = re.compile(r"\s+")


def mark_style(out: TextIO) -> MarkStyle:
    """Bold on a terminal that takes colour; brackets otherwise."""
    isatty = getattr(out, "isatty", None)
    tty = bool(isatty and isatty())
    return "bold" if tty and not os.environ.get("NO_COLOR") else "brackets"


def marked(
    text: str,
    ranges: Sequence[tuple[int, int]],
    style: MarkStyle = "brackets",
    width: int = WIDTH,
) -> str:
    """``text`` on one escaped line, at most ``width`` characters of it, ``ranges`` marked."""
    pieces = _window(_collapse(_pieces(text, ranges)), width)
    out = []
    for piece, hit in pieces:
        shown = printable(piece)
        if hit and piece.strip():
            shown = f"{BOLD}{shown}{RESET}" if style == "bold" else f"[{shown}]"
        out.append(shown)
    return "".join(out)


def _pieces(text: str, ranges: Sequence[tuple[int, int]]) -> list[tuple[str, bool]]:
    """``text`` cut at the marked ranges: (piece, marked) in order."""
    out: list[tuple[str, bool]] = []
    at = 0
    for a, b in sorted(ranges):
        a, b = max(a, at), min(b, len(text))
        if b <= a:
            continue
        if a > at:
            out.append((text[at:a], False))
        out.append((text[a:b], True))
        at = b
    if at < len(text):
        out.append((text[at:], False))
    return out


def _collapse(pieces: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """White space runs as one space, none at either end of the whole line."""
    out: list[tuple[str, bool]] = []
    prev_space = True  # drops leading space
    for piece, hit in pieces:
        piece = _SPACE.sub(" ", piece)
        if prev_space and piece.startswith(" "):
            piece = piece[1:]
        if piece:
            prev_space = piece.endswith(" ")
            out.append((piece, hit))
    if out and out[-1][0].endswith(" "):
        last, hit = out[-1]
        out[-1] = (last[:-1], hit)
    return [(p, h) for p, h in out if p]


def _window(pieces: list[tuple[str, bool]], width: int) -> list[tuple[str, bool]]:
    """At most ``width`` characters, opening ``LEAD`` before the first mark; ``…`` where cut."""
    total = sum(len(p) for p, _ in pieces)
    if total <= width:
        return pieces
    first, pos = 0, 0
    for piece, hit in pieces:
        if hit:
            first = pos
            break
        pos += len(piece)
    start = max(0, min(first - LEAD, total - width))
    end = start + width
    out: list[tuple[str, bool]] = [("…", False)] if start > 0 else []
    pos = 0
    for piece, hit in pieces:
        a, b = max(start, pos), min(end, pos + len(piece))
        if a < b:
            out.append((piece[a - pos : b - pos], hit))
        pos += len(piece)
    if end < total:
        out.append(("…", False))
    return out
