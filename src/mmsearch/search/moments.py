"""Moments: the matching stretches of a time-coded item (video, recording).

A search returns single segments (a sampled frame, an audio window, a subtitle
cue), each with its evidence (the calibrated strength of the match, summed over
the sources that found it). Neighbouring matches of one item are one moment to a user, so segments
whose time ranges touch or overlap (within ``gap`` seconds) merge into one
span scored by its best segment. Only close runners-up merge: a segment with less
than ``keep`` times the item's best evidence, or in the lower three quarters of the
range between the item's best and worst matching segments, is a weaker match, not
part of the moment (otherwise every frame of a video, all adjacent, would merge
into one span covering the whole video); it stays listed on its own. Segments without
times (a photo, a text chunk) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mmsearch.types import SegmentHit

MERGE_GAP_S = 1.0
"""Matches at most this far apart in time become one moment."""
MOMENT_KEEP = 0.95
"""A segment joins a moment when it scores at least this share of the item's best..."""
SPREAD_KEEP = 0.25
"""... and lies within this top fraction of the item's score range."""


def merge_moments(
    segments: Sequence[SegmentHit], gap: float = MERGE_GAP_S, keep: float = MOMENT_KEEP
) -> list[SegmentHit]:
    """Merge touching time ranges of strong matches; return moments and the other
    segments, best first."""
    best = max((_strength(s) for s in segments), default=0.0)
    worst = min((_strength(s) for s in segments), default=0.0)
    floor = max(best * keep if best > 0 else best, best - SPREAD_KEEP * (best - worst))
    strong = [s for s in segments if _strength(s) >= floor]
    timed = sorted(
        (s for s in strong if s.t_start is not None and s.t_end is not None),
        key=lambda s: (s.t_start, s.t_end),
    )
    untimed = [s for s in segments if s not in timed]
    merged: list[SegmentHit] = []
    for seg in timed:
        last = merged[-1] if merged else None
        if last is not None and seg.t_start <= last.t_end + gap:  # type: ignore[operator]
            top = seg if _strength(seg) > _strength(last) else last
            merged[-1] = replace(
                top,
                t_start=last.t_start,
                t_end=max(last.t_end, seg.t_end),  # type: ignore[type-var]
                text=_join_text(last.text, seg.text),
            )
        else:
            merged.append(seg)
    return sorted(merged + untimed, key=lambda s: -_strength(s))


def _strength(s: SegmentHit) -> float:
    return s.evidence if s.evidence is not None else s.score


def _join_text(a: str | None, b: str | None) -> str | None:
    if not a:
        return b
    if not b or b in a:
        return a
    return f"{a} {b}"


def format_timestamp(seconds: float) -> str:
    """``HH:MM:SS`` (``HH:MM:SS.s`` below a minute's precision is not needed for display)."""
    total = max(0, int(round(seconds)))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


def format_range(t_start: float, t_end: float) -> str:
    return f"{format_timestamp(t_start)}–{format_timestamp(t_end)}"
