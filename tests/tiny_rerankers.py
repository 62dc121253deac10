"""Tiny random-weight rerankers for tests, built locally and saved so they load offline.

    make_tiny_blip_itm(tmp_dir)                  # BlipForImageTextRetrieval + BlipProcessor
    make_tiny_cross_encoder(tmp_dir, labels=1)   # sentence-transformers CrossEncoder.save

The weights are drawn with a larger spread than transformers' default (0.02), so that
the tiny models' outputs differ from one input to the next by more than float noise and
a parity test can tell a wrong preprocessing from a right one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tiny_models import _bert_tokenizer

_INIT = 0.2
_LAYERS = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}

QUERIES = ["a photo of a dog on the beach", "cat", "红色汽车"]
PASSAGES = [
    "a dog runs on the beach",
    "a cat sleeps",
    "一只猫在城市夜晚的天空中飞",
    "the quick brown fox jumps over the lazy dog " * 12,  # longer than the 64-token limit
]


def make_tiny_blip_itm(tmp_dir: str | Path, name: str = "tiny-blip-itm") -> str:
    """A BLIP image–text matching checkpoint (ViT and BERT of 2 layers, 32-px images)."""
    import torch
    from transformers import (
        BlipConfig,
        BlipForImageTextRetrieval,
        BlipImageProcessor,
        BlipProcessor,
    )

    tok = _bert_tokenizer()
    text = {
        **_LAYERS,
        "num_attention_heads": 4,
        "vocab_size": len(tok),
        "max_position_embeddings": 64,
        "encoder_hidden_size": 32,
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": tok.cls_token_id,
        "sep_token_id": tok.sep_token_id,
        "initializer_range": _INIT,
    }
    vision = {
        **_LAYERS,
        "num_attention_heads": 4,
        "image_size": 32,
        "patch_size": 8,
        "initializer_range": _INIT,
    }
    torch.manual_seed(0)
    config = BlipConfig(
        text_config=text, vision_config=vision, projection_dim=24, initializer_range=_INIT
    )
    folder = Path(tmp_dir) / name
    model = BlipForImageTextRetrieval(config).eval()
    model.save_pretrained(folder)
    BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tok).save_pretrained(folder)
    return str(folder)


def make_tiny_cross_encoder(
    tmp_dir: str | Path, labels: int = 1, *, activation_fn: Any = None, st_files: bool = True
) -> str:
    """A BERT sequence-classification model with ``labels`` outputs.

    With ``st_files`` it is saved by sentence-transformers' ``CrossEncoder.save`` (with
    ``activation_fn``, when given, as the model's saved activation); without, as a plain
    transformers folder (how older hub cross-encoders are laid out)."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import BertConfig, BertForSequenceClassification

    tok = _bert_tokenizer()
    torch.manual_seed(labels)
    config = BertConfig(
        **_LAYERS,
        num_attention_heads=4,
        vocab_size=len(tok),
        max_position_embeddings=64,
        num_labels=labels,
        initializer_range=_INIT,
    )
    suffix = "" if activation_fn is None else f"-{type(activation_fn).__name__.lower()}"
    plain = Path(tmp_dir) / f"tiny-bert-{labels}{suffix}"
    BertForSequenceClassification(config).eval().save_pretrained(plain)
    tok.save_pretrained(plain)
    if not st_files:
        return str(plain)
    folder = Path(tmp_dir) / f"tiny-ce-{labels}{suffix}"
    CrossEncoder(str(plain), device="cpu", activation_fn=activation_fn).save(str(folder))
    return str(folder)
