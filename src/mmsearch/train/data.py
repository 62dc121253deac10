"""Training pairs: read them, split off validation, decode in DataLoader workers, batch them.

Two sources: a pairs file in any format :func:`mmsearch.eval.datasets.read_pairs` reads
(JSONL, CSV, Karpathy, COCO, ...), as a map-style :class:`PairDataset` over captions
batched by :func:`batch_plan` so that every process of a multi-GPU run sees its own
slice of the same global batch; and WebDataset shards (:mod:`mmsearch.train.shards`).

Workers decode and preprocess images with the model's own (picklable) preprocessor and
tokenise the captions in the collate function; the main process only moves tensors to
the device. Every sample carries a media id and a caption id: two pairs of a batch that
share either (one image with two captions, two images with the same caption) are
positives of each other in the loss. An image that fails to decode is replaced by
another pair of its batch (ids included), so batch sizes stay equal on every process.

This module needs torch; it is imported only by training code.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from mmsearch.errors import DecodeError
from mmsearch.eval.datasets import DatasetError, PairSet, read_pairs

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------- reading


def stable_id(text: str) -> int:
    """A 63-bit id of ``text`` that is the same in every process and run."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def caption_id(caption: str) -> int:
    """Id of a caption up to case and spacing (identical captions are positives)."""
    return stable_id(" ".join(caption.lower().split()))


def holdout(pairs: PairSet, fraction: float, seed: int) -> tuple[PairSet, PairSet | None]:
    """Split ``pairs`` by media item: ``fraction`` of the items (all their captions) for validation."""
    n_val = int(round(pairs.n_media * fraction))
    if fraction <= 0 or n_val == 0:
        return pairs, None
    if n_val >= pairs.n_media:
        raise DatasetError(f"{pairs.name}: too few media items ({pairs.n_media}) to hold out any")
    order = np.random.default_rng(seed).permutation(pairs.n_media)
    val = sorted(int(i) for i in order[:n_val])
    train = sorted(int(i) for i in order[n_val:])
    return pairs.select_media(train), pairs.select_media(val)


def read_training_pairs(
    data: str,
    *,
    split: str | None,
    root: str | None,
    val_data: str | None,
    val_split: float,
    seed: int,
) -> tuple[PairSet, PairSet | None]:
    """Training pairs and validation pairs (from ``val_data`` or held out of ``data``)."""
    train = read_pairs(data, split=split or "train", root=root)
    if train.modality != "image":
        raise DatasetError(f"{data}: training reads image–caption pairs, not {train.modality}")
    if val_data:
        return train, read_pairs(val_data, split="val", root=root)
    return holdout(train, val_split, seed)


# ---------------------------------------------------------------------------------- images


@dataclass(frozen=True)
class ImageTransform:
    """Picklable: RGB image -> model pixels, with an optional random shift for training.

    The shift (up to ``max_shift`` of the side, edges replicated) is drawn from a
    generator seeded by ``(seed, epoch, index)``: the same in every run and process.
    """

    preprocess: Callable[[Any], NDArray[np.float32]]
    max_shift: float = 0.0
    seed: int = 0

    def __call__(self, image: Any, epoch: int = 0, index: int = 0) -> NDArray[np.float32]:
        pixels = np.asarray(self.preprocess(image), dtype=np.float32)
        if self.max_shift <= 0 or pixels.ndim != 3:
            return pixels
        rng = np.random.default_rng([self.seed, epoch, index])
        h, w = pixels.shape[1:]
        sy, sx = max(1, int(h * self.max_shift)), max(1, int(w * self.max_shift))
        padded = np.pad(pixels, ((0, 0), (sy, sy), (sx, sx)), mode="edge")
        dy, dx = int(rng.integers(0, 2 * sy + 1)), int(rng.integers(0, 2 * sx + 1))
        return np.ascontiguousarray(padded[:, dy : dy + h, dx : dx + w])


def open_image(src: str | bytes) -> Any:
    from PIL import Image, UnidentifiedImageError

    from mmsearch.media.image import open_image_rgb

    if isinstance(src, bytes):
        try:
            return open_image_rgb(Image.open(io.BytesIO(src)))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DecodeError(f"cannot decode image bytes: {exc}") from exc
    return open_image_rgb(src)


@dataclass
class Sample:
    """One decoded pair; ``pixels`` is None when the image could not be decoded."""

    pixels: NDArray[np.float32] | None
    caption: str
    media_id: int
    caption_id: int


def decode_sample(
    src: str | bytes, caption: str, media_id: int, transform: ImageTransform, epoch: int, index: int
) -> Sample:
    try:
        pixels: NDArray[np.float32] | None = transform(open_image(src), epoch, index)
    except DecodeError as exc:
        log.warning("skipping an undecodable training image (%s): %s", _name(src), exc.reason)
        pixels = None
    return Sample(pixels, caption, media_id, caption_id(caption))


def _name(src: str | bytes) -> str:
    return src if isinstance(src, str) else f"{len(src)} bytes"


# ---------------------------------------------------------------------------------- datasets


class PairDataset(Dataset[Sample]):
    """Map-style dataset of a :class:`PairSet`: item ``i`` is caption ``i`` with its image.

    Set :attr:`epoch` before each epoch (it seeds the augmentation); DataLoader workers
    get a fresh copy of the dataset every epoch, so they see the new value.
    """

    def __init__(self, pairs: PairSet, transform: ImageTransform) -> None:
        self.pairs = pairs
        self.transform = transform
        self.epoch = 0
        self.media_ids = [stable_id(p) for p in pairs.media]

    def __len__(self) -> int:
        return self.pairs.n_captions

    def __getitem__(self, index: int) -> Sample:
        m = self.pairs.caption_media[index]
        return decode_sample(
            self.pairs.media[m],
            self.pairs.captions[index],
            self.media_ids[m],
            self.transform,
            self.epoch,
            index,
        )


@dataclass(frozen=True)
class Batch:
    """A collated batch: model pixels, tokenised text and the ids that define positives."""

    pixels: Any
    text: dict[str, Any]
    media_ids: Any
    caption_ids: Any

    def __len__(self) -> int:
        return int(self.media_ids.shape[0])

    def to(self, device: Any) -> Batch:
        return Batch(
            self.pixels.to(device, non_blocking=True),
            {k: v.to(device, non_blocking=True) for k, v in self.text.items()},
            self.media_ids.to(device),
            self.caption_ids.to(device),
        )


@dataclass(frozen=True)
class Collate:
    """Picklable collate function: stack pixels, tokenise captions (runs in the workers)."""

    tokenize: Callable[[list[str]], dict[str, Any]]

    def __call__(self, samples: Sequence[Sample]) -> Batch:
        good = [s for s in samples if s.pixels is not None]
        if not good:
            raise DecodeError("no image of a training batch could be decoded")
        # stand-ins for undecodable images: copies of good pairs (same ids, so they are
        # positives of their originals and change nothing but the weighting)
        filled = [s if s.pixels is not None else good[i % len(good)] for i, s in enumerate(samples)]
        pixels = torch.from_numpy(
            np.stack([s.pixels for s in filled if s.pixels is not None]).astype(np.float32)
        )
        return Batch(
            pixels,
            self.tokenize([s.caption for s in filled]),
            torch.tensor([s.media_id for s in filled], dtype=torch.int64),
            torch.tensor([s.caption_id for s in filled], dtype=torch.int64),
        )


def batch_plan(
    n: int, micro: int, accum: int, world: int, rank: int, seed: int, epoch: int
) -> list[list[int]]:
    """This process's micro-batches of one epoch over ``n`` items (drop-last).

    A step takes ``micro * accum * world`` items of a permutation seeded by
    ``(seed, epoch)``; micro-batch ``m`` of process ``rank`` is slice ``m * world + rank``
    of it. One process with ``accum * world`` times the micro-batch sees the same
    items in each step.
    """
    per_step = micro * accum * world
    steps = n // per_step
    order = np.random.default_rng([seed, epoch]).permutation(n)
    out: list[list[int]] = []
    for s in range(steps):
        base = s * per_step
        for m in range(accum):
            start = base + (m * world + rank) * micro
            out.append([int(i) for i in order[start : start + micro]])
    return out


def loader(
    dataset: Any,
    collate: Collate,
    *,
    workers: int,
    batches: list[list[int]] | None = None,
    batch_size: int | None = None,
    pin_memory: bool = False,
) -> Any:
    """A DataLoader: explicit ``batches`` for map-style data, ``batch_size`` for iterable data."""
    kwargs: dict[str, Any] = {
        "collate_fn": collate,
        "num_workers": workers,
        "pin_memory": pin_memory,
    }
    if workers > 0:
        kwargs["prefetch_factor"] = 4
    if batches is not None:
        return torch.utils.data.DataLoader(dataset, batch_sampler=batches, **kwargs)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, drop_last=True, **kwargs)
