"""Formatting for the CLI: hits, ingest reports, library info; text or JSON."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from mmsearch.ingest.report import IngestReport
from mmsearch.search.moments import format_range
from mmsearch.types import Hit


def emit_json(payload: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    json.dump(payload, out, ensure_ascii=False, indent=2, default=str)
    out.write("\n")


def format_hits(hits: list[Hit]) -> str:
    if not hits:
        return "no results"
    lines = []
    for rank, h in enumerate(hits, 1):
        d = h.to_dict()
        best = h.segments[0] if h.segments else None
        where = d["path"]
        if best is not None and best.t_start is not None and best.t_end is not None:
            where += f" @ {format_range(best.t_start, best.t_end)}"
        line = f"{rank:>3}. {h.score:.4f}  {where}"
        for seg in h.segments[1:]:
            if seg.t_start is not None and seg.t_end is not None:
                line += f"\n       also @ {format_range(seg.t_start, seg.t_end)}"
        if best is not None and best.text:
            snippet = " ".join(best.text.split())
            line += f"\n       {best.kind}: {snippet[:120]}{'…' if len(snippet) > 120 else ''}"
        lines.append(line)
    return "\n".join(lines)


def format_report(report: IngestReport, *, max_failures: int = 20) -> str:
    lines = [report.summary()]
    if report.failures:
        lines.append("failures by reason:")
        lines += [f"  {n:>5}  {reason}" for reason, n in report.reasons().items()]
        lines.append("failed files:")
        for f in report.failures[:max_failures]:
            shown = f.path.encode("utf-8", "replace").decode("utf-8")
            lines.append(f"  {shown}: {f.reason}")
        if len(report.failures) > max_failures:
            lines.append(f"  … and {len(report.failures) - max_failures} more (see --json)")
    return "\n".join(lines)


def format_info(info: dict[str, Any]) -> str:
    lines = [f"{k}: {v}" for k, v in info.items() if k not in ("indexes", "recent_failures")]
    for modality, idx in info.get("indexes", {}).items():
        lines.append(f"index[{modality}]: {idx['kind']} {idx['size']} vectors {idx['params']}")
    failures = info.get("recent_failures") or []
    if failures:
        lines.append("recent failures:")
        lines += [f"  {f['path']}: {f['reason']}" for f in failures]
    return "\n".join(lines)
