"""Formatting for the CLI: hits, ingest reports, library info; text or JSON.

Every file name or text from the library that reaches a terminal goes through
:func:`printable`, so a name holding an escape sequence or a newline cannot
repaint the terminal or forge output lines. ``--paths`` and ``-0`` write the
exact bytes of each path when piped, for other programs to open.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from mmsearch.ingest.report import IngestReport
from mmsearch.media.discover import display_path
from mmsearch.search.moments import format_range
from mmsearch.types import Hit


def printable(text: str) -> str:
    """``text`` (a path, a snippet, a message) with control characters and undecodable
    bytes escaped (``\\x1b``, ``\\n``), safe to print on a terminal as one line."""
    return display_path(text)


def emit_json(payload: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    json.dump(payload, out, ensure_ascii=False, indent=2, default=str)
    out.write("\n")


def format_hits(hits: list[Hit]) -> str:
    """Ranked hits, one line each: rank, score, item id (for ``--like`` and ``remove``), path."""
    if not hits:
        return "no results"
    id_width = max(len(str(h.item_id)) for h in hits) + 1
    lines = []
    for rank, h in enumerate(hits, 1):
        best = h.segments[0] if h.segments else None
        where = printable(h.path)
        if best is not None and best.t_start is not None and best.t_end is not None:
            where += f" @ {format_range(best.t_start, best.t_end)}"
        line = f"{rank:>3}. {h.score:.4f}  {'#' + str(h.item_id):<{id_width}}  {where}"
        for seg in h.segments[1:]:
            if seg.t_start is not None and seg.t_end is not None:
                line += f"\n       also @ {format_range(seg.t_start, seg.t_end)}"
        if best is not None and best.text:
            snippet = printable(" ".join(best.text.split()))
            line += f"\n       {best.kind}: {snippet[:120]}{'…' if len(snippet) > 120 else ''}"
        lines.append(line)
    return "\n".join(lines)


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
