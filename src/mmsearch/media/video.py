"""Decode video files: probe them, and sample frames uniformly in time and at shot boundaries.

:class:`VideoFrames` streams a file with PyAV (threaded decoding) and yields
:class:`SampledFrame` s: one at each step of a uniform time grid (``fps``
per second, stretched so a long file yields at most ``max_frames``), plus
one wherever a cheap shot detector sees a cut. Only sampled frames are
converted to RGB, already scaled down by swscale and turned upright, so
memory stays small whatever the resolution or length of the file.

Shot detection reads the luma (and chroma) planes of each decoded frame
directly, on a grid of about 64 points across: the score is FFmpeg's scene
score (mean absolute difference to the previous frame, on a 0-255 scale,
/100; only the rise over the previous difference counts, so steady motion
does not look like a cut), and a cut is a score above ``shot_threshold``.

Damaged packets are skipped (the warning says how many and where); the file
fails with :class:`DecodeError` only when no frame at all can be decoded.
A container without a video track raises :class:`NoVideoStreamError` (a
:class:`DecodeError` whose reason is :data:`NO_VIDEO_STREAM`): ingest can
then try it as audio. Album art attached to audio files is not video.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch._lazy import require
from mmsearch.errors import DecodeError
from mmsearch.media._av import (
    DamageTally,
    av_reason,
    decoded_frames,
    fmt_time,
    is_cover_art,
    open_input,
    pick_stream,
    start_seconds,
    stream_duration,
)

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

NO_VIDEO_STREAM = "no video stream"
NO_VIDEO_FRAMES = "no video frames could be decoded"
SIGNATURE_POINTS = 64
"""Grid points across the longer side of a frame for shot detection."""
_PROBE_PACKETS = 400
"""Packets read while looking for the first frame in :func:`probe_video`."""
_TRANSPOSE = {90: "ROTATE_270", 180: "ROTATE_180", 270: "ROTATE_90"}
"""Clockwise degrees -> PIL transpose (PIL's ROTATE_n turns counter-clockwise)."""


class NoVideoStreamError(DecodeError):
    """The container holds no video track (it may hold audio)."""

    def __init__(self) -> None:
        super().__init__(NO_VIDEO_STREAM)


@dataclass(frozen=True)
class VideoProbe:
    """What a video file holds. ``width``/``height`` are as displayed: rotation and
    pixel aspect ratio applied (the size a sampled frame has before scaling)."""

    duration: float | None
    width: int
    height: int
    fps: float | None
    rotation: int
    """Degrees clockwise to turn the stored picture to show it upright (0/90/180/270)."""
    codec: str
    has_audio: bool
    subtitle_streams: int
    frames: int | None


@dataclass
class SampledFrame:
    """One frame kept from a video."""

    t: float
    """Seconds from the start of the video (from the frame's timestamp, so VFR is right)."""
    image: Image.Image
    """RGB, upright, the longer side at most ``max_side`` (never upscaled)."""
    shot_start: bool
    """True when a shot boundary was detected at this frame (it may also be a uniform
    sample); False for the first frame."""


# ----------------------------------------------------------------------------- probing


def probe_video(path: str | os.PathLike[str]) -> VideoProbe:
    """Probe ``path`` and decode its first frame (so a probed file is known to decode).

    Raises :class:`NoVideoStreamError` when there is no video track, and
    :class:`DecodeError` when the file cannot be opened or no frame decodes.
    """
    with open_input(path) as container:
        stream = video_stream(container)
        first = _first_frame(container, stream)
        rotation = clockwise_rotation(first)
        width, height = _display_size(first.width, first.height, _aspect(stream))
        if rotation in (90, 270):
            width, height = height, width
        rate = stream.average_rate or stream.guessed_rate
        return VideoProbe(
            duration=stream_duration(container, stream),
            width=width,
            height=height,
            fps=float(rate) if rate else None,
            rotation=rotation,
            codec=stream.codec_context.name,
            has_audio=bool(container.streams.audio),
            subtitle_streams=len(container.streams.subtitles),
            frames=int(stream.frames) or None,
        )


def has_video_stream(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has a video track (album art does not count).

    Raises :class:`DecodeError` when the file cannot be opened as media at all.
    """
    with open_input(path) as container:
        return any(not is_cover_art(s) for s in container.streams.video)


def video_stream(container: Any) -> Any:
    """The video stream to decode, or raise :class:`NoVideoStreamError`."""
    stream = pick_stream(s for s in container.streams.video if not is_cover_art(s))
    if stream is None:
        raise NoVideoStreamError()
    return stream


def clockwise_rotation(frame: Any) -> int:
    """Degrees clockwise (0/90/180/270) to show ``frame`` upright, from its display matrix."""
    # PyAV reports the display matrix's counter-clockwise angle in [-180, 180].
    return int(round(-float(frame.rotation) / 90.0)) % 4 * 90


def _first_frame(container: Any, stream: Any) -> Any:
    av = require("av")
    reason = ""
    for n, packet in enumerate(container.demux(stream)):
        if n >= _PROBE_PACKETS:
            break
        try:
            frames = stream.decode(packet)
        except av.error.FFmpegError as exc:
            reason = av_reason(exc)
            continue
        if frames:
            return frames[0]
    raise DecodeError(f"{NO_VIDEO_FRAMES} ({reason})" if reason else NO_VIDEO_FRAMES)


def _aspect(stream: Any) -> Fraction | None:
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return sar if sar and sar > 0 and sar != 1 else None


def _display_size(width: int, height: int, sar: Fraction | None) -> tuple[int, int]:
    if sar is not None:
        width = max(1, round(width * sar))
    return width, height


# ----------------------------------------------------------------------------- sampling


class VideoFrames:
    """Frames sampled from a video, decoded lazily while iterating (bounded memory).

    ``fps``: uniform samples per second; when ``duration * fps > max_frames``
    the interval stretches to ``duration / max_frames``.

    ``shot_threshold``: scene score (0..1) above which a frame starts a new
    shot (None: no detection). A cut between grid points adds a sample, which
    counts against ``max_frames``, when at least ``min_shot_gap`` seconds
    passed since the last kept frame and the budget left still covers the
    uniform samples to the end; a grid sample that falls on a cut is marked
    as a shot start too.

    ``max_side``: the longer side of the images. ``max_duration``: seconds to
    decode from the start (None: all). ``skip_nonref``: let the decoder skip
    frames that no other frame refers to (B-frames): about 1.5x faster on
    typical H.264, and samples and cuts land on the nearest reference frame
    instead; if that leaves no frame at all, the file is decoded again in full.

    The constructor probes the file (:func:`probe_video`); iterating may be
    repeated and fills :attr:`warnings`, :attr:`end_time` and
    :attr:`frames_decoded` afresh. Iterating raises :class:`DecodeError` when
    no frame at all decodes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float = 1.0,
        max_frames: int = 2000,
        shot_threshold: float | None = 0.35,
        min_shot_gap: float = 0.5,
        max_side: int = 512,
        max_duration: float | None = None,
        skip_nonref: bool = True,
    ) -> None:
        if fps <= 0 or max_frames < 1 or max_side < 1:
            raise ValueError("fps, max_frames and max_side must be positive")
        self.path = os.fspath(path)
        self.fps = fps
        self.max_frames = max_frames
        self.shot_threshold = shot_threshold
        self.min_shot_gap = min_shot_gap
        self.max_side = max_side
        self.max_duration = max_duration
        self.skip_nonref = skip_nonref
        self.probe: VideoProbe = probe_video(self.path)
        self.warnings: list[str] = []
        self.end_time: float = 0.0
        self.frames_decoded: int = 0

    @property
    def interval(self) -> float:
        """Seconds between uniform samples."""
        span = self._span()
        step = 1.0 / self.fps
        if span is not None and span * self.fps > self.max_frames:
            step = span / self.max_frames
        return step

    def _span(self) -> float | None:
        d = self.probe.duration
        if self.max_duration is not None:
            d = self.max_duration if d is None else min(d, self.max_duration)
        return d

    def __iter__(self) -> Iterator[SampledFrame]:
        kept = yield from self._pass(skip_nonref=self.skip_nonref)
        if kept == 0 and self.skip_nonref:  # a stream whose every frame counts as skippable
            kept = yield from self._pass(skip_nonref=False)
        self._check_end(kept)

    def _pass(self, *, skip_nonref: bool) -> Generator[SampledFrame, None, int]:
        self.warnings = []
        self.end_time = 0.0
        self.frames_decoded = 0
        with open_input(self.path) as container:
            stream = video_stream(container)
            stream.thread_type = "AUTO"
            if skip_nonref:
                stream.codec_context.skip_frame = "NONREF"
            return (yield from self._sample(container, stream))

    def _sample(self, container: Any, stream: Any) -> Generator[SampledFrame, None, int]:
        detector = _ShotDetector() if self.shot_threshold is not None else None
        convert = _Converter(self.max_side, _aspect(stream))
        span, step = self._span(), self.interval
        next_t, last_kept, kept, corrupt = 0.0, -math.inf, 0, 0
        damage = DamageTally()
        for frame, t in self._decoded(container, stream, damage):
            score = detector.score(frame) if detector is not None else 0.0
            if frame.is_corrupt:
                corrupt += 1
                continue
            cut = kept > 0 and score > (self.shot_threshold or 0.0)
            on_grid = t >= next_t - 1e-6
            extra = (  # a sample off the grid, for the cut
                cut
                and not on_grid
                and t - last_kept >= self.min_shot_gap - 1e-6
                and kept + 1 + _samples_between(t + step, span, step) <= self.max_frames
            )
            if not (on_grid or extra):
                continue
            if kept >= self.max_frames:
                self.warnings.append(
                    f"stopped at {fmt_time(t)}: reached max_frames={self.max_frames}"
                )
                break
            yield SampledFrame(t=t, image=convert(frame), shot_start=cut)
            kept, last_kept = kept + 1, t
            next_t = t + step if extra else _next_grid_time(t, step)
        warning = damage.warning()
        if warning:
            self.warnings.append(warning)
        if corrupt:
            self.warnings.append(f"left out {corrupt} damaged frame{'s' * (corrupt > 1)}")
        return kept

    def _decoded(
        self, container: Any, stream: Any, damage: DamageTally
    ) -> Iterator[tuple[Any, float]]:
        """(frame, seconds from the start) for every decodable frame; damage is skipped."""
        origin = start_seconds(stream)
        rate = stream.average_rate or stream.guessed_rate
        default_step = 1.0 / float(rate) if rate else 0.04
        last_t = -default_step
        for frame in decoded_frames(
            container, stream, damage, self.warnings, lambda: self.end_time, "the frames"
        ):
            t = last_t + default_step if frame.time is None else frame.time - origin
            t = max(0.0, t)
            if self.max_duration is not None and t >= self.max_duration:
                return
            duration = (
                float(frame.duration * frame.time_base)
                if frame.duration and frame.time_base is not None
                else default_step
            )
            last_t = t
            self.frames_decoded += 1
            self.end_time = max(self.end_time, t + duration)
            yield frame, t

    def _check_end(self, kept: int) -> None:
        if kept == 0:
            raise DecodeError(
                f"{NO_VIDEO_FRAMES} ({self.warnings[-1]})" if self.warnings else NO_VIDEO_FRAMES
            )
        duration = self._span()
        if duration and self.end_time < 0.9 * duration - 1.0 and not self._stopped_early():
            self.warnings.append(
                f"video ends at {fmt_time(self.end_time)} but the file says it lasts "
                f"{fmt_time(duration)} (truncated or damaged?)"
            )
        for w in self.warnings:
            log.info("%s: %s", self.path, w)

    def _stopped_early(self) -> bool:
        return any(w.startswith("stopped at") for w in self.warnings)


def _next_grid_time(t: float, step: float) -> float:
    """The first point of the uniform grid after ``t`` (at least half a step away)."""
    n = math.floor(t / step + 1e-6) + 1
    nxt = n * step
    return nxt + step if nxt - t < step / 2 else nxt


def _samples_between(start: float, end: float | None, step: float) -> int:
    """Uniform samples still due from ``start`` up to ``end`` (0 when the end is unknown)."""
    if end is None or start >= end:
        return 0
    return math.ceil((end - start) / step - 1e-6)


def load_clip_frames(
    path: str | os.PathLike[str], *, fps: float = 1.0, max_frames: int = 64, max_side: int = 512
) -> list[SampledFrame]:
    """All frames sampled uniformly from a short clip (a query by video)."""
    frames = VideoFrames(
        path, fps=fps, max_frames=max_frames, max_side=max_side, shot_threshold=None
    )
    return list(frames)


# ----------------------------------------------------------------------------- conversion


class _Converter:
    """Decoded frame -> small upright RGB PIL image, scaled by swscale during conversion."""

    def __init__(self, max_side: int, sar: Fraction | None) -> None:
        av = require("av")
        self.max_side = max_side
        self.sar = sar
        self.reformatter = av.video.reformatter.VideoReformatter()

    def __call__(self, frame: Any) -> Image.Image:
        width, height = _display_size(frame.width, frame.height, self.sar)
        scale = min(1.0, self.max_side / max(width, height))
        rgb = self.reformatter.reformat(
            frame,
            width=max(1, round(width * scale)),
            height=max(1, round(height * scale)),
            format="rgb24",
            interpolation="AREA" if scale < 0.5 else "BILINEAR",
            src_color_range=frame.color_range,
            dst_color_range="JPEG",
        )
        image = rgb.to_image()
        turn = _TRANSPOSE.get(clockwise_rotation(frame))
        if turn is not None:
            from PIL import Image

            image = image.transpose(getattr(Image.Transpose, turn))
        return image


# ----------------------------------------------------------------------------- shots


class _ShotDetector:
    """FFmpeg-style scene score on a small grid of luma/chroma samples of each frame."""

    def __init__(self) -> None:
        self.prev: list[np.ndarray] | None = None
        self.prev_diff = 0.0
        self.fallback: Any = None

    def score(self, frame: Any) -> float:
        sig = self._signature(frame)
        prev, self.prev = self.prev, sig
        if prev is None or [p.shape for p in prev] != [s.shape for s in sig]:
            self.prev_diff = 0.0
            return 0.0
        diffs = [float(np.mean(np.abs(a - b))) for a, b in zip(sig, prev, strict=True)]
        # Luma, or chroma when it changed more (a cut between scenes of equal brightness).
        diff = max(diffs[0], float(np.mean(diffs[1:]))) if len(diffs) > 1 else diffs[0]
        rise = abs(diff - self.prev_diff)
        self.prev_diff = diff
        return min(1.0, min(diff, rise) / 100.0)

    def _signature(self, frame: Any) -> list[np.ndarray]:
        fmt = frame.format
        comps = fmt.components
        planar = fmt.is_planar or len(comps) == 1  # FFmpeg does not call "gray" planar
        if not (planar and comps and comps[0].is_luma and comps[0].plane == 0):
            return [self._gray(frame)]
        planes = [0]
        if len(comps) >= 3 and comps[1].plane == 1 and comps[2].plane == 2:
            planes += [1, 2]
        bits = comps[0].bits
        dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype(">u2" if fmt.is_big_endian else "<u2")
        return [_plane_grid(frame.planes[i], dtype, bits) for i in planes]

    def _gray(self, frame: Any) -> np.ndarray:
        """RGB, packed YUV, palette...: let swscale make a tiny grey picture."""
        av = require("av")
        if self.fallback is None:
            self.fallback = av.video.reformatter.VideoReformatter()
        longer = max(frame.width, frame.height)
        w = max(1, frame.width * SIGNATURE_POINTS // longer)
        h = max(1, frame.height * SIGNATURE_POINTS // longer)
        small = self.fallback.reformat(frame, width=w, height=h, format="gray")
        return _plane_grid(small.planes[0], np.dtype(np.uint8), 8, points=10**6)


def _plane_grid(
    plane: Any, dtype: np.dtype[Any], bits: int, points: int = SIGNATURE_POINTS
) -> np.ndarray:
    """Every k-th sample of a plane in both directions (about ``points`` across), 0-255."""
    width, height = plane.width, plane.height
    row = plane.line_size // dtype.itemsize
    data = np.frombuffer(plane, dtype=dtype, count=row * height).reshape(height, row)
    step = max(1, max(width, height) // points)
    grid = data[::step, :width:step].astype(np.float32)
    if bits > 8:
        grid *= 255.0 / ((1 << bits) - 1)
    return grid
