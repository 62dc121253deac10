"""Trainable towers of mmsearch's own small CLIP-style model (backend "tiny"), and new ones.

``scratch(size, captions)`` builds a fresh model of a named size (``SCRATCH_SIZES``) with a
word-level vocabulary of the training captions; a tiny model folder (``builtin:demo`` or
one written by this trainer) is fine-tuned through the same class. The export is the
tiny folder format (``mmsearch_model.json`` + safetensors + ``vocab.txt``), in float32,
with the new model's identity in its config.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmsearch._lazy import require
from mmsearch.encoders.base import EncoderInfo
from mmsearch.encoders.tiny import (
    TinyConfig,
    TinyPreprocessor,
    TinyTokenizer,
    build_model,
    save_model,
    split_words,
)
from mmsearch.train.config import TrainingError
from mmsearch.train.towers_base import Parts, linear_targets

SCRATCH_SIZES: dict[str, TinyConfig] = {
    "tiny": TinyConfig(
        model_id="mmsearch/scratch-tiny",
        embed_dim=64,
        image_size=32,
        channels=(16, 32, 64),
        stem_stride=1,
        text_width=64,
        text_hidden=96,
    ),
    "small": TinyConfig(model_id="mmsearch/scratch-small"),
}
"""``scratch:<size>`` -> architecture. ``tiny`` (32 px, ~0.2 M weights) learns a toy set in
seconds; ``small`` is the demo model's architecture (64 px, ~1.3 M weights)."""


@dataclass(frozen=True)
class TinyTextTokenizer:
    """Picklable: captions -> ``{"ids": LongTensor}``."""

    tokenizer: TinyTokenizer

    def __call__(self, texts: list[str]) -> dict[str, Any]:
        torch = require("torch")
        return {"ids": torch.from_numpy(self.tokenizer.encode(texts))}


class TinyTowers:
    """:class:`~mmsearch.train.towers_base.Towers` of a ``TinyClip`` module."""

    backend = "tiny"

    def __init__(self, model: Any, tokenizer: TinyTokenizer, base_info: EncoderInfo | None) -> None:
        torch = require("torch")
        self.model = model
        self.tokenizer_ = tokenizer
        self.base_info = base_info
        head = [n for n, m in model.visual.head.named_children() if isinstance(m, torch.nn.Linear)]
        self.parts = Parts(
            image=("visual",),
            text=("text",),
            image_proj=f"visual.head.{head[-1]}",
            text_proj="text.proj",
        )

    @property
    def config(self) -> TinyConfig:
        cfg: TinyConfig = self.model.config
        return cfg

    def image_features(self, pixels: Any) -> Any:
        return self.model.visual(pixels)

    def text_features(self, text: dict[str, Any]) -> Any:
        return self.model.text(text["ids"])

    def preprocessor(self) -> Callable[[Any], Any]:
        cfg = self.config
        return TinyPreprocessor(cfg.image_size, cfg.mean, cfg.std)

    def tokenizer(self) -> Callable[[list[str]], dict[str, Any]]:
        return TinyTextTokenizer(self.tokenizer_)

    def lora_targets(self) -> list[str]:
        return linear_targets(self.model, self.parts.image + self.parts.text)

    def extend_vocabulary(self, captions: list[str]) -> int:
        """Add the words of ``captions`` the vocabulary lacks; return how many were added.

        A word-level vocabulary cannot spell a new word, so fine-tuning on captions with
        new words ("purple", Chinese characters) grows it: new embedding rows start as
        random vectors of the existing rows' scale and are learnt with the text tower.
        """
        torch = require("torch")
        known = set(self.tokenizer_.vocab)
        new = sorted({w for c in captions for w in split_words(c)} - known)
        if not new:
            return 0
        old = self.model.text.embed
        grown = torch.nn.Embedding(old.num_embeddings + len(new), old.embedding_dim, padding_idx=0)
        with torch.no_grad():
            grown.weight.normal_(std=float(old.weight[1:].std()))
            grown.weight[: old.num_embeddings] = old.weight
        grown.weight.requires_grad_(old.weight.requires_grad)
        self.model.text.embed = grown
        self.tokenizer_ = TinyTokenizer([*self.tokenizer_.vocab, *new], self.config.context_length)
        self.model.config = dataclasses.replace(self.config, vocab_size=len(self.tokenizer_))
        return len(new)

    def export(self, folder: Path, model_id: str) -> None:
        self.model.config = dataclasses.replace(self.config, model_id=model_id)
        save_model(self.model, self.tokenizer_, folder, dtype="float32")


def from_encoder(encoder: Any) -> TinyTowers:
    return TinyTowers(encoder.model, encoder.tokenizer, encoder.info)


def scratch(size: str, captions: list[str], *, loss: str = "clip") -> TinyTowers:
    """A new, randomly initialised model of ``size`` with a vocabulary of ``captions``.

    For the SigLIP loss the temperature starts at 10, as in the SigLIP paper.
    """
    torch = require("torch")
    if size not in SCRATCH_SIZES:
        raise TrainingError(
            f"unknown scratch size {size!r}; choose from "
            + ", ".join(f"scratch:{s}" for s in SCRATCH_SIZES)
        )
    if not captions:
        raise TrainingError("a model trained from scratch needs captions to build its vocabulary")
    base = SCRATCH_SIZES[size]
    tokenizer = TinyTokenizer.build(captions, base.context_length)
    model = build_model(dataclasses.replace(base, vocab_size=len(tokenizer)))
    if loss == "siglip":
        with torch.no_grad():
            model.logit_scale.fill_(math.log(10.0))
    return TinyTowers(model, tokenizer, None)
