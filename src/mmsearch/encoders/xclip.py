"""Video–text encoder: X-CLIP (transformers ``XCLIPModel``) behind ``VideoTextEncoder``.

The checkpoint's own tokenizer and image processor are used; vectors come from
``get_text_features`` (the text tower alone) and ``get_video_features`` (the
frame tower plus the multi-frame integration transformer, MIT).

X-CLIP's own zero-shot logits (``XCLIPModel.forward``) do something an index
cannot: a video-specific prompt generator rewrites each text embedding using
the video's frame features before comparing them, so the text side depends on
the video it is scored against. A search index needs one embedding per text
and per video, computed independently, so this encoder uses the unconditioned
text embedding. Rankings are therefore close to, but not identical with,
X-CLIP's published zero-shot numbers.

A clip is a sequence of RGB frames evenly spaced over its time range; it is
resampled to ``num_frames`` (from the checkpoint's config, 8 for
microsoft/xclip-base-patch32) by taking the frame at the centre of each of
``num_frames`` equal parts, repeating frames when the clip has fewer.
:meth:`XClipEncoder.video_preprocessor` returns a picklable callable
(frames -> ``(num_frames, C, H, W)`` pixels) for ingest workers, and
:meth:`XClipEncoder.encode_video_pixels` embeds a batch of them. On CUDA the
model runs in float16; outputs are L2-normalised float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mmsearch._lazy import require
from mmsearch.encoders.av_registry import resolve_model
from mmsearch.encoders.torch_util import TransformersTextMixin, as_batch
from mmsearch.types import Vectors

DEFAULT_BATCH_SIZE = 32
DEFAULT_VIDEO_BATCH_SIZE = 8
TEXT_MAX_LENGTH = 77
FRAME_SAMPLING = "centre of each of num_frames equal parts"

VideoPixels = NDArray[np.float32]
"""One preprocessed clip (T, C, H, W) or a batch (N, T, C, H, W), as the model expects."""


def load(
    name: str,
    *,
    spec: str,
    device: str | None = None,
    batch_size: int | None = None,
    model_id: str | None = None,
    **_: Any,
) -> XClipEncoder:
    """Load an X-CLIP checkpoint from a local folder or a hub id (``org/name``)."""
    folder, ident = resolve_model(name, spec=spec, model_type="xclip", model_id=model_id)
    return XClipEncoder(folder, spec=spec, model_id=ident, device=device, batch_size=batch_size)


def frame_indices(n_frames: int, num_frames: int) -> list[int]:
    """Indices of ``num_frames`` frames evenly spread over ``n_frames`` (centres of equal parts)."""
    return [min(n_frames - 1, int((i + 0.5) * n_frames / num_frames)) for i in range(num_frames)]


class XClipVideoPreprocessor:
    """Picklable: a clip's RGB frames -> ``(num_frames, C, H, W)`` float32 pixels."""

    def __init__(self, image_processor: Any, num_frames: int) -> None:
        self.image_processor = image_processor
        self.num_frames = num_frames

    def __call__(self, frames: Sequence[Any]) -> VideoPixels:
        frames = list(frames)
        if not frames:
            raise ValueError("a video clip needs at least one frame")
        chosen = [_rgb(frames[i]) for i in frame_indices(len(frames), self.num_frames)]
        out = self.image_processor(images=chosen, return_tensors="np")
        pixels = np.asarray(out["pixel_values"], dtype=np.float32)
        # Image processors give (T, C, H, W); video ones (VideoMAE) give (1, T, C, H, W).
        return pixels.reshape(self.num_frames, *pixels.shape[-3:])


class XClipEncoder(TransformersTextMixin):
    """A transformers X-CLIP model behind the :class:`~mmsearch.encoders.base.VideoTextEncoder` contract."""

    def __init__(
        self,
        folder: Path,
        *,
        spec: str,
        model_id: str,
        device: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.torch = require("torch")
        processor = self._load("XCLIPModel", "AutoProcessor", folder, spec=spec, device=device)
        config = self.model.config
        self.tokenizer = self.text_processor = processor.tokenizer
        self._pre = XClipVideoPreprocessor(
            processor.image_processor, int(config.vision_config.num_frames)
        )
        self.max_length = min(TEXT_MAX_LENGTH, int(config.text_config.max_position_embeddings))
        self.default_batch_size = batch_size or DEFAULT_BATCH_SIZE
        self.video_batch_size = batch_size or DEFAULT_VIDEO_BATCH_SIZE
        self.info = self._describe(
            spec=spec,
            model_id=model_id,
            preprocessing=video_preprocessing(self._pre),
            model_type="xclip",
            text="unconditioned (get_text_features)",
        )

    @property
    def num_frames(self) -> int:
        return self._pre.num_frames

    def video_preprocessor(self) -> XClipVideoPreprocessor:
        return self._pre

    def encode_video_pixels(self, pixels: VideoPixels) -> Vectors:
        """Embed preprocessed clips (N, T, C, H, W) (or one (T, C, H, W)); one unit row each."""
        tensor = self.torch.from_numpy(np.ascontiguousarray(as_batch(pixels, 4)))
        return self._features(self.model.get_video_features, {"pixel_values": tensor})

    def encode_videos(
        self, clips: Sequence[Sequence[Any]], batch_size: int | None = None
    ) -> Vectors:
        return self._batches(
            clips,
            batch_size or self.video_batch_size,
            lambda chunk: self.encode_video_pixels(np.stack([self._pre(c) for c in chunk])),
        )


def video_preprocessing(pre: XClipVideoPreprocessor) -> dict[str, Any]:
    """The image processor's pixel-deciding settings, plus the frame count and sampling."""
    from mmsearch.encoders.hf import HFImagePreprocessor, image_preprocessing

    record = image_preprocessing(HFImagePreprocessor(pre.image_processor, {}, naflex=False))
    record["num_frames"] = pre.num_frames
    record["frame_sampling"] = FRAME_SAMPLING
    return record


def _rgb(frame: Any) -> Any:
    """PIL frames in RGB mode; arrays (H, W, 3) pass through."""
    convert = getattr(frame, "convert", None)
    if convert is not None and getattr(frame, "mode", "RGB") != "RGB":
        return convert("RGB")
    return frame
