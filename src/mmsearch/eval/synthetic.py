"""Write a synthetic captioned-shapes dataset as images plus a pairs JSONL that ``read_pairs`` reads.

Built on :mod:`mmsearch.datasets.synthetic` (deterministic by seed). Each
JSONL line is ``{"media": "images/000123.png", "caption": ..., "lang": ...,
"split": "train" | "test", "caption_en": ..., "caption_zh": ..., <attributes>}``.
``split`` is ``"test"`` for images that use a held-out colour×shape
combination (never drawn in the generator's ``"train"`` split) and
``"train"`` otherwise, so ``read_pairs(..., split="train")`` and
``split="test"`` never share a combination. ``match_key`` is the described
content (every attribute the caption names): two images with the same
description fit each other's captions, and evaluation counts either as
correct (a model cannot tell them apart; strict one-to-one scoring would cap
R@1 well below 100%). With ``lang="both"`` every image
gets two lines, its English and its Chinese caption (two positives per image).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mmsearch.datasets.synthetic import FIELDS, Split, generate, uses_heldout_combo

Lang = Literal["en", "zh", "both"]
PAIRS_FILE = "pairs.jsonl"
IMAGES_DIR = "images"


@dataclass(frozen=True)
class SyntheticWritten:
    """What :func:`write_synthetic_pairs` wrote."""

    pairs: Path
    n_images: int
    n_pairs: int
    n_test: int
    """Images with a held-out colour×shape combination (``split == "test"``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": str(self.pairs),
            "images": self.n_images,
            "pairs_written": self.n_pairs,
            "test_images": self.n_test,
        }


def match_key(attrs: dict[str, Any]) -> str:
    """The described content of an image; images with equal keys fit each other's captions."""
    return ";".join(f"{k}={attrs[k]}" for k in FIELDS if attrs.get(k) is not None)


def _rows(sample: Any, rel: str, lang: Lang, split: str, seed: int, i: int) -> list[dict[str, Any]]:
    langs = ("en", "zh") if lang == "both" else (lang,)
    common = {
        "split": split,
        "match_key": match_key(sample.attrs),
        "seed": seed,
        "index": i,
        "caption_en": sample.caption_en,
        "caption_zh": sample.caption_zh,
        **sample.attrs,
    }
    return [
        {"media": rel, "caption": sample.caption_en if la == "en" else sample.caption_zh,
         "lang": la, **common}
        for la in langs
    ]  # fmt: skip


def write_synthetic_pairs(
    out_dir: str | os.PathLike[str],
    n: int,
    seed: int,
    *,
    lang: Lang = "en",
    split: Split = "all",
    size: int = 64,
    image_format: Literal["png", "jpg"] = "png",
) -> SyntheticWritten:
    """Write ``n`` generated images under ``out_dir/images`` and ``out_dir/pairs.jsonl``.

    ``split="heldout"`` draws only images with a held-out combination (a test
    set), ``"train"`` only the others, ``"all"`` both (marked per line).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if lang not in ("en", "zh", "both"):
        raise ValueError(f"unknown lang {lang!r}; expected 'en', 'zh' or 'both'")
    out = Path(out_dir)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    pairs = out / PAIRS_FILE
    tmp = pairs.with_suffix(".jsonl.tmp")
    n_pairs = n_test = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for i, s in enumerate(generate(n, seed, size=size, lang="en", split=split)):
            rel = f"{IMAGES_DIR}/{i:06d}.{image_format}"
            if image_format == "jpg":
                s.image.save(out / rel, quality=92)
            else:
                s.image.save(out / rel)
            row_split = "test" if uses_heldout_combo(s.attrs) else "train"
            n_test += row_split == "test"
            for row in _rows(s, rel, lang, row_split, seed, i):
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                n_pairs += 1
    os.replace(tmp, pairs)
    return SyntheticWritten(pairs, n, n_pairs, n_test)
