"""PyAV helpers shared by the video, audio and subtitle decoders.

Opening a file (with short, user-facing reasons when it cannot be opened),
choosing a stream, turning packet timestamps into seconds from the start,
and keeping a tally of damaged packets so that decoders can go on past them
and say so in one warning.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mmsearch._lazy import require
from mmsearch.errors import DecodeError
from mmsearch.media._io import os_error_reason, stat_regular

NOT_MEDIA = "not a media file, or too damaged to open"
NO_MEDIA_DATA = "no media data: the file ends after its header"
TRUNCATED_MP4 = "truncated MP4/MOV file: no 'moov' index (the file was not completely written)"

_ISO_BOX_LIMIT = 10_000
"""Top-level boxes to walk before giving up looking for 'moov'."""


def open_input(path: str | os.PathLike[str]) -> Any:
    """Open ``path`` with PyAV for reading, or raise :class:`DecodeError` with a short reason."""
    av = require("av")
    st = stat_regular(path)
    if st.st_size == 0:
        raise DecodeError("empty file")
    try:
        return av.open(os.fspath(path), mode="r", metadata_errors="replace")
    except av.error.InvalidDataError as exc:
        raise DecodeError(_unopenable_reason(path)) from exc
    except av.error.EOFError as exc:
        raise DecodeError(NO_MEDIA_DATA) from exc
    except av.error.FFmpegError as exc:
        raise DecodeError(f"cannot open media file ({av_reason(exc)})") from exc
    except OSError as exc:
        raise DecodeError(os_error_reason(exc)) from exc


def av_reason(exc: BaseException) -> str:
    """A short reason for an FFmpeg error (its message without the errno and call name)."""
    reason = getattr(exc, "strerror", None)
    return str(reason) if reason else (str(exc) or type(exc).__name__)


def _unopenable_reason(path: str | os.PathLike[str]) -> str:
    try:
        with open(path, "rb") as fh:
            if fh.read(12)[4:8] == b"ftyp" and not _iso_has_box(fh, b"moov"):
                return TRUNCATED_MP4
    except OSError as exc:
        return os_error_reason(exc)
    return NOT_MEDIA


def _iso_has_box(fh: Any, kind: bytes) -> bool:
    """Whether an ISO base media file (MP4, MOV) has a top-level box ``kind``.

    Walks box headers only, so it is cheap on a large file.
    """
    fh.seek(0)
    pos = 0
    for _ in range(_ISO_BOX_LIMIT):
        fh.seek(pos)
        header = fh.read(16)
        if len(header) < 8:
            return False
        size, box = struct.unpack(">I4s", header[:8])
        if box == kind:
            return True
        if size == 1 and len(header) == 16:
            size = struct.unpack(">Q", header[8:16])[0]
        elif size == 0:  # the box runs to the end of the file
            return False
        if size < 8:
            return False
        pos += size
    return False


def is_cover_art(stream: Any) -> bool:
    """Whether a video stream is only a picture attached to audio (album art)."""
    av = require("av")
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def pick_stream(streams: Any) -> Any | None:
    """The stream to decode among ``streams``: the one marked default, else the first."""
    av = require("av")
    streams = list(streams)
    for s in streams:
        if s.disposition & av.stream.Disposition.default:
            return s
    return streams[0] if streams else None


def start_seconds(stream: Any) -> float:
    """The time the stream starts at, in seconds (0 when the container does not say)."""
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def timeline_origin(container: Any, stream: Any) -> float:
    """Time zero for ``stream``: the video's start when there is a video (so sound,
    subtitles and frames share one timeline), else the stream's own start."""
    video = [s for s in container.streams.video if not is_cover_art(s)]
    return start_seconds(video[0] if video else stream)


def stream_duration(container: Any, stream: Any) -> float | None:
    """The stream's duration in seconds, else the container's, else None."""
    if stream.duration and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return float(container.duration) / 1_000_000
    return None


def fmt_time(t: float) -> str:
    """``HH:MM:SS.s`` for warnings."""
    t = max(0.0, t)
    hours, rest = divmod(t, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{seconds:04.1f}"


@dataclass
class DamageTally:
    """Damaged packets met while decoding, summed up in one warning."""

    count: int = 0
    consecutive: int = 0
    first_t: float = 0.0
    last_t: float = 0.0
    reason: str = ""

    def error(self, t: float, exc: BaseException) -> None:
        if self.count == 0:
            self.first_t, self.reason = t, av_reason(exc)
        self.count += 1
        self.consecutive += 1
        self.last_t = t

    def ok(self) -> None:
        self.consecutive = 0

    def warning(self) -> str | None:
        if not self.count:
            return None
        where = fmt_time(self.first_t)
        if self.last_t > self.first_t:
            where += f"-{fmt_time(self.last_t)}"
        plural = "s" if self.count > 1 else ""
        return f"skipped {self.count} damaged packet{plural} at {where}: {self.reason}"


MAX_CONSECUTIVE_ERRORS = 500
"""Damaged packets in a row after which decoding gives up (keeping what came before)."""


def decoded_frames(
    container: Any,
    stream: Any,
    damage: DamageTally,
    warnings: list[str],
    position: Callable[[], float],
    kept: str,
) -> Iterator[Any]:
    """Every frame of ``stream``, decoded packet by packet.

    A damaged packet is tallied in ``damage`` and skipped; a demuxing error, or
    :data:`MAX_CONSECUTIVE_ERRORS` damaged packets in a row, ends decoding with a
    warning (``kept`` names what was kept, e.g. "the sound"). ``position()`` is the
    current time in seconds, for the messages.
    """
    av = require("av")
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:
            warnings.append(
                f"decoding stopped at {fmt_time(position())}: {av_reason(exc)}; kept {kept} before"
            )
            return
        try:
            frames = stream.decode(packet)
        except av.error.FFmpegError as exc:
            damage.error(position(), exc)
            if damage.consecutive >= MAX_CONSECUTIVE_ERRORS:
                warnings.append(
                    f"decoding stopped at {fmt_time(position())}: too many damaged packets"
                )
                return
            continue
        damage.ok()
        yield from frames
