"""Trainable towers of a transformers dual encoder (CLIP, SigLIP, Chinese-CLIP, AltCLIP, ALIGN).

Parts by ``config.model_type`` (``PARTS``): the vision and text sub-models, their output
projections and the temperature. Features come from the model's own
``get_image_features`` / ``get_text_features``, exactly as the hf encoder computes them;
the export is ``save_pretrained`` of model and processor, which the hf backend loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmsearch._lazy import require
from mmsearch.encoders.base import EncoderInfo
from mmsearch.train.config import TrainingError
from mmsearch.train.towers_base import LoadedTowers, Parts

_CLIP_LIKE = Parts(
    image=("vision_model", "visual_projection"),
    text=("text_model", "text_projection"),
    image_proj="visual_projection",
    text_proj="text_projection",
)

PARTS: dict[str, Parts] = {
    "clip": _CLIP_LIKE,
    "chinese_clip": _CLIP_LIKE,
    "altclip": _CLIP_LIKE,
    "siglip": Parts(
        image=("vision_model",),
        text=("text_model",),
        image_proj="vision_model.head",
        text_proj="text_model.head",
        bias="logit_bias",
    ),
    "align": Parts(
        image=("vision_model",),
        text=("text_model", "text_projection"),
        image_proj=None,
        text_proj="text_projection",
        scale="temperature",
        scale_kind="inverse",
    ),
}
"""``config.model_type`` -> the model's parts. SigLIP's image "projection" is its attention-
pooling head (not a single linear layer); ALIGN's image features are the pooled CNN output."""


@dataclass(frozen=True)
class HFTokenizer:
    """Picklable: captions -> input tensors, padded and cut as the hf encoder does."""

    tokenizer: Any
    padding: str
    max_length: int

    def __call__(self, texts: list[str]) -> dict[str, Any]:
        out = self.tokenizer(
            texts,
            padding=self.padding,
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        )
        return dict(out)


def _features(out: Any) -> Any:
    """``get_*_features`` returns a tensor (transformers 4) or an output with ``pooler_output``."""
    torch = require("torch")
    return out if torch.is_tensor(out) else out.pooler_output


class HFTowers(LoadedTowers):
    """:class:`~mmsearch.train.towers_base.Towers` of an :class:`~mmsearch.encoders.hf.HFEncoder`."""

    backend = "hf"

    def __init__(self, encoder: Any) -> None:
        model_type = encoder.info.extra.get("model_type")
        if model_type not in PARTS:
            raise TrainingError(f"training is not supported for {model_type!r} models")
        if encoder.family.naflex:
            raise TrainingError(
                "training NaFlex SigLIP 2 checkpoints is not supported; use a fixed-resolution one"
            )
        self.model = encoder.model
        self.processor = encoder.processor
        self.parts = PARTS[model_type]
        self.base_info: EncoderInfo | None = encoder.info
        self._pre = encoder.image_preprocessor()
        self._tok = HFTokenizer(
            self.processor.tokenizer, encoder.family.padding, encoder.max_length
        )

    def image_features(self, pixels: Any) -> Any:
        return _features(self.model.get_image_features(pixel_values=pixels))

    def text_features(self, text: dict[str, Any]) -> Any:
        return _features(self.model.get_text_features(**text))

    def export(self, folder: Path, model_id: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)


def from_encoder(encoder: Any) -> HFTowers:
    return HFTowers(encoder)
