"""The encoder contract every backend implements, and the helpers they share.

An encoder turns text and images into L2-normalised float32 vectors of one
space. Image preprocessing is split out (``image_preprocessor``) so ingest can
run decode + preprocessing in worker processes and feed ready pixel arrays to
``encode_pixels`` in the main process, keeping the model busy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from mmsearch.types import ImageInput, Vectors

Pixels = NDArray[np.float32]
"""One preprocessed image (C, H, W) or a batch (N, C, H, W), exactly as the model expects."""

ImagePreprocessor = Callable[[Any], Pixels]
"""Picklable callable: RGB ``PIL.Image`` -> preprocessed (C, H, W) float32 array."""


@dataclass(frozen=True)
class EncoderInfo:
    """What a library records about the model its vectors came from."""

    spec: str
    """The spec the user gave (``hf:...``, ``openclip:...``, a folder)."""
    backend: str
    """Registry key of the backend (``hf``, ``openclip``, ``onnx``, ``tiny``)."""
    model_id: str
    """The model's own identity (hub id, architecture+pretrained tag, folder name)."""
    dim: int
    preprocessing: dict[str, Any] = field(default_factory=dict)
    """The image preprocessing the model uses (size, crop, mean, std, resample)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Stable hash of model identity + dimension + preprocessing.

        Two encoders with the same fingerprint produce vectors in the same space.
        The backend is deliberately not part of it: an ONNX export of a model
        shares the space of the model it came from (it keeps ``model_id``).
        """
        payload = json.dumps(
            {"model_id": self.model_id, "dim": self.dim, "pre": self.preprocessing},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fingerprint"] = self.fingerprint
        return d


@runtime_checkable
class Encoder(Protocol):
    """A text+image encoder into one shared space. Outputs are L2-normalised float32."""

    info: EncoderInfo

    @property
    def dim(self) -> int: ...

    def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors: ...

    def encode_images(
        self, images: Sequence[ImageInput], batch_size: int | None = None
    ) -> Vectors: ...

    def image_preprocessor(self) -> ImagePreprocessor: ...

    def encode_pixels(self, pixels: Pixels) -> Vectors: ...


def batched(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Split ``seq`` into consecutive chunks of at most ``size`` items."""
    size = max(1, int(size))
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def load_rgb(image: ImageInput) -> Any:
    """Open a path or pass through a PIL image, converted to RGB with EXIF rotation applied."""
    from mmsearch.media.image import open_image_rgb

    return open_image_rgb(image)


class ImageEncoderMixin:
    """Shared ``encode_images`` for backends: decode -> preprocess -> ``encode_pixels`` in batches."""

    default_batch_size: int = 32

    def image_preprocessor(self) -> ImagePreprocessor:  # pragma: no cover - overridden
        raise NotImplementedError

    def encode_pixels(self, pixels: Pixels) -> Vectors:  # pragma: no cover - overridden
        raise NotImplementedError

    def encode_images(self, images: Sequence[ImageInput], batch_size: int | None = None) -> Vectors:
        pre = self.image_preprocessor()
        out: list[Vectors] = []
        for chunk in batched(list(images), batch_size or self.default_batch_size):
            arr = np.stack([pre(load_rgb(im)) for im in chunk]).astype(np.float32, copy=False)
            out.append(self.encode_pixels(arr))
        if not out:
            dim = int(getattr(self, "dim"))  # noqa: B009 - provided by the concrete encoder
            return np.zeros((0, dim), dtype=np.float32)
        return np.concatenate(out, axis=0)


def pick_device(device: str | None = None) -> tuple[str, Any]:
    """Return (device, dtype) for torch backends: CUDA + fp16 when present, else CPU fp32."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    return device, dtype


@runtime_checkable
class AudioTextEncoder(Protocol):
    """A text+audio encoder into one shared space (CLAP and kin). Outputs are L2-normalised.

    Audio clips are mono float32 arrays at :attr:`sample_rate`, values in [-1, 1].
    """

    info: EncoderInfo

    @property
    def dim(self) -> int: ...

    @property
    def sample_rate(self) -> int: ...

    @property
    def window_seconds(self) -> float:
        """The clip length the model was trained on; ingest cuts windows of this length."""
        ...

    def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors: ...

    def encode_audio(
        self, clips: Sequence[NDArray[np.float32]], batch_size: int | None = None
    ) -> Vectors: ...


@runtime_checkable
class VideoTextEncoder(Protocol):
    """A text+video-clip encoder into one shared space (X-CLIP and kin).

    A clip is a sequence of RGB ``PIL.Image`` frames, evenly spaced over its time range;
    the encoder resamples it to :attr:`num_frames` frames.
    """

    info: EncoderInfo

    @property
    def dim(self) -> int: ...

    @property
    def num_frames(self) -> int: ...

    def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors: ...

    def encode_videos(
        self, clips: Sequence[Sequence[Any]], batch_size: int | None = None
    ) -> Vectors: ...
