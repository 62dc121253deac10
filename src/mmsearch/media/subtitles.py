"""Subtitles as timed text: SubRip/WebVTT files, sidecar naming, and streams inside videos.

Cue text is cleaned for search: HTML-like tags (``<i>``, ``<c.x>``, ``<v Bob>``,
inline ``<00:01.000>`` timestamps), ASS override blocks (``{\\an8}``,
``{\\i1}``) and ASS line breaks are removed, entities are unescaped, and lines
are joined with a space. Blocks with a bad timestamp line are skipped, so one
damaged cue does not lose the file. Files may be in any text encoding
:func:`mmsearch.media.text.read_text_file` understands (BOMs, UTF-16,
GB18030, cp1252) and have any line endings.
"""

from __future__ import annotations

import html
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mmsearch._lazy import require
from mmsearch.errors import DecodeError
from mmsearch.media._av import av_reason, open_input, timeline_origin
from mmsearch.media.probe import VIDEO_EXTENSIONS
from mmsearch.media.text import read_text_file

log = logging.getLogger(__name__)

SUBTITLE_EXTENSIONS = (".srt", ".vtt")
MAX_SUBTITLE_BYTES = 20_000_000
NO_CUES = "no subtitle cues found"
TEXT_SUBTITLE_CODECS = frozenset(
    ("subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text", "microdvd", "jacosub")
)
"""Subtitle codecs that carry text (bitmap ones such as DVD/PGS subtitles need OCR)."""

_TIME = re.compile(r"^\s*(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[,.:](\d{1,3}))?\s*$")  # [h:]mm:ss[,.]mmm
_ARROW = re.compile(r"\s*-->\s*")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<\d[\d:.]*>")
_ASS_BLOCK = re.compile(r"\{\\[^{}]*\}")
_ASS_BREAK = re.compile(r"\\[Nnh]")
_SPACES = re.compile(r"\s+")
_LANG_TAG = re.compile(r"^[A-Za-z0-9_-]{1,16}(\.[A-Za-z0-9_-]{1,16})?$")


@dataclass(frozen=True)
class Cue:
    """One subtitle: seconds from the start of the video, and its cleaned text."""

    start: float
    end: float
    text: str


def clean_text(text: str) -> str:
    """Cue text without markup, its lines joined with a space."""
    text = _ASS_BLOCK.sub("", text)
    text = _ASS_BREAK.sub(" ", text)
    text = _TAG.sub("", text)
    text = html.unescape(text).replace("\u00a0", " ")
    return _SPACES.sub(" ", text).strip()


def parse_timestamp(text: str) -> float | None:
    """Seconds for ``01:02:03,456``, ``01:02:03.456``, ``02:03.456`` (WebVTT) or None."""
    m = _TIME.match(text)
    if m is None:
        return None
    hours, minutes, seconds, frac = m.groups()
    if int(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
        return None
    ms = int(frac.ljust(3, "0")) if frac else 0
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + ms / 1000


def _timing(line: str) -> tuple[float, float] | None:
    """(start, end) from a ``start --> end [settings]`` line, or None."""
    parts = _ARROW.split(line.strip(), maxsplit=1)
    if len(parts) != 2:
        return None
    start = parse_timestamp(parts[0])
    end = parse_timestamp(parts[1].split()[0]) if parts[1].split() else None
    if start is None or end is None or end < start:
        return None
    return start, end


def _normalise(text: str) -> str:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _blocks(text: str) -> list[list[str]]:
    return [b.split("\n") for b in re.split(r"\n[ \t]*\n", _normalise(text)) if b.strip()]


def _cues_from_blocks(blocks: Iterable[list[str]]) -> list[Cue]:
    cues = []
    for lines in blocks:
        at = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if at is None or at > 1:  # a cue is [identifier] timing text...
            continue
        timing = _timing(lines[at])
        if timing is None:
            continue
        text = clean_text("\n".join(lines[at + 1 :]))
        if text:
            cues.append(Cue(timing[0], timing[1], text))
    return cues


def parse_srt(text: str) -> list[Cue]:
    """Cues of a SubRip document (blocks of number, timing line, text lines)."""
    return _cues_from_blocks(_blocks(text))


def parse_vtt(text: str) -> list[Cue]:
    """Cues of a WebVTT document (NOTE, STYLE and REGION blocks are skipped)."""
    blocks = _blocks(text)
    if blocks and blocks[0][0].startswith("WEBVTT"):
        header, rest = blocks[0], blocks[1:]
        if any("-->" in line for line in header[1:]):  # no blank line after the header
            rest = [header[1:], *rest]
        blocks = rest
    return _cues_from_blocks(b for b in blocks if not b[0].startswith(("NOTE", "STYLE", "REGION")))


def read_subtitle_file(path: str | os.PathLike[str]) -> list[Cue]:
    """Cues of a ``.srt`` or ``.vtt`` file (chosen by the ``WEBVTT`` header, else the
    extension); :class:`DecodeError` for an unreadable, binary or cue-less file."""
    text = _normalise(read_text_file(path, max_bytes=MAX_SUBTITLE_BYTES))
    is_vtt = text.startswith("WEBVTT") or os.fspath(path).lower().endswith(".vtt")
    cues = parse_vtt(text) if is_vtt else parse_srt(text)
    if not cues:
        raise DecodeError(NO_CUES)
    return cues


# ----------------------------------------------------------------------------- sidecars


def subtitle_sidecars(video_name: str, names: Iterable[str]) -> list[str]:
    """The subtitle files among a folder's ``names`` that belong to ``video_name``.

    ``clip.srt`` and ``clip.vtt`` belong to ``clip.mp4``, and so do names with
    a language or flavour tag: ``clip.en.srt``, ``clip.zh-CN.vtt``,
    ``clip.en.forced.srt``. A tagged name that is exactly another video's
    subtitle (``clip.part2.srt`` next to ``clip.part2.mkv``) is left to it.
    Untagged names come first, then the rest in name order.
    """
    names = list(names)
    stem = os.path.splitext(video_name)[0]
    other_stems = {
        os.path.splitext(n)[0]
        for n in names
        if n != video_name and os.path.splitext(n)[1].lower() in VIDEO_EXTENSIONS
    }
    exact, tagged = [], []
    for name in names:
        base, ext = os.path.splitext(name)
        if ext.lower() not in SUBTITLE_EXTENSIONS:
            continue
        if base == stem:
            exact.append(name)
        elif (
            base.startswith(stem + ".")
            and _LANG_TAG.match(base[len(stem) + 1 :])
            and base not in other_stems
        ):
            tagged.append(name)
    return sorted(exact) + sorted(tagged)


# ----------------------------------------------------------------------------- in containers


def extract_subtitle_streams(path: str | os.PathLike[str]) -> list[Cue]:
    """Cues of the text subtitle streams inside a video (mov_text, SubRip, ASS, WebVTT),
    all streams together in time order; ``[]`` when there are none.

    Damaged subtitle packets are skipped. Raises :class:`DecodeError` only when
    the file cannot be opened.
    """
    with open_input(path) as container:
        streams = [
            s for s in container.streams.subtitles if s.codec_context.name in TEXT_SUBTITLE_CODECS
        ]
        if not streams:
            return []
        origin = timeline_origin(container, streams[0])
        cues = []
        for packet in container.demux(*streams):
            cue = _packet_cue(packet, origin)
            if cue is not None:
                cues.append(cue)
    cues.sort(key=lambda c: (c.start, c.end))
    return cues


def _packet_cue(packet: Any, origin: float) -> Cue | None:
    av = require("av")
    if packet.size == 0 or packet.pts is None or packet.time_base is None:
        return None
    try:
        subs = packet.stream.decode2(packet)
    except av.error.FFmpegError as exc:
        log.debug("skipped a damaged subtitle packet: %s", av_reason(exc))
        return None
    if subs is None:
        return None
    text = clean_text(" ".join(t for t in (_subtitle_text(r) for r in subs) if t))
    if not text:
        return None
    start = float(packet.pts * packet.time_base) - origin
    if packet.duration:
        end = start + float(packet.duration * packet.time_base)
    else:  # no duration in the container: the decoder's display time
        end = start + max(0, subs.end_display_time) / 1000
        start += max(0, subs.start_display_time) / 1000
    return Cue(max(0.0, start), max(0.0, end), text)


def _subtitle_text(sub: Any) -> str:
    """The text of a decoded subtitle rectangle (ASS dialogue, or plain text)."""
    raw = getattr(sub, "dialogue", b"") or getattr(sub, "text", b"") or b""
    return bytes(raw).decode("utf-8", errors="replace")
