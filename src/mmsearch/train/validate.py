"""Validation during training: embed a held-out pair set and score retrieval both ways.

The metrics are :func:`mmsearch.eval.metrics.evaluate_pairs` (CLIP_benchmark
conventions: a caption finds its image, an image any of its captions). The single
number early stopping watches, :func:`val_score`, is the mean of text→media and
media→text Recall@K over the configured K (the "mean recall" papers report).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mmsearch.errors import DecodeError
from mmsearch.eval.datasets import PairSet
from mmsearch.eval.metrics import evaluate_pairs
from mmsearch.train.data import ImageTransform, open_image
from mmsearch.train.model import ContrastiveModel

log = logging.getLogger(__name__)


class MediaDataset(torch.utils.data.Dataset[np.ndarray[Any, Any]]):
    """Map-style: media item ``i`` of a pair set as model pixels (zeros if undecodable)."""

    def __init__(self, pairs: PairSet, transform: ImageTransform) -> None:
        self.sources: list[str | bytes] = list(pairs.media)
        by_media = pairs.captions_of()
        for m, caps in enumerate(by_media):
            blob = pairs.extra[caps[0]].get("image") if caps else None
            if isinstance(blob, bytes):  # tar shards keep image bytes, not paths
                self.sources[m] = blob
        self.transform = transform
        self._shape: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> np.ndarray[Any, Any]:
        try:
            return self.transform(open_image(self.sources[index]))
        except DecodeError as exc:
            log.warning("validation image %d cannot be decoded: %s", index, exc.reason)
            probe = self.transform(_blank())
            return np.zeros_like(probe)


def _blank() -> Any:
    from PIL import Image

    return Image.new("RGB", (32, 32))


def _stack(items: Sequence[np.ndarray[Any, Any]]) -> torch.Tensor:
    return torch.from_numpy(np.stack(items).astype(np.float32))


@dataclass(frozen=True)
class PairEmbedder:
    """How validation embeds a pair set: the model under training, its eval preprocessing and
    tokenizer, where and in what batches it runs."""

    model: ContrastiveModel
    transform: ImageTransform
    tokenize: Any
    device: str
    batch_size: int
    workers: int
    autocast: Any = contextlib.nullcontext

    @torch.no_grad()
    def embed(self, pairs: PairSet) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(caption vectors, media vectors) of ``pairs`` with the model in eval mode."""
        model, batch_size = self.model, self.batch_size
        was_training = model.training
        model.eval()
        try:
            loader: torch.utils.data.DataLoader[Any] = torch.utils.data.DataLoader(
                MediaDataset(pairs, self.transform),
                batch_size=batch_size,
                num_workers=self.workers,
                collate_fn=_stack,
            )
            media = []
            for pixels in loader:
                with self.autocast():
                    media.append(model.encode_image(pixels.to(self.device)).float().cpu())
            texts = []
            for start in range(0, pairs.n_captions, batch_size):
                chunk = pairs.captions[start : start + batch_size]
                inputs = {k: v.to(self.device) for k, v in self.tokenize(list(chunk)).items()}
                with self.autocast():
                    texts.append(model.encode_text(inputs).float().cpu())
        finally:
            model.train(was_training)
        return torch.cat(texts).numpy(), torch.cat(media).numpy()

    def metrics(self, pairs: PairSet, ks: Sequence[int]) -> dict[str, float]:
        """Both directions' retrieval metrics on ``pairs`` (``t2m_R@1``, ``m2t_R@1`` ...)."""
        text_vecs, media_vecs = self.embed(pairs)
        return evaluate_pairs(text_vecs, media_vecs, pairs.caption_media, ks)


def val_score(metrics: dict[str, float], ks: Sequence[int]) -> float:
    """Mean of ``t2m_R@K`` and ``m2t_R@K`` over ``ks`` (the number early stopping watches)."""
    values = [metrics[f"{d}_R@{k}"] for d in ("t2m", "m2t") for k in ks]
    values = [v for v in values if v == v]  # NaN: a direction without queries
    return float(np.mean(values)) if values else float("nan")
