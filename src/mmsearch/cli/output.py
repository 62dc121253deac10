"""Formatting for the CLI: hits, ingest reports, library info; text or JSON.

Every file name or text from the library that reaches a terminal goes through
:func:`printable`, so a name holding an escape sequence or a newline cannot
repaint the terminal or forge output lines (matched text is escaped before its
words are marked, ``marks.py``). ``--paths`` and ``-0`` write the exact bytes of
each path when piped, for other programs to open. A hit shows its calibrated
score, its evidence (each source that matched, with its score) and the text that
matched; a search whose cut-off left nothing says so and exits with status 1.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from mmsearch.cli.marks import MarkStyle, mark_style, marked
from mmsearch.ingest.report import IngestReport
from mmsearch.media.discover import display_path
from mmsearch.search.moments import format_range
from mmsearch.types import Hit, Hits, SegmentHit


def printable(text: str) -> str:
    """``text`` (a path, a snippet, a message) with control characters and undecodable
    bytes escaped (``\\x1b``, ``\\n``), safe to print on a terminal as one line."""
    return display_path(text)


def emit_json(payload: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    json.dump(payload, out, ensure_ascii=False, indent=2, default=str)
    out.write("\n")


_INDENT = " " * 7
"""Indent of the lines that explain a hit (below its rank line)."""


def format_hits(hits: list[Hit], *, marks: MarkStyle = "brackets") -> str:
    """Ranked hits: rank, calibrated score, item id (for ``--like`` and ``remove``), path
    and moment; below each, its evidence (each source that matched, with its score), the
    matched text with the query's words marked (``marks``), and the near-copies folded in.
    """
    if not hits:
        return "no results"
    id_width = max(len(str(h.item_id)) for h in hits) + 1
    return "\n".join(_hit_lines(rank, h, id_width, marks) for rank, h in enumerate(hits, 1))


def _hit_lines(rank: int, h: Hit, id_width: int, marks: MarkStyle) -> str:
    best = h.segments[0] if h.segments else None
    where = printable(h.path)
    if best is not None and best.t_start is not None and best.t_end is not None:
        where += f" @ {format_range(best.t_start, best.t_end)}"
    lines = [f"{rank:>3}. {h.score:.4f}  {'#' + str(h.item_id):<{id_width}}  {where}"]
    for seg in h.segments[1:]:
        if seg.t_start is not None and seg.t_end is not None:
            lines.append(f"{_INDENT}also @ {format_range(seg.t_start, seg.t_end)}")
    if h.evidence:
        found = ", ".join(f"{printable(e.source or '?')} {e.score:.3f}" for e in h.evidence)
        lines.append(f"{_INDENT}evidence: {found}")
    text = _matched_text(h)
    if text is not None and text.text:
        lines.append(f"{_INDENT}{text.kind}: {marked(text.text, text.highlights, marks)}")
    if h.similar:
        ids = ", ".join(f"#{i}" for i in h.similar)
        lines.append(f"{_INDENT}+{len(h.similar)} similar: {ids}")
    return "\n".join(lines)


def _matched_text(h: Hit) -> SegmentHit | None:
    """The text to show for a hit: the first moment or evidence whose words match the
    query, else the first with any text."""
    texts = [s for s in [*h.segments, *h.evidence] if s.text]
    return next((s for s in texts if s.highlights), texts[0] if texts else None)


def emit_hits(
    hits: list[Hit],
    payload: dict[str, Any],
    *,
    json_out: bool = False,
    paths: bool = False,
    nul: bool = False,
) -> int:
    """Print ``hits`` as JSON (``payload`` plus hits, note, best_below), paths or text.

    Exit status 1 when a cut-off (``min_score``) left nothing: the note "no confident
    match; best was …" goes where the hits would have (stderr with ``--paths``/``-0``).
    """
    note = hits.note() if isinstance(hits, Hits) else None
    best_below = hits.best_below if isinstance(hits, Hits) else None
    if json_out:
        emit_json(
            {
                **payload,
                "hits": [h.to_dict() for h in hits],
                "note": _json_text(note),
                "best_below": best_below.to_dict() if best_below is not None else None,
            }
        )
    elif paths or nul:
        write_paths(hits, nul=nul)
        if note:
            print(f"mmsearch: {printable(note)}", file=sys.stderr)
    elif note:
        print(printable(note))
    else:
        print(format_hits(hits, marks=mark_style(sys.stdout)))
    return 1 if note else 0


def _json_text(text: str | None) -> str | None:
    """``text`` as valid UTF-8: a file name's undecodable bytes become U+FFFD."""
    if text is None:
        return None
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def write_paths(hits: list[Hit], *, nul: bool = False, out: TextIO | None = None) -> None:
    """Only the hits' paths: one a line, or NUL-terminated with ``nul`` (for ``xargs -0``).

    Piped, each path is written as its exact bytes; on a terminal, one path per line
    with control characters escaped.
    """
    out = out or sys.stdout
    buffer = getattr(out, "buffer", None)
    if out.isatty() or buffer is None:
        end = "\0" if nul else "\n"
        out.write("".join(printable(h.path) + end for h in hits))
        out.flush()
        return
    out.flush()
    end_b = b"\0" if nul else b"\n"
    buffer.write(b"".join(os.fsencode(h.path) + end_b for h in hits))
    buffer.flush()


def format_report(report: IngestReport, *, max_failures: int = 20) -> str:
    lines = [report.summary()]
    if report.failures:
        lines.append("failures by reason:")
        lines += [f"  {n:>5}  {printable(reason)}" for reason, n in report.reasons().items()]
        lines.append("failed files:")
        for f in report.failures[:max_failures]:
            lines.append(f"  {printable(f.path)}: {printable(f.reason)}")
        if len(report.failures) > max_failures:
            lines.append(f"  … and {len(report.failures) - max_failures} more (see --json)")
    if report.skips:
        lines.append("skipped by reason (files listed in --json):")
        lines += [f"  {n:>5}  {printable(reason)}" for reason, n in report.skip_reasons().items()]
    if report.reembed_pending:
        lines.append(f"{report.reembed_pending} item(s) still to re-embed: run it again")
    return "\n".join(lines)


def format_info(info: dict[str, Any]) -> str:
    """``key: value`` lines; nested mappings indented below their key, empty ones left out."""
    lines = _info_lines({k: v for k, v in info.items() if k != "recent_failures"}, "")
    failures = info.get("recent_failures") or []
    if failures:
        lines.append("recent failures:")
        lines += [f"  {printable(f['path'])}: {printable(str(f['reason']))}" for f in failures]
    return "\n".join(lines)


def _info_lines(info: dict[str, Any], indent: str) -> list[str]:
    lines: list[str] = []
    for key, value in info.items():
        if value is None or (isinstance(value, (dict, list, tuple)) and not value):
            continue
        if key == "indexes" and isinstance(value, dict):
            lines += [f"{indent}index[{m}]: {_index_text(idx)}" for m, idx in value.items()]
        elif isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines += _info_lines(value, indent + "  ")
        elif isinstance(value, (list, tuple)):
            lines.append(f"{indent}{key}:")
            lines += [f"{indent}  - {_inline(v)}" for v in value]
        else:
            lines.append(f"{indent}{key}: {_inline(value)}")
    return lines


def _index_text(idx: Any) -> str:
    if not isinstance(idx, dict):
        return _inline(idx)
    text = f"{idx.get('kind')}, {idx.get('size')} vectors"
    params = idx.get("params") or {}
    if params:
        text += f" ({_inline(params)})"
    return text


def _inline(value: Any) -> str:
    """One value on one line: mappings as ``k=v, ...``, lists comma-separated."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_inline(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_inline(v) for v in value)
    return printable(str(value))
