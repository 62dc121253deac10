"""A small, exact test encoder: colour words <-> dominant image colours, in an 8-d space.

It implements the Encoder protocol with real behaviour (texts naming a colour
land next to images of that colour), so library tests can assert rankings
without a neural network. Its preprocessor is a module-level function, so it
pickles into ingest worker processes.
"""

from __future__ import annotations

import hashlib
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
