"""Tiny random-weight models for tests, built locally and saved so they load offline.

Each builder writes a complete model folder (weights, config, tokenizer and
image processor) under the directory it is given and returns that folder's
path. Nothing is downloaded: tokenizers are made from small in-memory
vocabularies. Other test modules (ONNX export, library tests) import these.

    make_tiny_hf_clip(tmp_dir, kind="clip")   # transformers folder (config.json)
    make_tiny_openclip(tmp_dir)               # open_clip folder (open_clip_config.json)

plus the sample inputs the parity tests share (``TEXTS``, ``make_images``).
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

HF_KINDS = ("clip", "siglip", "siglip2", "siglip2_naflex", "chinese_clip", "altclip", "align")
"""Families ``make_tiny_hf_clip`` can build. ``siglip2`` is the fixed-resolution
SigLIP 2 layout (``SiglipModel`` + Gemma tokenizer, like google/siglip2-base-patch16-256);
``siglip2_naflex`` is the NaFlex ``Siglip2Model``."""

# Characters every tiny vocabulary covers: enough for the English and Chinese test strings.
CHINESE_CHARS = "一只狗在海滩上猫的照片红色蓝色汽车天空中飞鸟和人城市夜晚"
_CHARS = "".join(dict.fromkeys(string.ascii_lowercase + string.digits + ".,!?'-" + CHINESE_CHARS))

_SEED = 0

TEXTS = ["a photo of a dog on the beach", "红色汽车", "cat", "一只猫在城市夜晚的天空中飞"]
"""English and Chinese test strings (all within every tiny vocabulary's characters)."""


def make_images() -> list[Any]:
    """RGB PIL images of different sizes and aspect ratios, with structure (not flat noise)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    images = []
    for h, w in [(48, 64), (64, 30), (33, 97), (40, 40)]:
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], axis=-1)
        noisy = base + rng.normal(0, 20, size=base.shape)
        images.append(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB"))
    return images


def row_cosines(a: Any, b: Any) -> Any:
    """Cosine similarity of each row of ``a`` with the same row of ``b``."""
    import numpy as np

    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def _seed() -> None:
    import torch

    torch.manual_seed(_SEED)


def _save(model: Any, processor: Any, folder: Path) -> str:
    model.eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


# ---- tokenizers -------------------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable character table of byte-level BPE (GPT-2 / CLIP)."""
    bs = list(range(ord("!"), ord("~") + 1))
    bs += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


def _clip_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    merges = [("t", "h"), ("th", "e</w>")]
    vocab["th"] = len(vocab)
    vocab["the</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=64)


def _bert_tokenizer() -> Any:
    from transformers import BertTokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_CHARS]
    tokens += ["dog", "cat", "photo", "beach", "##s", "##ing"]
    vocab = {t: i for i, t in enumerate(tokens)}
    return BertTokenizer(vocab=vocab, model_max_length=64)


def _xlmr_tokenizer() -> Any:
    from transformers import XLMRobertaTokenizer

    pieces: list[tuple[str, float]] = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("▁", -2.0)] + [(c, -3.0) for c in _CHARS] + [("▁" + c, -2.5) for c in _CHARS]
    pieces += [("▁dog", -1.0), ("▁cat", -1.0), ("▁photo", -1.0), ("<mask>", 0.0)]
    return XLMRobertaTokenizer(vocab=pieces, model_max_length=64)


def _gemma_tokenizer() -> Any:
    """A Gemma-style BPE tokenizer, as SigLIP 2 checkpoints ship."""
    from transformers import GemmaTokenizer

    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "▁", *_CHARS, *string.ascii_uppercase]
    vocab = {t: i for i, t in enumerate(tokens)}
    vocab["▁a"] = len(vocab)
    return GemmaTokenizer(vocab=vocab, merges=[("▁", "a")], model_max_length=64)


def _siglip_tokenizer(folder: Path) -> Any:
    """SigLIP (v1) ships a SentencePiece model; train a tiny one on a few sentences."""
    import io

    import sentencepiece as spm
    from transformers import SiglipTokenizer

    corpus = [
        "a photo of a dog on the beach",
        "a red car in the city at night",
        "two cats and a bird in the sky",
        "the quick brown fox jumps over the lazy dog",
        CHINESE_CHARS,
        string.ascii_lowercase,
        string.digits,
    ]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus * 4),
        model_writer=buf,
        vocab_size=90,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    folder.mkdir(parents=True, exist_ok=True)
    spm_path = folder / "spiece.model"
    spm_path.write_bytes(buf.getvalue())
    return SiglipTokenizer(vocab_file=str(spm_path), model_max_length=64)


# ---- vision/text tower configs --------------------------------------------------------------

_VIT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": 32,
    "patch_size": 8,
}
_TEXT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
}


def _clip(folder: Path) -> str:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tok = _clip_tokenizer()
    text = {
        **_TEXT,
        "vocab_size": len(tok),
        "max_position_embeddings": 64,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    config = CLIPConfig(text_config=text, vision_config=_VIT, projection_dim=24)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32}
    )
    return _save(CLIPModel(config), CLIPProcessor(image_processor, tok), folder)


def _siglip_model(tok: Any, folder: Path) -> str:
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    text = {
        **_TEXT,
        "vocab_size": len(tok),
        "max_position_embeddings": 64,
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
        "projection_size": 32,
    }
    config = SiglipConfig(text_config=text, vision_config=_VIT)
    image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    return _save(SiglipModel(config), SiglipProcessor(image_processor, tok), folder)


def _siglip2_naflex(folder: Path) -> str:
    from transformers import (
        Siglip2Config,
        Siglip2ImageProcessor,
        Siglip2Model,
        Siglip2Processor,
    )

    tok = _gemma_tokenizer()
    text = {
        **_TEXT,
        "vocab_size": len(tok),
        "max_position_embeddings": 64,
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
        "projection_size": 32,
    }
    # Siglip2Processor imposes 16-pixel patches and at most 256 of them on every checkpoint.
    vision = {k: v for k, v in _VIT.items() if k != "image_size"}
    vision.update(patch_size=16, num_patches=256)
    config = Siglip2Config(text_config=text, vision_config=vision)
    image_processor = Siglip2ImageProcessor(patch_size=16, max_num_patches=256)
    processor = Siglip2Processor(image_processor, tok)
    return _save(Siglip2Model(config), processor, folder)


def _chinese_clip(folder: Path) -> str:
    from transformers import (
        ChineseCLIPConfig,
        ChineseCLIPImageProcessor,
        ChineseCLIPModel,
        ChineseCLIPProcessor,
    )

    tok = _bert_tokenizer()
    text = {**_TEXT, "vocab_size": len(tok), "max_position_embeddings": 64, "pad_token_id": 0}
    config = ChineseCLIPConfig(text_config=text, vision_config=_VIT, projection_dim=24)
    image_processor = ChineseCLIPImageProcessor(
        size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32}
    )
    return _save(ChineseCLIPModel(config), ChineseCLIPProcessor(image_processor, tok), folder)


def _altclip(folder: Path) -> str:
    from transformers import AltCLIPConfig, AltCLIPModel, AltCLIPProcessor, CLIPImageProcessor

    tok = _xlmr_tokenizer()
    text = {
        **_TEXT,
        "vocab_size": len(tok),
        "max_position_embeddings": 66,
        "project_dim": 32,
        "pad_token_id": tok.pad_token_id,
    }
    config = AltCLIPConfig(text_config=text, vision_config=_VIT, projection_dim=24)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32}
    )
    return _save(AltCLIPModel(config), AltCLIPProcessor(image_processor, tok), folder)


def _align(folder: Path) -> str:
    from transformers import AlignConfig, AlignModel, AlignProcessor, EfficientNetImageProcessor

    tok = _bert_tokenizer()
    text = {**_TEXT, "vocab_size": len(tok), "max_position_embeddings": 64}
    vision = {
        "image_size": 32,
        "width_coefficient": 1.0,
        "depth_coefficient": 1.0,
        "kernel_sizes": [3, 3, 3],
        "in_channels": [32, 8, 16],
        "out_channels": [8, 16, 32],
        "strides": [1, 2, 2],
        "num_block_repeats": [1, 1, 1],
        "expand_ratios": [1, 2, 2],
        "hidden_dim": 32,
        "depthwise_padding": [],
    }
    config = AlignConfig(text_config=text, vision_config=vision, projection_dim=32)
    image_processor = EfficientNetImageProcessor(
        size={"height": 40, "width": 40},
        crop_size={"height": 32, "width": 32},
        do_center_crop=True,
        rescale_offset=True,
        include_top=False,
    )
    return _save(AlignModel(config), AlignProcessor(image_processor, tok), folder)


def make_tiny_hf_clip(tmp_dir: str | Path, kind: str = "clip") -> str:
    """Build and save a tiny random-weight transformers model of one family; return its folder."""
    if kind not in HF_KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose from {HF_KINDS}")
    folder = Path(tmp_dir) / f"tiny-{kind}"
    _seed()
    if kind == "clip":
        return _clip(folder)
    if kind == "siglip":
        return _siglip_model(_siglip_tokenizer(folder), folder)
    if kind == "siglip2":
        return _siglip_model(_gemma_tokenizer(), folder)
    if kind == "siglip2_naflex":
        return _siglip2_naflex(folder)
    if kind == "chinese_clip":
        return _chinese_clip(folder)
    if kind == "altclip":
        return _altclip(folder)
    return _align(folder)


# ---- open_clip --------------------------------------------------------------------------------

OPENCLIP_MODEL_CFG: dict[str, Any] = {
    "embed_dim": 24,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 8, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
}
"""open_clip's ViT-B-32 layout with every width and depth shrunk (the vocabulary is
open_clip's own BPE, which ships inside the package)."""

OPENCLIP_PREPROCESS_CFG: dict[str, Any] = {
    "mean": [0.48145466, 0.4578275, 0.40821073],
    "std": [0.26862954, 0.26130258, 0.27577711],
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


def make_tiny_openclip(tmp_dir: str | Path) -> str:
    """Build and save a tiny open_clip CLIP (open_clip_config.json + safetensors); return its folder."""
    import open_clip
    from safetensors.torch import save_file

    folder = Path(tmp_dir) / "tiny-openclip"
    folder.mkdir(parents=True, exist_ok=True)
    _seed()
    model = open_clip.CLIP(**OPENCLIP_MODEL_CFG)
    model.eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    config = {"model_cfg": OPENCLIP_MODEL_CFG, "preprocess_cfg": OPENCLIP_PREPROCESS_CFG}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    return str(folder)
