"""Image preprocessing in PIL + numpy, described by a small JSON-able config.

The ONNX backend must not import torch, so it cannot use the transformers
image processors or open_clip's torchvision transforms. This module redoes
what they do at inference time — resize (shortest edge, exact size, or
keep-ratio), centre crop (padding when the image is smaller), rescale,
optional offset, mean/std normalisation — from an :class:`ImageConfig` that
the exporter writes next to the model.

Resizing uses PIL, as open_clip's transforms do on PIL images, so open_clip
preprocessing is reproduced exactly; transformers' torchvision-backed
processors resize uint8 tensors and may differ by a rounding step in a few
pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mmsearch.encoders.base import Pixels
from mmsearch.errors import MMSearchError

RESIZE_MODES = ("shortest_edge", "exact", "keep_ratio", "none")
CROP_ROUNDING = ("floor", "round")
_RESAMPLE = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")


@dataclass(frozen=True)
class ImageConfig:
    """How to turn an RGB image into the model's (3, H, W) float32 input."""

    resize: str = "shortest_edge"
    """``shortest_edge``: short side to ``size[0]``, long side ``int(size * long / short)``
    (transformers and torchvision ``Resize(int)``); ``exact``: to ``size`` (h, w);
    ``keep_ratio``: open_clip/timm ``ResizeKeepRatio`` towards ``size`` with ``longest``;
    ``none``: no resize."""
    size: tuple[int, int] = (224, 224)
    longest: float = 0.0
    """For ``keep_ratio``: 0 fits the shorter side to ``size``, 1 the longer one."""
    resample: str = "bicubic"
    crop: tuple[int, int] | None = (224, 224)
    """Centre crop (h, w) after resizing, padding with ``fill`` when the image is smaller."""
    crop_rounding: str = "floor"
    """Offset of the crop: ``floor`` (transformers) or ``round`` (torchvision, open_clip)."""
    fill: int = 0
    rescale: float = 1.0 / 255.0
    offset: float = 0.0
    """Added after rescaling (EfficientNet's ``rescale_offset`` is -1)."""
    mean: tuple[float, ...] | None = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, ...] | None = (0.26862954, 0.26130258, 0.27577711)

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise MMSearchError(f"unknown resize mode {self.resize!r}; known: {RESIZE_MODES}")
        if self.crop_rounding not in CROP_ROUNDING:
            raise MMSearchError(f"unknown crop rounding {self.crop_rounding!r}")
        if self.resample not in _RESAMPLE:
            raise MMSearchError(f"unknown resample filter {self.resample!r}; known: {_RESAMPLE}")

    @property
    def output_size(self) -> tuple[int, int]:
        """(H, W) of the arrays this config produces (when it fixes them)."""
        if self.crop is not None:
            return self.crop
        if self.resize in ("exact",):
            return self.size
        raise MMSearchError(
            "this preprocessing has no fixed output size (no crop, no exact resize)"
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("size", "crop", "mean", "std"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("size", "crop", "mean", "std"):
            if known.get(key) is not None:
                known[key] = tuple(known[key])
        return cls(**known)


def resized_shape(cfg: ImageConfig, height: int, width: int) -> tuple[int, int]:
    """The (h, w) an image of this size is resized to before cropping."""
    if cfg.resize == "none":
        return height, width
    if cfg.resize == "exact":
        return cfg.size
    if cfg.resize == "shortest_edge":
        target = cfg.size[0]
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(target * long / short)
        return (new_long, target) if width <= height else (target, new_long)
    # keep_ratio: the timm/open_clip rule, rounding each side.
    ratio_h, ratio_w = height / cfg.size[0], width / cfg.size[1]
    ratio = max(ratio_h, ratio_w) * cfg.longest + min(ratio_h, ratio_w) * (1.0 - cfg.longest)
    return round(height / ratio), round(width / ratio)


def center_crop(arr: np.ndarray, cfg: ImageConfig) -> np.ndarray:
    """Centre-crop an (H, W, C) array to ``cfg.crop``, padding with ``cfg.fill`` first if needed."""
    if cfg.crop is None:
        return arr
    crop_h, crop_w = cfg.crop
    h, w = arr.shape[:2]
    if crop_h > h or crop_w > w:
        pad_top = (crop_h - h) // 2 if crop_h > h else 0
        pad_left = (crop_w - w) // 2 if crop_w > w else 0
        pad_bottom = (crop_h - h + 1) // 2 if crop_h > h else 0
        pad_right = (crop_w - w + 1) // 2 if crop_w > w else 0
        arr = np.pad(
            arr,
            ((pad_top, pad_bottom), (pad_left, pad_right), (0, 0)),
            constant_values=cfg.fill,
        )
        h, w = arr.shape[:2]
    if cfg.crop_rounding == "round":
        top, left = int(round((h - crop_h) / 2.0)), int(round((w - crop_w) / 2.0))
    else:
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
    return arr[top : top + crop_h, left : left + crop_w]


class NumpyImagePreprocessor:
    """Picklable ``PIL.Image -> (3, H, W) float32`` callable for one :class:`ImageConfig`."""

    def __init__(self, config: ImageConfig) -> None:
        self.config = config
        self._mean = None if config.mean is None else np.asarray(config.mean, np.float32)
        self._std = None if config.std is None else np.asarray(config.std, np.float32)

    def __call__(self, image: Any) -> Pixels:
        from PIL import Image

        cfg = self.config
        if image.mode != "RGB":
            image = image.convert("RGB")
        h, w = resized_shape(cfg, image.height, image.width)
        if (h, w) != (image.height, image.width):
            resample = getattr(Image.Resampling, cfg.resample.upper())
            image = image.resize((w, h), resample=resample)
        arr = center_crop(np.asarray(image), cfg).astype(np.float32)
        arr *= np.float32(cfg.rescale)
        if cfg.offset:
            arr += np.float32(cfg.offset)
        if self._mean is not None and self._std is not None:
            arr = (arr - self._mean) / self._std
        return np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)

    def __repr__(self) -> str:
        return f"NumpyImagePreprocessor({self.config})"
