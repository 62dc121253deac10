"""Training pairs for the cross-attention reranker: scenes, and hard negatives a dual encoder mines.

The pool is generated two-shape scenes (each followed by its confusers: the shapes
swapped, their colours swapped, their sizes swapped; see
:mod:`~mmsearch.datasets.relations`) plus a share of one-shape pictures. The dual
encoder the reranker will sit on embeds every picture and every caption once; for
each sample the pictures most similar to its caption that the caption does *not*
describe become its hard negative images, and the captions most similar to its
picture that do not describe it its hard negative texts. The sample's own
confusers are always among them. A batch then pairs each picture with a fresh
caption (either language, sometimes leaving out sizes), one hard negative caption,
and one hard negative picture; the labels come from the attributes, so a "negative"
that happens to fit (a short caption, a repeated scene) is labelled a match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from mmsearch.datasets.relations import Layout, generate_scenes
from mmsearch.datasets.synthetic import (
    WILDCARD,
    SyntheticSample,
    codes,
    describe,
    generate,
    mention_codes,
    mention_matches,
)
from mmsearch.encoders.base import Encoder


def make_pool(
    n_scenes: int, seed: int, *, layout: Layout, single_share: float
) -> list[SyntheticSample]:
    """``n_scenes`` scene groups (scene + confusers) and ``single_share`` as many one-shape pictures."""
    samples = generate_scenes(n_scenes, seed, layout=layout)
    n_single = int(round(single_share * len(samples)))
    if n_single:
        singles = generate(n_single, seed + 1, pair_prob=0.0)
        for s in singles:
            s.extra["group"] = -1 - len(samples)  # never shared: a group of its own
            s.extra["role"] = "single"
            samples.append(s)
    return samples


@dataclass
class MinedPool:
    """Samples with their attribute codes and the hard negatives mined for each."""

    samples: list[SyntheticSample]
    image_codes: NDArray[np.int64]
    hard_images: list[NDArray[np.int64]]
    """Per sample: pictures its caption is confused with (indices into ``samples``)."""
    hard_texts: list[NDArray[np.int64]]
    """Per sample: samples whose caption is confused with its picture."""


def _group_members(samples: Sequence[SyntheticSample]) -> list[NDArray[np.int64]]:
    by_group: dict[int, list[int]] = {}
    for i, s in enumerate(samples):
        by_group.setdefault(int(s.extra.get("group", -1 - i)), []).append(i)
    return [np.asarray(by_group[int(s.extra.get("group", -1 - i))]) for i, s in enumerate(samples)]


def _top_wrong(
    sim: NDArray[np.float32], fits: NDArray[np.bool_], k: int
) -> list[NDArray[np.int64]]:
    """Per row: the ``k`` highest-scoring columns that do not fit."""
    masked = np.where(fits, -np.inf, sim)
    k = min(k, sim.shape[1] - 1)
    top = np.argpartition(-masked, k, axis=1)[:, :k]
    return [row[np.isfinite(masked[r, row])] for r, row in enumerate(top)]


def mine(
    encoder: Encoder, samples: list[SyntheticSample], k: int, *, chunk: int = 1024
) -> MinedPool:
    """Embed pictures and English captions with ``encoder``; keep each sample's ``k`` hardest."""
    if len(samples) < 2:
        raise ValueError("mining hard negatives needs at least 2 samples")
    images = encoder.encode_images([s.image for s in samples])
    texts = encoder.encode_text([s.caption_en for s in samples])
    image_codes = np.stack([codes(s.attrs) for s in samples])
    text_codes = np.stack([mention_codes(s.attrs) for s in samples])
    members = _group_members(samples)
    hard_images: list[NDArray[np.int64]] = []
    hard_texts: list[NDArray[np.int64]] = []
    for start in range(0, len(samples), chunk):
        rows = slice(start, start + chunk)
        fits = mention_matches(text_codes[rows], image_codes)  # caption r describes image c
        hard_images += _top_wrong(texts[rows] @ images.T, fits, k)
        fits_t = mention_matches(text_codes, image_codes[rows]).T  # caption c describes image r
        hard_texts += _top_wrong(images[rows] @ texts.T, fits_t, k)
    for i in range(len(samples)):
        own = members[i][members[i] != i]
        own = own[~mention_matches(text_codes[own], image_codes[i : i + 1])[:, 0]]
        hard_images[i] = np.union1d(hard_images[i], own).astype(np.int64)
        hard_texts[i] = np.union1d(hard_texts[i], own).astype(np.int64)
    return MinedPool(samples, image_codes, hard_images, hard_texts)


@dataclass
class PairBatch:
    """One step's pairs: picture index (into the pool), caption, label (1: describes it)."""

    images: NDArray[np.int64]
    texts: list[str]
    labels: NDArray[np.float32]


def draw_batch(
    pool: MinedPool,
    idx: NDArray[np.int64],
    rng: np.random.Generator,
    *,
    langs: Sequence[str],
    partial_prob: float,
) -> PairBatch:
    """Per sample in ``idx``: (picture, its caption), (picture, hard caption), (hard picture, caption)."""
    images: list[int] = []
    texts: list[str] = []
    mentions: list[NDArray[np.int64]] = []

    def caption(j: int) -> tuple[str, NDArray[np.int64]]:
        lang: Literal["en", "zh"] = "zh" if langs[int(rng.integers(len(langs)))] == "zh" else "en"
        text, mention = describe(pool.samples[j].attrs, lang, rng, partial_prob)
        return text, mention_codes(mention)

    def hard(options: NDArray[np.int64]) -> int:
        return int(rng.choice(options)) if len(options) else int(rng.integers(len(pool.samples)))

    for i in map(int, idx):
        own = caption(i)
        wrong = caption(hard(pool.hard_texts[i]))
        for image, (text, mention) in ((i, own), (i, wrong), (hard(pool.hard_images[i]), own)):
            images.append(image)
            texts.append(text)
            mentions.append(mention)
    image_idx = np.asarray(images, dtype=np.int64)
    said = np.stack(mentions)
    fits = np.all((said == WILDCARD) | (said == pool.image_codes[image_idx]), axis=1)
    return PairBatch(image_idx, texts, fits.astype(np.float32))
