"""WebDataset shards as training pairs: reading, splitting over processes and workers.

A shard is a ``.tar`` whose consecutive members share a key: ``key.jpg`` (or png,
jpeg, webp, bmp) and ``key.txt`` (or ``key.json`` with a ``caption``). Samples go to
validation by a hash of their key, so the split is the same in every run and process.
Shards are divided over ``processes x DataLoader workers`` readers when there are
enough of them; otherwise each reader reads all shards and keeps every n-th sample.

This module needs torch; it is imported only by training code.
"""

from __future__ import annotations

import glob
import os
import re
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from mmsearch.eval.datasets import DatasetError, PairSet
from mmsearch.train.data import ImageTransform, Sample, decode_sample, stable_id

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp")
TEXT_EXTS = ("txt", "caption", "json")


def is_tar_source(data: str) -> bool:
    """Whether ``data`` names WebDataset shards (a .tar, a folder of them, a glob, a brace range)."""
    if data.endswith(".tar") or "{" in data:
        return True
    path = Path(os.path.expanduser(data))
    return path.is_dir() and any(path.glob("*.tar"))


def expand_shards(data: str) -> list[str]:
    """Shard paths of ``data``: ``a-{000..009}.tar`` ranges, globs, a folder of ``.tar`` files."""
    path = Path(os.path.expanduser(data))
    if path.is_dir():
        shards = sorted(str(p) for p in path.glob("*.tar"))
    else:
        shards = []
        for pattern in _brace_expand(os.path.expanduser(data)):
            shards += sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    missing = [s for s in shards if not os.path.isfile(s)]
    if not shards or missing:
        raise DatasetError(
            f"no WebDataset shards at {data}" + (f": {missing[0]}" if missing else "")
        )
    return shards


def _brace_expand(pattern: str) -> list[str]:
    m = re.search(r"\{(\d+)\.\.(\d+)\}", pattern)
    if not m:
        return [pattern]
    lo, hi = m.group(1), m.group(2)
    width = len(lo)
    out: list[str] = []
    for i in range(int(lo), int(hi) + 1):
        out += _brace_expand(pattern[: m.start()] + str(i).zfill(width) + pattern[m.end() :])
    return out


def _tar_samples(shard: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per sample of a WebDataset shard (consecutive members)."""
    key: str | None = None
    parts: dict[str, bytes] = {}
    with tarfile.open(shard, "r") as tar:
        for member in tar:
            if not member.isfile():
                continue
            base = os.path.basename(member.name)
            stem, _, ext = base.partition(".")
            k = os.path.join(os.path.dirname(member.name), stem)
            if k != key:
                if key is not None:
                    yield key, parts
                key, parts = k, {}
            fh = tar.extractfile(member)
            if fh is not None:
                parts[ext.lower()] = fh.read()
        if key is not None:
            yield key, parts


def _tar_pair(parts: dict[str, bytes]) -> tuple[bytes, str] | None:
    import json

    image = next((parts[e] for e in IMAGE_EXTS if e in parts), None)
    caption = None
    for ext in TEXT_EXTS:
        if ext not in parts:
            continue
        raw = parts[ext].decode("utf-8", "replace")
        if ext == "json":
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            value = doc.get("caption") or doc.get("text") if isinstance(doc, dict) else None
            caption = value if isinstance(value, str) else None
        else:
            caption = raw.strip()
        if caption:
            break
    return (image, caption) if image is not None and caption else None


def in_validation(key: str, fraction: float) -> bool:
    """Whether sample ``key`` belongs to the validation share (stable, by a hash of the key)."""
    return stable_id(key) % 10_000 < int(round(fraction * 10_000))


class TarPairs(IterableDataset[Sample]):
    """Iterable pairs from WebDataset shards: this process's and this worker's share.

    Shards are split over ``world * workers`` readers when there are enough of
    them; otherwise every reader reads every shard and keeps every n-th sample.
    ``role`` is ``"train"`` (samples outside the validation share) or ``"val"``.
    Each epoch shuffles the shard order and, within a buffer, the samples.
    """

    def __init__(
        self,
        shards: Sequence[str],
        transform: ImageTransform,
        *,
        val_fraction: float,
        role: str = "train",
        world: int = 1,
        rank: int = 0,
        seed: int = 0,
        shuffle_buffer: int = 1000,
    ) -> None:
        self.shards = list(shards)
        self.transform = transform
        self.val_fraction = val_fraction
        self.role = role
        self.world, self.rank = world, rank
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer if role == "train" else 0
        self.epoch = 0

    def _keep(self, key: str) -> bool:
        return in_validation(key, self.val_fraction) == (self.role == "val")

    def count(self) -> int:
        """Samples of this role in all shards (reads the tar headers and captions)."""
        return sum(
            1
            for shard in self.shards
            for key, parts in _tar_samples(shard)
            if self._keep(key) and _tar_pair(parts) is not None
        )

    def pairs(self) -> Iterator[tuple[str, bytes, str]]:
        """(key, image bytes, caption) of this reader's share, unshuffled and undecoded."""
        info = torch.utils.data.get_worker_info()
        n_workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        readers, reader = self.world * n_workers, self.rank * n_workers + worker
        shards = list(self.shards)
        if self.role == "train":
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(shards))
            shards = [shards[int(i)] for i in order]
        by_shard = len(shards) >= readers
        mine = shards[reader::readers] if by_shard else shards
        n = 0
        for shard in mine:
            for key, parts in _tar_samples(shard):
                if not self._keep(key):
                    continue
                pair = _tar_pair(parts)
                if pair is None:
                    continue
                n += 1
                if by_shard or (n - 1) % readers == reader:
                    yield key, pair[0], pair[1]

    def __iter__(self) -> Iterator[Sample]:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, 7])
        buffer: list[tuple[str, bytes, str]] = []
        for i, item in enumerate(self._shuffled(self.pairs(), buffer, rng)):
            key, image, caption = item
            yield decode_sample(image, caption, stable_id(key), self.transform, self.epoch, i)

    def _shuffled(
        self,
        items: Iterator[tuple[str, bytes, str]],
        buffer: list[tuple[str, bytes, str]],
        rng: np.random.Generator,
    ) -> Iterator[tuple[str, bytes, str]]:
        if self.shuffle_buffer <= 1:
            yield from items
            return
        for item in items:
            buffer.append(item)
            if len(buffer) >= self.shuffle_buffer:
                j = int(rng.integers(len(buffer)))
                buffer[j], buffer[-1] = buffer[-1], buffer[j]
                yield buffer.pop()
        rng.shuffle(buffer)  # type: ignore[arg-type]
        yield from buffer


def tar_validation_set(shards: Sequence[str], fraction: float, limit: int = 5000) -> PairSet | None:
    """The validation share of tar shards as an in-memory :class:`PairSet` of image bytes.

    ``PairSet.media`` holds the sample keys; ``extra[i]["image"]`` the image bytes of
    caption ``i``'s media item.
    """
    if fraction <= 0:
        return None
    reader = TarPairs(shards, ImageTransform(lambda im: im), val_fraction=fraction, role="val")
    media: list[str] = []
    captions: list[str] = []
    links: list[int] = []
    extra: list[dict[str, Any]] = []
    for key, image, caption in reader.pairs():
        if len(media) >= limit:
            break
        media.append(key)
        captions.append(caption)
        links.append(len(media) - 1)
        extra.append({"image": image})
    if not media:
        return None
    return PairSet(media, captions, links, "image", "webdataset:val", extra, "webdataset")
