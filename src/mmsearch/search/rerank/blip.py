"""BLIP image–text matching (ITM) as a reranker of pictures (photos and video keyframes).

``BlipForImageTextRetrieval`` with ``use_itm_head=True`` runs the query's tokens through
BLIP's text encoder with cross-attention to the image's patch embeddings and a binary
head on the [CLS] token: "does this text describe this image?". The probability of a
match is ``softmax(itm_logits)[:, 1]``, exactly as transformers' model card reads it,
so it joins the calibrated scale with no fitting. Checkpoints:
``Salesforce/blip-itm-base-coco`` (ViT-B, 384 px), ``…-large-coco``, ``…-base-flickr``.

The query is tokenised once and shared by every picture of a call; pictures go through
the checkpoint's own image processor in batches of ``batch_size``. CUDA and float16 are
used when present (``device`` chooses), as for the encoders.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch._lazy import require
from mmsearch.encoders.base import batched
from mmsearch.encoders.torch_util import load_pretrained, to_device
from mmsearch.errors import ModelNotFoundError
from mmsearch.search.rerank.base import Candidate
from mmsearch.search.rerank.checkpoint import resolve_checkpoint

DEFAULT_BATCH = 16
MODEL_CLASS = "BlipForImageTextRetrieval"


class BlipItmReranker:
    """Scores (query, picture) pairs with BLIP's image–text matching head."""

    name = "blip-itm"
    kinds: frozenset[str] = frozenset({"picture"})

    def __init__(
        self, model: Any, processor: Any, *, device: str, dtype: Any, batch_size: int, model_id: str
    ) -> None:
        self.model = model
        self.processor = processor
        self.device = device
        self.dtype = dtype
        self.batch_size = max(1, int(batch_size))
        self.model_id = model_id
        text_config = model.config.text_config
        self.max_length = min(
            int(processor.tokenizer.model_max_length), int(text_config.max_position_embeddings)
        )

    def score(self, query: str, candidates: Sequence[Candidate]) -> np.ndarray:
        images = [_picture(c) for c in candidates]
        if not images:
            return np.zeros(0, dtype=np.float32)
        text = self.processor.tokenizer(
            [query],
            truncation=True,
            max_length=self.max_length,
            return_token_type_ids=False,
            return_tensors="pt",
        )
        parts = [self._score_batch(text, list(chunk)) for chunk in batched(images, self.batch_size)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _score_batch(self, text: Any, images: list[Any]) -> np.ndarray:
        torch = require("torch")
        pixels = self.processor.image_processor(images=images, return_tensors="pt")
        n = len(images)
        inputs = {
            "input_ids": text["input_ids"].expand(n, -1),
            "attention_mask": text["attention_mask"].expand(n, -1),
            "pixel_values": pixels["pixel_values"],
        }
        with torch.inference_mode():
            out = self.model(**to_device(inputs, self.device, self.dtype), use_itm_head=True)
            probs = torch.softmax(out.itm_score.float(), dim=-1)[:, 1]
        result: np.ndarray = probs.cpu().numpy()
        return result


def load(
    name: str, *, device: str | None = None, batch_size: int | None = None, **_: Any
) -> BlipItmReranker:
    """Load a BLIP ITM checkpoint from a folder or a hub id (``Salesforce/blip-itm-base-coco``)."""
    spec = f"blip:{name}"
    folder, model_id = resolve_checkpoint(name, spec=spec)
    _check_folder(folder, spec)
    loaded = load_pretrained(
        folder, spec=spec, model_class=MODEL_CLASS, processor_class="BlipProcessor", device=device
    )
    return BlipItmReranker(
        loaded.model,
        loaded.processor,
        device=loaded.device,
        dtype=loaded.dtype,
        batch_size=batch_size or DEFAULT_BATCH,
        model_id=model_id,
    )


def _check_folder(folder: Path, spec: str) -> None:
    """Refuse a BLIP checkpoint without the ITM head (captioning, VQA): its head would be
    random weights, and its "probabilities" noise."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot read {folder / 'config.json'} for {spec!r}") from exc
    model_type = config.get("model_type")
    if model_type != "blip":
        raise ModelNotFoundError(f"{spec!r} is a {model_type!r} model, not BLIP")
    archs = config.get("architectures") or [MODEL_CLASS]
    if MODEL_CLASS not in archs:
        raise ModelNotFoundError(
            f"{spec!r} is a BLIP {', '.join(archs)} checkpoint without the image-text matching "
            "head; use an ITM checkpoint such as Salesforce/blip-itm-base-coco"
        )


def _picture(c: Candidate) -> Any:
    if c.kind != "picture" or c.image is None:
        raise ValueError(f"BLIP ITM scores pictures, not a {c.kind} candidate")
    return c.image
