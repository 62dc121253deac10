"""Generate small media files for tests: coloured-scene videos, tones, speech, subtitle files.

Everything is encoded with PyAV except two things PyAV cannot write simply:
subtitle streams inside a video (muxed afterwards with the ``ffmpeg`` CLI)
and speech (``espeak-ng``). Defaults are tiny so that tests stay fast.

A video made by :func:`make_video` shows each scene's colour over the whole
frame, except a small square (white on dark scenes, black on light ones) that
moves along the top rows when ``moving_square`` is on: the bottom two thirds
of every frame are exactly the scene colour (up to compression).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import ImageColor

Colour = tuple[int, int, int] | str
Sound = float | str
"""A tone frequency in Hz, or "noise" or "silence"."""
Cue = tuple[float, float, str]

TIME_BASE = Fraction(1, 1000)
"""Time base of generated video frames: millisecond timestamps allow any frame timing."""

_AUDIO_CODECS = {
    ".wav": ("pcm_s16le", 1),
    ".flac": ("flac", 1),
    ".mp3": ("libmp3lame", 1),
    ".ogg": ("vorbis", 2),  # FFmpeg's own Vorbis encoder only does stereo
    ".oga": ("vorbis", 2),
    ".opus": ("libopus", 1),
    ".m4a": ("aac", 1),
    ".aac": ("aac", 1),
    ".mka": ("flac", 1),
    ".mp4": ("aac", 1),  # sound only, in a container that usually holds video
}
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_VIDEO_AUDIO_CODECS = {".webm": "libopus", ".avi": "libmp3lame", ".ogv": "vorbis"}
_SUBTITLE_CODECS = {".mp4": "mov_text", ".mov": "mov_text", ".m4v": "mov_text", ".mkv": "srt"}


# ----------------------------------------------------------------------------- scenes


def rgb(colour: Colour) -> tuple[int, int, int]:
    """An RGB triple for a colour name ("red", "#00ff00") or a triple."""
    if isinstance(colour, str):
        r, g, b = ImageColor.getrgb(colour)[:3]
        return (r, g, b)
    return (int(colour[0]), int(colour[1]), int(colour[2]))


def scene_starts(scenes: Sequence[tuple[Colour, float]]) -> list[float]:
    """The time each scene starts at (the first is 0; the others are cuts)."""
    starts, t = [], 0.0
    for _, duration in scenes:
        starts.append(t)
        t += duration
    return starts


def frame_colour_at(scenes: Sequence[tuple[Colour, float]], t: float) -> tuple[int, int, int]:
    """The colour the video shows at time ``t`` (the last scene's after the end)."""
    end = 0.0
    for colour, duration in scenes:
        end += duration
        if t < end - 1e-9:
            return rgb(colour)
    return rgb(scenes[-1][0])


def scene_frames(
    scenes: Sequence[tuple[Colour, float]],
    *,
    fps: float,
    size: tuple[int, int],
    moving_square: bool = True,
) -> Iterator[tuple[float, np.ndarray]]:
    """(t, RGB array) for every frame of the scenes at a constant ``fps``."""
    width, height = size
    total = sum(d for _, d in scenes)
    side = max(2, min(width, height) // 6)
    for i in range(max(1, round(total * fps))):
        t = i / fps
        colour = frame_colour_at(scenes, t)
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = colour
        if moving_square:
            ink = 0 if sum(colour) > 382 else 255
            x = (i * max(1, side // 2)) % max(1, width - side)
            frame[1 : 1 + side, x : x + side] = ink
        yield t, frame


# ----------------------------------------------------------------------------- video


def make_video(
    path: str | os.PathLike[str],
    scenes: Sequence[tuple[Colour, float]],
    *,
    fps: float = 10,
    size: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    moving_square: bool = True,
    audio: Sequence[tuple[Sound, float]] | None = None,
    subtitles: Sequence[Cue] | None = None,
    rotation: int = 0,
    gop: int | None = None,
) -> Path:
    """Write a video of solid-colour scenes ``[(colour, seconds), ...]``; the container
    follows the suffix. ``rotation`` is the clockwise turn a player applies to show it
    upright (display-matrix metadata); ``subtitles`` are ``(start, end, text)`` cues muxed
    as a subtitle stream (mov_text in MP4/MOV, SubRip in MKV)."""
    frames = scene_frames(scenes, fps=fps, size=size, moving_square=moving_square)
    return write_video(
        path,
        frames,
        size=size,
        fps=fps,
        codec=codec,
        pix_fmt=pix_fmt,
        audio=audio,
        subtitles=subtitles,
        rotation=rotation,
        gop=gop,
    )


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[tuple[float, np.ndarray]],
    *,
    size: tuple[int, int],
    fps: float = 10,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: Sequence[tuple[Sound, float]] | None = None,
    subtitles: Sequence[Cue] | None = None,
    rotation: int = 0,
    gop: int | None = None,
    sample_rate: int = 16000,
) -> Path:
    """Encode ``(t seconds, HxWx3 uint8 RGB)`` frames; ``t`` may be irregular (VFR).

    ``fps`` is the nominal rate the encoder is told; timestamps come from ``t``.
    """
    path = Path(path)
    # With subtitles, the pictures (and sound) go to a temporary file first: PyAV cannot
    # write a subtitle stream, so the ``ffmpeg`` CLI muxes one in afterwards.
    with tempfile.TemporaryDirectory() if subtitles else contextlib.nullcontext() as tmp:
        plain = Path(tmp) / ("plain" + path.suffix) if tmp else path
        _encode_video(plain, frames, size, fps, codec, pix_fmt, audio, rotation, gop, sample_rate)
        return _mux_subtitles(plain, subtitles, path) if subtitles else path


def _encode_video(
    path: Path,
    frames: Iterable[tuple[float, np.ndarray]],
    size: tuple[int, int],
    fps: float,
    codec: str,
    pix_fmt: str,
    audio: Sequence[tuple[Sound, float]] | None,
    rotation: int,
    gop: int | None,
    sample_rate: int,
) -> None:
    width, height = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.codec_context.time_base = TIME_BASE
        if gop is not None:
            vs.codec_context.gop_size = gop
        if codec == "libx264":
            vs.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
        if rotation % 360:
            vs.set_display_rotation(-rotation)  # PyAV takes counter-clockwise degrees
        sound = _AudioWriter(out, audio, sample_rate, path.suffix) if audio else None
        for t, array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame.pts = round(t / TIME_BASE)
            frame.time_base = TIME_BASE
            out.mux(vs.encode(frame))
            if sound:
                sound.write_until(t)
        out.mux(vs.encode(None))
        if sound:
            sound.finish()


def make_solid_video(
    path: str | os.PathLike[str],
    colours: Sequence[Colour],
    *,
    size: tuple[int, int],
    fps: float = 1,
) -> Path:
    """One frame per colour at ``fps``, built directly in YUV: quick even at 8K (H.264)."""
    path = Path(path)
    width, height = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.codec_context.time_base = TIME_BASE
        vs.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for i, colour in enumerate(colours):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane, value in zip(frame.planes, _yuv(colour), strict=True):
                np.frombuffer(plane, np.uint8)[:] = value  # type: ignore[call-overload]
            frame.pts = round(i / fps / TIME_BASE)
            frame.time_base = TIME_BASE
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path


def _yuv(colour: Colour) -> tuple[int, int, int]:
    """The limited-range YUV of an RGB colour, as the encoder's own conversion makes it."""
    rgb_frame = av.VideoFrame.from_ndarray(np.full((2, 2, 3), rgb(colour), np.uint8), "rgb24")
    yuv = rgb_frame.reformat(format="yuv420p")
    y, u, v = (int(np.frombuffer(p, np.uint8)[0]) for p in yuv.planes)
    return y, u, v


class _AudioWriter:
    """Encode a sound track alongside video frames, a little ahead of the pictures."""

    def __init__(
        self,
        out: av.container.OutputContainer,
        parts: Sequence[tuple[Sound, float]],
        rate: int,
        suffix: str,
    ) -> None:
        codec = _VIDEO_AUDIO_CODECS.get(suffix.lower(), "aac")
        self.out = out
        self.stream, self.resampler = _audio_stream(out, codec, rate, 2 if codec == "vorbis" else 1)
        self.chunks = sound_chunks(parts, rate)
        self.rate = rate
        self.written = 0

    def write_until(self, t: float) -> None:
        while self.written < (t + 1.0) * self.rate:
            chunk = next(self.chunks, None)
            if chunk is None:
                return
            self._encode(chunk)

    def finish(self) -> None:
        for chunk in self.chunks:
            self._encode(chunk)
        _flush_audio(self.out, self.stream, self.resampler)

    def _encode(self, chunk: np.ndarray) -> None:
        _encode_audio(self.out, self.stream, self.resampler, chunk, self.written, self.rate)
        self.written += len(chunk)


def _mux_subtitles(video: Path, cues: Sequence[Cue], dst: Path) -> Path:
    codec = _SUBTITLE_CODECS.get(dst.suffix.lower())
    if codec is None:
        raise ValueError(f"no subtitle codec for {dst.suffix} (use .mp4, .mov or .mkv)")
    srt = video.with_suffix(".srt")
    write_srt(srt, cues)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("the ffmpeg command is needed to mux subtitle streams")
    subprocess.run(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(video), "-i", str(srt)]
        + ["-map", "0", "-map", "1", "-c", "copy", "-c:s", codec, str(dst)],
        check=True,
    )
    return dst


# ----------------------------------------------------------------------------- audio


def sound_chunks(
    parts: Sequence[tuple[Sound, float]], rate: int, chunk: int = 16384
) -> Iterator[np.ndarray]:
    """float32 mono samples of tones ("440" Hz), "noise" and "silence", in chunks."""
    rng = np.random.default_rng(1234)
    for sound, seconds in parts:
        n = round(seconds * rate)
        for start in range(0, n, chunk):
            idx = np.arange(start, min(n, start + chunk))
            if sound == "silence":
                yield np.zeros(len(idx), np.float32)
            elif sound == "noise":
                yield rng.uniform(-0.3, 0.3, len(idx)).astype(np.float32)
            else:
                freq = float(sound)
                yield (0.5 * np.sin(2 * math.pi * freq * idx / rate)).astype(np.float32)


def make_audio(
    path: str | os.PathLike[str],
    parts: Sequence[tuple[Sound, float]],
    *,
    sample_rate: int = 16000,
) -> Path:
    """Write tones/noise/silence ``[(440.0, 1.5), ("silence", 0.5), ...]``; the format
    follows the suffix (.wav .flac .mp3 .ogg .opus .m4a .aac .mka, or .mp4 for an
    MP4 holding only sound)."""
    path = Path(path)
    codec, channels = _AUDIO_CODECS[path.suffix.lower()]
    with av.open(str(path), "w") as out:
        stream, resampler = _audio_stream(out, codec, sample_rate, channels)
        written = 0
        for chunk in sound_chunks(parts, sample_rate):
            _encode_audio(out, stream, resampler, chunk, written, sample_rate)
            written += len(chunk)
        _flush_audio(out, stream, resampler)
    return path


def _audio_stream(
    out: av.container.OutputContainer, codec: str, rate: int, channels: int
) -> tuple[av.audio.stream.AudioStream, av.AudioResampler]:
    if codec == "libopus" and rate not in _OPUS_RATES:
        rate = 48000
    stream = out.add_stream(codec, rate=rate)
    layout = "stereo" if channels == 2 else "mono"
    stream.layout = layout
    if codec == "vorbis":
        stream.codec_context.options = {"strict": "experimental"}
    fmt = stream.codec_context.codec.audio_formats[0].name
    frame_size = 1024 if codec in ("aac", "vorbis") else (960 if codec == "libopus" else 1152)
    resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate, frame_size=frame_size)
    return stream, resampler


def _encode_audio(
    out: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    resampler: av.AudioResampler,
    samples: np.ndarray,
    offset: int,
    rate: int,
) -> None:
    frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
    frame.sample_rate = rate
    frame.pts = offset
    frame.time_base = Fraction(1, rate)
    for f in resampler.resample(frame):
        out.mux(stream.encode(f))


def _flush_audio(
    out: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    resampler: av.AudioResampler,
) -> None:
    for f in resampler.resample(None):
        out.mux(stream.encode(f))
    out.mux(stream.encode(None))


def make_speech(path: str | os.PathLike[str], text: str, *, voice: str = "en") -> Path:
    """Synthesise ``text`` with espeak-ng into a WAV file ("en", or "cmn" for Mandarin)."""
    path = Path(path)
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is needed to synthesise speech")
    subprocess.run([espeak, "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


# ----------------------------------------------------------------------------- subtitles


def _stamp(t: float, sep: str) -> str:
    ms = round(t * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def write_srt(path: str | os.PathLike[str], cues: Sequence[Cue]) -> Path:
    """A SubRip file of ``(start, end, text)`` cues (UTF-8)."""
    blocks = [
        f"{i}\n{_stamp(a, ',')} --> {_stamp(b, ',')}\n{text}\n"
        for i, (a, b, text) in enumerate(cues, 1)
    ]
    Path(path).write_text("\n".join(blocks), encoding="utf-8")
    return Path(path)


def write_vtt(path: str | os.PathLike[str], cues: Sequence[Cue]) -> Path:
    """A WebVTT file of ``(start, end, text)`` cues (UTF-8)."""
    blocks = [f"{_stamp(a, '.')} --> {_stamp(b, '.')}\n{text}\n" for a, b, text in cues]
    Path(path).write_text("WEBVTT\n\n" + "\n".join(blocks), encoding="utf-8")
    return Path(path)
