"""Time-coded media (video, audio) -> segments with ``t_start``/``t_end``, streamed.

A video is decoded once, frame by frame (``media.video.VideoFrames`` samples about
one frame per second plus shot boundaries). Sampled frames are embedded in the
image–text space in small batches; neighbouring frames whose embeddings are
nearly identical merge into one segment (a static shot is one moment, not sixty),
each segment keeps a keyframe thumbnail, and the whole video gets a pooled
vector. Subtitles (sidecar files and text streams in the container) become text
segments. The sound track, like an audio file, is cut into overlapping windows
for the audio–text space (CLAP) and, when a speech model is set, transcribed
into timed text segments.

Memory stays bounded by the batch sizes, not the file's length: frames and
audio are never held whole; only vectors, thumbnails and text accumulate.
Decoding and preprocessing run one batch ahead in a thread (PyAV, PIL and torch
release the GIL), so decoding overlaps with the model instead of adding to it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch._iter import chunked
from mmsearch.errors import DecodeError
from mmsearch.store.rows import NewSegment
from mmsearch.types import Vectors, l2_normalize

log = logging.getLogger(__name__)

FRAME_BATCH = 16
AUDIO_BATCH = 8
TEXT_BATCH = 64
MAX_CUES = 20_000
THUMB_SIDE = 256


@dataclass
class TimedOptions:
    fps: float = 1.0
    """Frames sampled per second of video (shot boundaries add more)."""
    max_frames: int = 2000
    """Cap per video: a longer video is sampled more sparsely."""
    shot_threshold: float | None = 0.35
    merge_threshold: float = 0.95
    """Neighbouring frames at least this similar (cosine) become one segment."""
    max_side: int = 512
    audio_window_s: float | None = None
    """Window length for the audio–text space; None = the model's own clip length."""
    audio_hop_s: float | None = None
    """Hop between windows; None = half a window."""
    transcribe_chunk_s: float = 240.0
    """Audio handed to the recogniser per call: Whisper batches its 30 s windows within it
    (8 at a time here, about 1.8× faster than one call per window)."""
    min_transcribe_s: float = 0.5
    """A final stretch shorter than this is not transcribed (a codec's few-ms tail)."""
    asr_language: str | None = None
    """The spoken language when known ("en", "zh", ...): saves Whisper's detection pass
    on every window; None detects it per window."""
    max_duration_s: float | None = None
    """Decode at most this much of each file (None = all of it)."""


@dataclass
class TimedResult:
    segments: list[NewSegment] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    modality: str | None = None
    """What the file turned out to hold, when it differs from its container's kind
    (an .mp4 with sound only is an audio item)."""


@dataclass
class _Frame:
    t: float
    vec: Vectors
    shot_start: bool
    thumb: bytes | None


@dataclass
class _Run:
    """Consecutive near-identical frames being merged into one segment."""

    t_start: float
    first: Vectors
    vecs: list[Vectors]
    thumb: bytes | None


class TimedIngest:
    """Turns one video or audio file into segments of the library's spaces."""

    def __init__(
        self,
        image_encoder: Any,
        audio_encoder: Any | None,
        audio_space_id: int | None,
        video_encoder: Any | None,
        video_space_id: int | None,
        recognizer: Callable[[], Any | None],
        options: TimedOptions | None = None,
    ) -> None:
        self.image_encoder = image_encoder
        self.audio_encoder = audio_encoder
        self.audio_space_id = audio_space_id
        self.video_encoder = video_encoder
        self.video_space_id = video_space_id
        self._recognizer = recognizer
        self.opt = options or TimedOptions()

    # -- entry points --------------------------------------------------------------------
    def can_index_audio(self) -> bool:
        return self.audio_encoder is not None or self._recognizer() is not None

    def video(self, path: str, subtitle_paths: Iterable[str] = ()) -> TimedResult:
        from mmsearch.media.video import VideoFrames

        frames = VideoFrames(
            path,
            fps=self.opt.fps,
            max_frames=self.opt.max_frames,
            shot_threshold=self.opt.shot_threshold,
            max_side=self.opt.max_side,
            max_duration=self.opt.max_duration_s,
        )
        probe = frames.probe
        out = TimedResult(width=probe.width, height=probe.height)
        frame_segs, pooled, end, sampled = self._frames(frames)
        out.warnings += frames.warnings
        if not frame_segs:
            raise DecodeError("no frames could be decoded")
        out.segments += frame_segs
        duration = probe.duration if probe.duration else end
        out.segments.append(NewSegment("video", "video", pooled, t_start=0.0, t_end=duration))
        out.segments += self._subtitles(path, subtitle_paths, out.warnings)
        if probe.has_audio and self.can_index_audio():
            try:
                out.segments += self._audio(path, out.warnings)[0]
            except DecodeError as exc:
                out.warnings.append(f"sound track ignored: {exc.reason}")
        out.meta = {
            "duration": round(float(duration), 3),
            "fps": probe.fps,
            "codec": probe.codec,
            "frames_sampled": sampled,
        }
        return out

    def audio(self, path: str) -> TimedResult:
        if not self.can_index_audio():
            raise DecodeError(
                "audio needs an audio model or a speech model: index with --audio-model "
                "(e.g. hf:laion/clap-htsat-unfused) or --asr-model (e.g. hf:openai/whisper-base)"
            )
        from mmsearch.media.audio import probe_audio

        probe = probe_audio(path)
        out = TimedResult(modality="audio")
        out.segments, decoded = self._audio(path, out.warnings)
        out.meta = {
            "duration": round(float(probe.duration or decoded), 3),
            "sample_rate": probe.sample_rate,
            "channels": probe.channels,
            "codec": probe.codec,
        }
        if not out.segments:
            raise DecodeError("no audio windows or speech could be taken from the file")
        return out

    # -- video frames --------------------------------------------------------------------
    def _frames(self, frames: Iterable[Any]) -> tuple[list[NewSegment], Vectors, float, int]:
        """(frame segments, pooled vector, end time, frames sampled) of a video."""
        from mmsearch.media.thumbs import make_thumbnail

        pre = self.image_encoder.image_preprocessor()
        segs: list[NewSegment] = []
        run: _Run | None = None
        total = np.zeros(self.image_encoder.dim, dtype=np.float64)
        weight = 0.0
        clip = _ClipWindows(self.video_encoder, self.video_space_id)
        sampled = 0
        last_t = 0.0

        def prepared() -> Iterator[tuple[list[Any], np.ndarray]]:
            for batch in chunked(frames, FRAME_BATCH):
                yield batch, np.stack([np.asarray(pre(f.image), np.float32) for f in batch])

        for batch, pixels in _read_ahead(prepared(), depth=2):
            vecs = self.image_encoder.encode_pixels(pixels)
            sampled += len(batch)
            for f, vec in zip(batch, vecs, strict=True):
                clip.add(f.t, f.image)
                if run is not None and (
                    f.shot_start or float(vec @ run.first) < self.opt.merge_threshold
                ):
                    seg = _close_run(run, f.t)
                    total += seg.vector * (f.t - run.t_start)  # type: ignore[operator]
                    weight += f.t - run.t_start
                    segs.append(seg)
                    run = None
                if run is None:
                    thumb = make_thumbnail(f.image, max_side=THUMB_SIDE)
                    run = _Run(f.t, vec, [vec], thumb)
                else:
                    run.vecs.append(vec)
                last_t = f.t
        end = max(float(getattr(frames, "end_time", last_t) or last_t), last_t)
        if run is not None:
            seg = _close_run(run, end)
            span = max(end - run.t_start, 1e-3)
            total += seg.vector * span  # type: ignore[operator]
            weight += span
            segs.append(seg)
        segs += clip.finish(end)
        pooled = l2_normalize(total.astype(np.float32))[0] if weight > 0 else total
        return segs, pooled.astype(np.float32), end, sampled

    # -- subtitles -----------------------------------------------------------------------
    def _subtitles(
        self, path: str, sidecars: Iterable[str], warnings: list[str]
    ) -> list[NewSegment]:
        from mmsearch.media.subtitles import extract_subtitle_streams, read_subtitle_file

        cues = []
        for side in sidecars:
            try:
                cues += read_subtitle_file(side)
            except DecodeError as exc:
                warnings.append(f"subtitles {side} ignored: {exc.reason}")
            except OSError as exc:
                warnings.append(f"subtitles {side} ignored: {exc.strerror or exc}")
        try:
            cues += extract_subtitle_streams(path)
        except DecodeError as exc:
            warnings.append(f"subtitle stream ignored: {exc.reason}")
        unique = {(round(c.start, 2), round(c.end, 2), c.text): c for c in cues if c.text.strip()}
        kept = sorted(unique.values(), key=lambda c: (c.start, c.end))[:MAX_CUES]
        return self._text_segments("subtitle", [(c.start, c.end, c.text) for c in kept])

    def _text_segments(self, kind: str, spans: list[tuple[float, float, str]]) -> list[NewSegment]:
        segs: list[NewSegment] = []
        for batch in chunked(spans, TEXT_BATCH):
            vecs = self.image_encoder.encode_text([text for _, _, text in batch])
            for (t0, t1, text), vec in zip(batch, vecs, strict=True):
                segs.append(NewSegment("text", kind, vec, text=text, t_start=t0, t_end=t1))
        return segs

    # -- sound -----------------------------------------------------------------------------
    def _audio(self, path: str, warnings: list[str]) -> tuple[list[NewSegment], float]:
        """(segments of the sound, seconds of it decoded)."""
        segs: list[NewSegment] = []
        decoded = 0.0
        if self.audio_encoder is not None:
            windows, decoded = self._audio_windows(path, warnings)
            segs += windows
        recognizer = self._recognizer()
        if recognizer is not None:
            spans, heard = self._transcript(path, recognizer, warnings)
            segs += spans
            decoded = max(decoded, heard)
        return segs, decoded

    def _audio_windows(self, path: str, warnings: list[str]) -> tuple[list[NewSegment], float]:
        from mmsearch.media.audio import AudioChunks, windows

        enc = self.audio_encoder
        assert enc is not None
        window = float(self.opt.audio_window_s or enc.window_seconds)
        hop = float(self.opt.audio_hop_s or window / 2)
        chunks = AudioChunks(
            path,
            sample_rate=int(enc.sample_rate),
            chunk_seconds=max(30.0, window),
            max_duration=self.opt.max_duration_s,
        )
        segs: list[NewSegment] = []
        wins = windows(chunks, sample_rate=int(enc.sample_rate), window_s=window, hop_s=hop)
        for batch in chunked(wins, AUDIO_BATCH):
            vecs = enc.encode_audio([w[2] for w in batch])
            for (t0, t1, _), vec in zip(batch, vecs, strict=True):
                segs.append(
                    NewSegment(
                        "audio", "audio", vec, t_start=t0, t_end=t1, space_id=self.audio_space_id
                    )
                )
        warnings += chunks.warnings
        return segs, float(chunks.duration_decoded)

    def _transcript(
        self, path: str, recognizer: Any, warnings: list[str]
    ) -> tuple[list[NewSegment], float]:
        from mmsearch.media.audio import AudioChunks

        chunks = AudioChunks(
            path,
            sample_rate=int(recognizer.sample_rate),
            chunk_seconds=self.opt.transcribe_chunk_s,
            max_duration=self.opt.max_duration_s,
        )
        spans: list[tuple[float, float, str]] = []
        min_samples = int(self.opt.min_transcribe_s * int(recognizer.sample_rate))
        for t0, samples in chunks:
            if len(samples) < min_samples:
                continue
            for span in recognizer.transcribe(samples, language=self.opt.asr_language):
                text = span.text.strip()
                if text:
                    spans.append((t0 + span.start, t0 + span.end, text))
        warnings += chunks.warnings
        return self._text_segments("transcript", spans), float(chunks.duration_decoded)


class _ClipWindows:
    """Groups sampled frames into clips for a video–text encoder (X-CLIP), if there is one."""

    def __init__(self, encoder: Any | None, space_id: int | None) -> None:
        self.encoder = encoder
        self.space_id = space_id
        self.size = int(encoder.num_frames) if encoder is not None else 0
        self.frames: list[tuple[float, Any]] = []
        self.segments: list[NewSegment] = []

    def add(self, t: float, image: Any) -> None:
        if self.encoder is None:
            return
        small = image.copy()
        small.thumbnail((THUMB_SIDE, THUMB_SIDE))
        self.frames.append((t, small))
        if len(self.frames) > self.size:
            self._flush(t)

    def _flush(self, end: float) -> None:
        clip = self.frames[: self.size]
        self.frames = self.frames[self.size :]
        assert self.encoder is not None
        vec = self.encoder.encode_videos([[im for _, im in clip]])[0]
        self.segments.append(
            NewSegment("video", "clip", vec, t_start=clip[0][0], t_end=end, space_id=self.space_id)
        )

    def finish(self, end: float) -> list[NewSegment]:
        if self.encoder is not None and self.frames:
            self._flush(end)
        return self.segments


def _close_run(run: _Run, t_end: float) -> NewSegment:
    vec = l2_normalize(np.mean(np.stack(run.vecs), axis=0))[0]
    return NewSegment(
        "image",
        "frame",
        vec,
        t_start=run.t_start,
        t_end=max(t_end, run.t_start),
        thumbnail=run.thumb,
    )


_DONE = object()


def _read_ahead(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """Run ``items`` in a thread, at most ``depth`` results ahead; errors are re-raised here.

    Closing the consumer early (an exception while embedding) stops the producer.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for x in items:
                while not stop.is_set():
                    try:
                        q.put((x, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            q.put((_DONE, exc))

    worker = threading.Thread(target=produce, name="decode-ahead", daemon=True)
    worker.start()
    try:
        while True:
            x, exc = q.get()
            if x is _DONE:
                if exc is not None:
                    raise exc
                return
            yield x
    finally:
        stop.set()
        while worker.is_alive():  # drain so a blocked put can see the stop flag
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.1)
        worker.join()
