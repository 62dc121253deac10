"""Decode audio (from audio files or the sound track of a video) as mono float32, streaming.

:class:`AudioChunks` decodes with PyAV and resamples with swresample to the
rate a model wants, yielding fixed-length chunks, so memory stays the same
for a 3-minute song or a 10-hour recording. :func:`windows` cuts a chunk
stream into overlapping windows to embed; :func:`load_audio` reads a whole
(short) clip for a query.

Damaged packets are skipped and counted in :attr:`AudioChunks.warnings`;
only a file with no audio samples at all is a :class:`DecodeError`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mmsearch._lazy import require
from mmsearch.errors import DecodeError
from mmsearch.media._av import (
    DamageTally,
    decoded_frames,
    fmt_time,
    open_input,
    pick_stream,
    start_seconds,
    stream_duration,
    timeline_origin,
)

log = logging.getLogger(__name__)

Samples = NDArray[np.float32]
"""Mono samples in [-1, 1]."""

NO_AUDIO_STREAM = "no audio stream"
NO_AUDIO_SAMPLES = "no audio samples"
_MAX_GAP_WARNINGS = 5
GAP_S = 0.5
"""Missing sound (by the timestamps) longer than this starts a chunk at the new time."""


@dataclass(frozen=True)
class AudioProbe:
    """What an audio track holds (as stored, before resampling)."""

    duration: float | None
    sample_rate: int
    channels: int
    codec: str


def probe_audio(path: str | os.PathLike[str]) -> AudioProbe:
    """Probe the audio track of ``path`` (an audio file, or a video with sound).

    Raises :class:`DecodeError` ("no audio stream", or why the file cannot be opened).
    """
    with open_input(path) as container:
        stream = audio_stream(container)
        return _probe(container, stream)


def _probe(container: Any, stream: Any) -> AudioProbe:
    ctx = stream.codec_context
    return AudioProbe(
        duration=stream_duration(container, stream),
        sample_rate=int(ctx.sample_rate or 0),
        channels=int(ctx.channels or 0),
        codec=ctx.name,
    )


def audio_stream(container: Any) -> Any:
    """The audio stream to decode: the default one, else the first."""
    stream = pick_stream(container.streams.audio)
    if stream is None:
        raise DecodeError(NO_AUDIO_STREAM)
    return stream


class AudioChunks:
    """``(t0 seconds, mono float32 samples)`` chunks of ``chunk_seconds`` (the last may be
    shorter) at ``sample_rate``, decoded lazily while iterating.

    ``max_duration``: seconds of sound to decode (None: all). After
    iterating, :attr:`duration_decoded` is the seconds of sound yielded and
    :attr:`warnings` says what was skipped. Where damage leaves a hole in the
    timestamps (over :data:`GAP_S`), the chunk before it ends early and the
    next starts at the new time, so times stay true. Iterating raises
    :class:`DecodeError` ("no audio samples") when nothing decodes. The
    constructor probes the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sample_rate: int,
        chunk_seconds: float = 30.0,
        max_duration: float | None = None,
    ) -> None:
        if sample_rate <= 0 or chunk_seconds <= 0:
            raise ValueError("sample_rate and chunk_seconds must be positive")
        self.path = os.fspath(path)
        self.sample_rate = sample_rate
        self.chunk_samples = max(1, round(chunk_seconds * sample_rate))
        self.max_samples = None if max_duration is None else round(max_duration * sample_rate)
        self.probe: AudioProbe = probe_audio(self.path)
        self.warnings: list[str] = []
        self.duration_decoded: float = 0.0
        self.gaps = 0

    def __iter__(self) -> Iterator[tuple[float, Samples]]:
        self.warnings = []
        self.duration_decoded = 0.0
        self.gaps = 0
        damage = DamageTally()
        out = _Chunker(self.sample_rate, self.chunk_samples, self.max_samples)
        with open_input(self.path) as container:
            stream = audio_stream(container)
            for t, samples in self._resampled(container, stream, damage):
                if out.start is None:
                    out.start = t
                elif t - out.end > GAP_S:  # sound missing: a new time origin
                    self._gap(out.end, t)
                    yield from out.flush()
                    out.start = t
                yield from out.push(samples)
                if out.full:
                    break
            yield from out.flush()
        self.duration_decoded = out.emitted / self.sample_rate
        warning = damage.warning()
        if warning:
            self.warnings.append(warning)
        self._finish(out.emitted, out.end)

    def _gap(self, at: float, resume: float) -> None:
        self.gaps += 1
        if self.gaps <= _MAX_GAP_WARNINGS:
            self.warnings.append(
                f"{resume - at:.1f} s of sound missing at {fmt_time(at)} (damaged data?)"
            )

    def _finish(self, emitted: int, end: float) -> None:
        if emitted == 0 and self.max_samples != 0:
            reason = f"{NO_AUDIO_SAMPLES} ({self.warnings[-1]})" if self.warnings else ""
            raise DecodeError(reason or NO_AUDIO_SAMPLES)
        if self.gaps > _MAX_GAP_WARNINGS:
            self.warnings.append(f"sound missing in {self.gaps} places in all")
        expected = self.probe.duration
        if self.max_samples is not None and expected is not None:
            expected = min(expected, self.max_samples / self.sample_rate)
        if expected and end < 0.9 * expected - 1.0:
            self.warnings.append(
                f"sound ends at {fmt_time(end)} but the file says it lasts "
                f"{fmt_time(expected)} (truncated or damaged?)"
            )
        for w in self.warnings:
            log.info("%s: %s", self.path, w)

    def _resampled(
        self, container: Any, stream: Any, damage: DamageTally
    ) -> Iterator[tuple[float, Samples]]:
        """(start time of the first frame, samples) for each resampled frame."""
        av = require("av")
        resampler: Any = None
        setup = None
        origin = timeline_origin(container, stream)
        for t, frame in self._frames(container, stream, damage):
            frame_setup = (frame.format.name, frame.layout.name, frame.sample_rate)
            if frame_setup != setup:  # a new resampler when the track changes layout mid-way
                if resampler is not None:
                    for out in resampler.resample(None):
                        yield max(0.0, t - origin), _mono(out)
                resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sample_rate)
                setup = frame_setup
            for out in resampler.resample(frame):
                yield max(0.0, t - origin), _mono(out)
        if resampler is not None:
            for out in resampler.resample(None):
                yield 0.0, _mono(out)

    def _frames(
        self, container: Any, stream: Any, damage: DamageTally
    ) -> Generator[tuple[float, Any], None, None]:
        position = [start_seconds(stream)]  # read by the warnings as decoding goes on
        for frame in decoded_frames(
            container, stream, damage, self.warnings, lambda: position[0], "the sound"
        ):
            t = frame.time if frame.time is not None else position[0]
            position[0] = t + frame.samples / max(1, frame.sample_rate)
            yield t, frame


class _Chunker:
    """Gathers resampled frames into chunks of a fixed length, keeping their times."""

    def __init__(self, rate: int, chunk: int, limit: int | None) -> None:
        self.rate, self.chunk, self.limit = rate, chunk, limit
        self.start: float | None = None  # time of the first buffered sample
        self.parts: list[Samples] = []
        self.size = 0
        self.emitted = 0

    @property
    def end(self) -> float:
        """The time just after the last sample taken in."""
        return (self.start or 0.0) + self.size / self.rate

    @property
    def full(self) -> bool:
        return self.limit is not None and self.emitted + self.size >= self.limit

    def push(self, samples: Samples) -> Iterator[tuple[float, Samples]]:
        if self.limit is not None:
            samples = samples[: max(0, self.limit - self.emitted - self.size)]
        self.parts.append(samples)
        self.size += len(samples)
        while self.size >= self.chunk:
            yield self._take(self.chunk)

    def flush(self) -> Iterator[tuple[float, Samples]]:
        if self.size:
            yield self._take(self.size)

    def _take(self, n: int) -> tuple[float, Samples]:
        joined = np.concatenate(self.parts) if len(self.parts) > 1 else self.parts[0]
        head, rest = joined[:n], joined[n:]
        self.parts, self.size = ([rest] if len(rest) else []), len(rest)
        t = self.start or 0.0
        self.start = t + n / self.rate
        self.emitted += n
        return t, np.clip(head, -1.0, 1.0)


def _mono(frame: Any) -> Samples:
    return frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)


def windows(
    chunks: Iterable[tuple[float, Samples]],
    *,
    sample_rate: int,
    window_s: float,
    hop_s: float,
    min_s: float = 1.0,
) -> Iterator[tuple[float, float, Samples]]:
    """Overlapping ``(t_start, t_end, samples)`` windows over a chunk stream.

    Windows start every ``hop_s`` seconds and last ``window_s``. At the end, a
    shorter window (the sound from the next start on) is kept when at least
    ``min_s`` of it was in no earlier window; it is not padded (the encoder
    pads). So a clip shorter than ``min_s`` yields nothing. Times follow each
    chunk's ``t0`` and the sample count; a chunk that does not start where the
    last one ended (a hole in the sound) closes the run of windows the same way
    and starts a new one. Memory: one window plus a chunk.
    """
    if window_s <= 0 or hop_s <= 0:
        raise ValueError("window_s and hop_s must be positive")
    size = max(1, round(window_s * sample_rate))
    hop = max(1, round(hop_s * sample_rate))
    min_size = max(1, math.ceil(min_s * sample_rate - 1e-6))
    tolerance = max(0.05, 2 / sample_rate)
    buf = np.zeros(0, np.float32)
    base: float | None = None  # time of sample 0 of the current run
    start = 0  # index of buf[0] in the current run
    covered = 0  # samples of the run covered by windows already yielded
    for t0, chunk in chunks:
        if base is not None and abs(t0 - (base + (start + len(buf)) / sample_rate)) > tolerance:
            if len(buf) and start + len(buf) - max(covered, start) >= min_size:  # a hole
                yield _window(base, start, buf, sample_rate)
            base = None
        if base is None:
            base, start, covered, buf = t0, 0, 0, np.zeros(0, np.float32)
        buf = np.concatenate([buf, chunk.astype(np.float32, copy=False)])
        while len(buf) >= size:
            yield _window(base, start, buf[:size], sample_rate)
            covered = start + size
            buf, start = buf[hop:], start + hop
    # With a hop longer than the window, buf may be empty (or start past ``covered``).
    if base is not None and len(buf) and start + len(buf) - max(covered, start) >= min_size:
        yield _window(base, start, buf, sample_rate)


def _window(
    base: float, start: int, samples: Samples, sample_rate: int
) -> tuple[float, float, Samples]:
    t_start = base + start / sample_rate
    return t_start, t_start + len(samples) / sample_rate, np.array(samples, np.float32)


def load_audio(
    path: str | os.PathLike[str], *, sample_rate: int, max_seconds: float | None = 600.0
) -> Samples:
    """A whole clip as mono float32 at ``sample_rate`` (at most ``max_seconds``), for queries."""
    chunks = AudioChunks(path, sample_rate=sample_rate, max_duration=max_seconds)
    parts = [samples for _, samples in chunks]
    if not parts:
        raise DecodeError(NO_AUDIO_SAMPLES)
    return np.concatenate(parts)
