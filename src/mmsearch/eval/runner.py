"""Evaluate one model on one :class:`~mmsearch.eval.datasets.PairSet`: embed, rank, score.

- images: the encoder's own ``encode_images``; files that do not decode are
  dropped with their captions (``EvalResult.dropped``), not fatal.
- videos: frames sampled by ``mmsearch.media.video.load_clip_frames``; a
  video–text encoder (``encode_videos``) gets the frames as one clip, an
  image–text encoder embeds each frame and the frame vectors are mean-pooled.
- audio: an audio–text encoder; the decoded clip is cut into windows of the
  model's ``window_seconds``, each embedded, and the window vectors mean-pooled.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.errors import DecodeError, MMSearchError
from mmsearch.eval.datasets import PairSet
from mmsearch.eval.metrics import Ranking, metrics_from_ranking, pair_rankings, recall_at
from mmsearch.types import Vectors, l2_normalize

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
"""Called with the number of media items or captions just finished."""

DIRECTION_NAMES: dict[str, dict[str, str]] = {
    "image": {"t2m": "text→image", "m2t": "image→text"},
    "video": {"t2m": "text→video", "m2t": "video→text"},
    "audio": {"t2m": "text→audio", "m2t": "audio→text"},
}


class EvalError(MMSearchError):
    """The model cannot be evaluated on this dataset (wrong modality, nothing decodable)."""


@dataclass(frozen=True)
class MediaOptions:
    """How video and audio are sampled before they are embedded."""

    fps: float = 1.0
    max_frames: int = 16
    max_side: int = 512
    max_audio_seconds: float = 30.0


@dataclass
class EvalResult:
    """One model on one dataset: sizes, metrics (``t2m_R@1``, ...) and timings."""

    model: str
    dataset: str
    modality: str
    n_media: int
    n_captions: int
    metrics: dict[str, float]
    seconds: float
    ks: tuple[int, ...] = (1, 5, 10)
    timings: dict[str, float] = field(default_factory=dict)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    """Media that failed to decode: (path, reason); their captions were left out."""
    positives: str = "own media"
    """What counted as correct: ``"own media"`` (a caption's own media item, its captions) or
    ``"match_key"`` (also media sharing its ``match_key``)."""
    rankings: dict[str, Ranking] = field(default_factory=dict, repr=False)
    """Per direction (``t2m``, ``m2t``): where the positives ranked, for curves at any K."""

    def recall_curve(self, direction: str, ks: Sequence[int]) -> list[float]:
        """Recall at each K for ``direction``, from the stored ranking (else from ``metrics``)."""
        ranking = self.rankings.get(direction)
        if ranking is not None:
            return [recall_at(ranking.best_ranks, k, ranking.n_gallery) for k in ks]
        return [self.metrics.get(f"{direction}_R@{k}", float("nan")) for k in ks]

    def direction_name(self, direction: str) -> str:
        return DIRECTION_NAMES.get(self.modality, DIRECTION_NAMES["image"])[direction]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "modality": self.modality,
            "n_media": self.n_media,
            "n_captions": self.n_captions,
            "ks": list(self.ks),
            "positives": self.positives,
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "dropped": [{"path": p, "reason": r} for p, r in self.dropped],
        }


def _json_number(v: float) -> float | None:
    return None if math.isnan(v) else round(float(v), 6)


def _model_spec(encoder: Any) -> str:
    info = getattr(encoder, "info", None)
    return str(getattr(info, "spec", None) or type(encoder).__name__)


def _mean_unit(vectors: Vectors) -> Vectors:
    return l2_normalize(vectors.mean(axis=0, keepdims=True))[0]


# ----------------------------------------------------------------------------- media


def _embed_images(
    paths: Sequence[str], encoder: Any, batch_size: int, progress: Progress | None
) -> tuple[list[int], list[Vectors], list[tuple[str, str]]]:
    from mmsearch.media.image import open_image_rgb

    ok: list[int] = []
    vecs: list[Vectors] = []
    dropped: list[tuple[str, str]] = []
    for start in range(0, len(paths), batch_size):
        images, idx = [], []
        for i in range(start, min(start + batch_size, len(paths))):
            try:
                images.append(open_image_rgb(paths[i]))
                idx.append(i)
            except DecodeError as exc:
                dropped.append((paths[i], exc.reason))
        if images:
            vecs.append(encoder.encode_images(images, batch_size=batch_size))
            ok += idx
        if progress:
            progress(min(batch_size, len(paths) - start))
    return ok, vecs, dropped


def _embed_one_video(path: str, encoder: Any, batch_size: int, opt: MediaOptions) -> Vectors:
    from mmsearch.media.video import load_clip_frames

    frames = load_clip_frames(path, fps=opt.fps, max_frames=opt.max_frames, max_side=opt.max_side)
    if not frames:
        raise DecodeError("no frames decoded")
    images = [f.image for f in frames]
    if hasattr(encoder, "encode_videos"):
        out: Vectors = encoder.encode_videos([images], batch_size=1)
        return out[0]
    return _mean_unit(encoder.encode_images(images, batch_size=batch_size))


def _embed_one_audio(path: str, encoder: Any, batch_size: int, opt: MediaOptions) -> Vectors:
    from mmsearch.media.audio import load_audio

    rate = int(encoder.sample_rate)
    wave = np.asarray(
        load_audio(path, sample_rate=rate, max_seconds=opt.max_audio_seconds), dtype=np.float32
    )
    if wave.size == 0:
        raise DecodeError("no audio samples decoded")
    step = max(1, int(round(float(encoder.window_seconds) * rate)))
    windows = [wave[i : i + step] for i in range(0, wave.size, step)]
    if len(windows) > 1 and windows[-1].size < rate:  # drop a tail shorter than a second
        windows.pop()
    return _mean_unit(encoder.encode_audio(windows, batch_size=batch_size))


def _embed_each(
    paths: Sequence[str],
    one: Callable[[str], Vectors],
    progress: Progress | None,
) -> tuple[list[int], list[Vectors], list[tuple[str, str]]]:
    ok: list[int] = []
    vecs: list[Vectors] = []
    dropped: list[tuple[str, str]] = []
    for i, path in enumerate(paths):
        try:
            vecs.append(one(path)[None, :])
            ok.append(i)
        except DecodeError as exc:
            dropped.append((path, exc.reason))
        if progress:
            progress(1)
    return ok, vecs, dropped


def _check_encoder(modality: str, encoder: Any) -> None:
    need = {"image": "encode_images", "video": "encode_images", "audio": "encode_audio"}[modality]
    if modality == "video" and hasattr(encoder, "encode_videos"):
        return
    if not hasattr(encoder, need) or not hasattr(encoder, "encode_text"):
        raise EvalError(
            f"model {_model_spec(encoder)} cannot embed {modality} "
            f"(it has no {need}); use an {'audio–text' if modality == 'audio' else 'image–text'} "
            "model"
        )


def embed_media(
    pairs: PairSet,
    encoder: Any,
    *,
    batch_size: int = 32,
    options: MediaOptions | None = None,
    progress: Progress | None = None,
) -> tuple[list[int], Vectors, list[tuple[str, str]]]:
    """Embed ``pairs.media``; return the indices that worked, their vectors, and failures."""
    _check_encoder(pairs.modality, encoder)
    opt = options or MediaOptions()
    if pairs.modality == "image":
        ok, vecs, dropped = _embed_images(pairs.media, encoder, batch_size, progress)
    elif pairs.modality == "video":
        ok, vecs, dropped = _embed_each(
            pairs.media, lambda p: _embed_one_video(p, encoder, batch_size, opt), progress
        )
    else:
        ok, vecs, dropped = _embed_each(
            pairs.media, lambda p: _embed_one_audio(p, encoder, batch_size, opt), progress
        )
    for path, reason in dropped:
        log.warning("cannot decode %s: %s (its captions are left out)", path, reason)
    if not ok:
        raise EvalError(f"none of the {pairs.n_media} {pairs.modality} files could be decoded")
    return ok, np.concatenate(vecs, axis=0).astype(np.float32, copy=False), dropped


def embed_captions(
    captions: Sequence[str], encoder: Any, *, batch_size: int = 32, progress: Progress | None = None
) -> Vectors:
    """Embed ``captions`` in chunks (so ``progress`` moves), one unit row each."""
    chunk = max(batch_size, 256)
    out = []
    for start in range(0, len(captions), chunk):
        part = list(captions[start : start + chunk])
        out.append(encoder.encode_text(part, batch_size=batch_size))
        if progress:
            progress(len(part))
    return np.concatenate(out, axis=0).astype(np.float32, copy=False)


def evaluate_model(
    pairs: PairSet,
    encoder: Any,
    *,
    ks: Sequence[int] = (1, 5, 10),
    batch_size: int = 32,
    options: MediaOptions | None = None,
    progress: Progress | None = None,
    use_match_keys: bool = True,
) -> EvalResult:
    """Embed the media and captions of ``pairs`` with ``encoder`` and score retrieval both ways.

    ``encoder`` is an image–text :class:`~mmsearch.encoders.base.Encoder` for
    image and video sets (or a ``VideoTextEncoder`` for video), an
    ``AudioTextEncoder`` for audio sets. ``progress`` is called with counts of
    finished media items and captions (``n_media + n_captions`` in all).
    With ``use_match_keys`` (default) media sharing a ``match_key`` in the
    file count as positives for each other's captions; without it, only a
    caption's own media item is correct.
    """
    t0 = time.perf_counter()
    ok, media_vecs, dropped = embed_media(
        pairs, encoder, batch_size=batch_size, options=options, progress=progress
    )
    t1 = time.perf_counter()
    if dropped:
        pairs = pairs.select_media(ok)
    text_vecs = embed_captions(pairs.captions, encoder, batch_size=batch_size, progress=progress)
    t2 = time.perf_counter()
    keys = pairs.media_keys if use_match_keys else None
    rankings = pair_rankings(text_vecs, media_vecs, pairs.caption_media, media_keys=keys)
    metrics: dict[str, float] = {}
    for direction, ranking in rankings.items():
        metrics.update(
            {f"{direction}_{k}": v for k, v in metrics_from_ranking(ranking, ks).items()}
        )
    t3 = time.perf_counter()
    return EvalResult(
        model=_model_spec(encoder),
        dataset=pairs.name,
        modality=pairs.modality,
        n_media=pairs.n_media,
        n_captions=pairs.n_captions,
        metrics=metrics,
        seconds=t3 - t0,
        ks=tuple(int(k) for k in ks),
        timings={"media_s": t1 - t0, "text_s": t2 - t1, "metrics_s": t3 - t2},
        dropped=dropped,
        rankings=rankings,
        positives="match_key" if keys is not None else "own media",
    )
