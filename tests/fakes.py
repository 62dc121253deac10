"""A small, exact test encoder: colour words <-> dominant image colours, in an 8-d space.

It implements the Encoder protocol with real behaviour (texts naming a colour
land next to images of that colour), so library tests can assert rankings
without a neural network. Its preprocessor is a module-level function, so it
pickles into ingest worker processes.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Sequence

import numpy as np

from mmsearch.encoders.base import EncoderInfo, ImageEncoderMixin
from mmsearch.types import Vectors, l2_normalize

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 60, 220),
    "yellow": (230, 220, 30),
    "purple": (140, 40, 160),
    "orange": (240, 140, 20),
    "black": (10, 10, 10),
    "white": (245, 245, 245),
}
NAMES = list(COLOURS)
DIM = len(NAMES)
_RGB = np.array([COLOURS[n] for n in NAMES], dtype=np.float32)


def preprocess(image) -> np.ndarray:  # type: ignore[no-untyped-def]
    """RGB PIL image -> (3, 16, 16) float array in [0, 1]."""
    small = image.convert("RGB").resize((16, 16))
    return np.asarray(small, dtype=np.float32).transpose(2, 0, 1) / 255.0


def _colour_histogram(pixels: np.ndarray) -> np.ndarray:
    flat = pixels.reshape(3, -1).T * 255.0
    d = ((flat[:, None, :] - _RGB[None, :, :]) ** 2).sum(-1)
    counts = np.bincount(d.argmin(1), minlength=DIM).astype(np.float32)
    return counts


def _text_vector(text: str) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    words = text.lower().replace(",", " ").split()
    for i, name in enumerate(NAMES):
        if name in words:
            v[i] += 1.0
    # A little deterministic, text-specific noise so no two texts tie exactly.
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    v += np.random.default_rng(seed).normal(0, 0.05, DIM).astype(np.float32)
    return v


class ColourEncoder(ImageEncoderMixin):
    def __init__(self, *, delay_s: float = 0.0, model_id: str = "test/colour-v1") -> None:
        self.info = EncoderInfo(
            spec="test:colour",
            backend="test",
            model_id=model_id,
            dim=DIM,
            preprocessing={"size": 16},
        )
        self.delay_s = delay_s
        self.text_calls = 0

    @property
    def dim(self) -> int:
        return DIM

    def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors:
        self.text_calls += 1
        if not texts:
            return np.zeros((0, DIM), np.float32)
        return l2_normalize(np.stack([_text_vector(t) for t in texts]))

    def image_preprocessor(self):  # type: ignore[no-untyped-def]
        return preprocess

    def encode_pixels(self, pixels: np.ndarray) -> Vectors:
        if self.delay_s:
            time.sleep(self.delay_s * len(pixels))
        return l2_normalize(np.stack([_colour_histogram(p) for p in pixels]))


def solid(colour: str, size: tuple[int, int] = (32, 24)):  # type: ignore[no-untyped-def]
    from PIL import Image

    return Image.new("RGB", size, COLOURS[colour])


# -- audio ------------------------------------------------------------------------------
TONE_BANDS = (220.0, 330.0, 440.0, 660.0, 880.0, 1320.0, 1760.0, 2640.0)


class ToneEncoder:
    """An exact audio–text encoder: energy near each of eight pitches <-> texts naming them.

    Audio becomes the share of spectral energy within a semitone of each band
    (plus a ninth "broadband" share for noise); a text naming ``440 Hz`` lands on
    the 440 band and ``noise`` on the broadband one. Implements AudioTextEncoder.
    """

    def __init__(self, *, sample_rate: int = 16000, window_seconds: float = 2.0) -> None:
        self._sr = sample_rate
        self._window = window_seconds
        self.info = EncoderInfo(
            spec="test:tones",
            backend="test",
            model_id="test/tones-v1",
            dim=len(TONE_BANDS) + 1,
            preprocessing={"sample_rate": sample_rate},
        )

    @property
    def dim(self) -> int:
        return len(TONE_BANDS) + 1

    @property
    def sample_rate(self) -> int:
        return self._sr

    @property
    def window_seconds(self) -> float:
        return self._window

    def encode_audio(self, clips, batch_size=None) -> Vectors:  # type: ignore[no-untyped-def]
        rows = []
        for clip in clips:
            x = np.asarray(clip, dtype=np.float64)
            spec = np.abs(np.fft.rfft(x)) ** 2 if len(x) else np.zeros(1)
            freqs = np.fft.rfftfreq(max(len(x), 1), 1.0 / self._sr)
            total = float(spec.sum()) + 1e-12
            v = np.zeros(self.dim, dtype=np.float32)
            for i, f in enumerate(TONE_BANDS):
                near = (freqs > f / 1.06) & (freqs < f * 1.06)
                v[i] = float(spec[near].sum()) / total
            v[-1] = max(0.0, 1.0 - float(v[:-1].sum()))
            rows.append(v + 1e-4)
        return l2_normalize(np.stack(rows)) if rows else np.zeros((0, self.dim), np.float32)

    def encode_text(self, texts, batch_size=None) -> Vectors:  # type: ignore[no-untyped-def]
        rows = []
        for text in texts:
            v = np.full(self.dim, 1e-3, dtype=np.float32)
            for i, f in enumerate(TONE_BANDS):
                if f"{int(f)}" in text:
                    v[i] = 1.0
            if "noise" in text.lower():
                v[-1] = 1.0
            rows.append(v)
        return l2_normalize(np.stack(rows)) if rows else np.zeros((0, self.dim), np.float32)


class ScriptRecognizer:
    """A fake speech recogniser: each stretch of sound in the audio it is given becomes
    the next phrase of its script, timed where the sound is (Recognizer protocol)."""

    def __init__(self, phrases: Sequence[str], *, sample_rate: int = 16000) -> None:
        self.phrases = list(phrases)
        self._next = 0
        self._sr = sample_rate
        self.calls = 0
        self.languages: list[str | None] = []
        self.threads_seen: list[int | None] = []

    @property
    def name(self) -> str:
        return "test/script"

    @property
    def sample_rate(self) -> int:
        return self._sr

    def transcribe(self, samples, *, language=None):  # type: ignore[no-untyped-def]
        from mmsearch.asr.base import TranscriptSpan

        self.calls += 1
        self.languages.append(language)
        torch = sys.modules.get("torch")
        self.threads_seen.append(torch.get_num_threads() if torch is not None else None)
        hop = self._sr // 10
        loud = [
            float(np.sqrt(np.mean(np.square(samples[i : i + hop])))) > 0.02
            for i in range(0, len(samples), hop)
        ]
        spans = []
        start = None
        for i, on in enumerate([*loud, False]):
            if on and start is None:
                start = i
            elif not on and start is not None:
                if self._next < len(self.phrases):
                    text = self.phrases[self._next]
                    self._next += 1
                    spans.append(TranscriptSpan(start * 0.1, i * 0.1, text))
                start = None
        return spans
