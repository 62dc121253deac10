"""Train a tiny CLIP-style model (backend "tiny") on generated captioned images.

``train_tiny`` runs AdamW with a warm-up + cosine schedule on batches of
images whose captions are redrawn every time they are used: English or
Chinese, from several templates, sometimes leaving out size or position.
Because every caption knows which attributes it mentions, the loss counts
every image in the batch that a caption describes as a positive
(``clip_loss(..., positives=...)``), not just its own image. Samples that
share ``extra["group"]`` (an image and its hard-negative counterpart, see
``synthetic.counterparts``) are kept in the same batch.

``evaluate`` reports text→image and image→text Recall@1/5/10 per language on
a gallery; ``recall_at_k`` is the metric helper.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mmsearch._lazy import require
from mmsearch.datasets.synthetic import (
    FIELD_VALUES,
    FIELDS,
    SyntheticSample,
    codes,
    describe,
    mention_codes,
    mention_matches,
    vocabulary_texts,
)
from mmsearch.encoders.tiny import TinyConfig, TinyTokenizer, build_model, save_model
from mmsearch.train.losses import clip_loss

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters of a tiny-model training run."""

    model: TinyConfig = field(default_factory=TinyConfig)
    seed: int = 0
    steps: int = 800
    batch_size: int = 256
    lr: float = 2e-3
    min_lr_ratio: float = 0.02
    warmup_steps: int = 50
    weight_decay: float = 0.05
    langs: tuple[str, ...] = ("en", "zh")
    partial_prob: float = 0.3
    """Chance that a training caption leaves out each optional attribute (size, position)."""
    generic_prob: float = 0.1
    """Chance that a one-shape training caption names only its colour or only its shape."""
    max_shift: int = 3
    """Augmentation: random translation of each image by up to this many pixels."""
    brightness: float = 0.08
    threads: int = 2
    log_every: int = 50
    attribute_weight: float = 1.0
    """Weight of the auxiliary loss that reads the attributes back from both embeddings."""
    save_dtype: str = "float16"
    """Weights are rounded to this dtype at the end, so the returned model is what gets saved."""


@dataclass
class TrainResult:
    """A trained model (fp32, eval mode), its tokenizer, gallery metrics and loss history."""

    model: Any
    tokenizer: TinyTokenizer
    metrics: dict[str, float]
    history: list[dict[str, float]]
    seconds: float


# ---------------------------------------------------------------------------
# metrics


def recall_at_k(
    sim: NDArray[np.floating[Any]],
    positives: NDArray[np.bool_] | Sequence[Sequence[int]],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[int, float]:
    """Fraction of queries (rows of ``sim``) with a positive among their top-``k`` columns.

    ``positives`` is a bool matrix shaped like ``sim`` or, per query, the
    column indices that count as correct.
    """
    sim = np.asarray(sim)
    n_q, n_g = sim.shape
    if isinstance(positives, np.ndarray):
        pos = positives.astype(bool)
    else:
        pos = np.zeros((n_q, n_g), dtype=bool)
        for q, cols in enumerate(positives):
            pos[q, list(cols)] = True
    if pos.shape != sim.shape:
        raise ValueError(f"positives shape {pos.shape} does not match sim shape {sim.shape}")
    top = min(max(ks), n_g)
    # stable sort on the negated scores: ties keep gallery order, the same on every run
    order = np.argsort(-sim, axis=1, kind="stable")[:, :top]
    hits = np.take_along_axis(pos, order, axis=1)
    first = np.where(hits.any(1), hits.argmax(1), n_g)
    return {int(k): float(np.mean(first < k)) for k in ks}


def _caption_positives(samples: Sequence[SyntheticSample]) -> NDArray[np.bool_]:
    """(n_texts, n_images): does the full caption of sample ``t`` describe image ``i``?"""
    if all(s.attrs for s in samples):
        image_codes = np.stack([codes(s.attrs) for s in samples])
        return mention_matches(np.stack([mention_codes(s.attrs) for s in samples]), image_codes)
    return np.eye(len(samples), dtype=bool)


def evaluate(
    model: Any,
    tokenizer: TinyTokenizer,
    samples: Sequence[SyntheticSample],
    langs: Sequence[str] = ("en", "zh"),
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """t2i and i2t Recall@k on ``samples`` as a gallery, queried with each sample's caption.

    A retrieved item counts as correct when its attributes fit the query's (two
    generated images may have the same description).
    """
    torch = require("torch")
    model.eval()
    pixels = _to_float(_to_uint8(samples, model.config.image_size), model.config)
    positives = _caption_positives(samples)
    out: dict[str, float] = {}
    with torch.inference_mode():
        img = torch.cat([model.encode_image(c) for c in pixels.split(256)]).numpy()
        for lang in langs:
            texts = [s.caption_en if lang == "en" else s.caption_zh for s in samples]
            ids = torch.from_numpy(tokenizer.encode(texts))
            txt = torch.cat([model.encode_text(c) for c in ids.split(512)]).numpy()
            sim = txt @ img.T
            for k, v in recall_at_k(sim, positives, ks).items():
                out[f"{lang}/t2i_R@{k}"] = v
            for k, v in recall_at_k(sim.T, positives.T, ks).items():
                out[f"{lang}/i2t_R@{k}"] = v
    return out


def counterpart_accuracy(
    model: Any, tokenizer: TinyTokenizer, samples: Sequence[SyntheticSample], lang: str = "en"
) -> float:
    """How often a caption scores its own image above its counterpart's (chance: 0.5).

    ``samples`` are pairs of consecutive samples sharing ``extra["group"]``, as
    ``generate(..., counterpart_prob=1.0, pair_prob=1.0)`` makes them.
    """
    torch = require("torch")
    pairs = [g for g in _groups(samples) if len(g) == 2]
    if not pairs:
        raise ValueError("no counterpart pairs among the samples")
    model.eval()
    idx = np.concatenate(pairs)
    chosen = [samples[i] for i in idx]
    pixels = _to_float(_to_uint8(chosen, model.config.image_size), model.config)
    texts = [s.caption_en if lang == "en" else s.caption_zh for s in chosen]
    with torch.inference_mode():
        img = model.encode_image(pixels).numpy().reshape(len(pairs), 2, -1)
        txt = model.encode_text(torch.from_numpy(tokenizer.encode(texts)))
        txt = txt.numpy().reshape(len(pairs), 2, -1)
    sim = np.einsum("pad,pbd->pab", txt, img)  # caption a of each pair vs image b
    return float(np.mean([sim[:, 0, 0] > sim[:, 0, 1], sim[:, 1, 1] > sim[:, 1, 0]]))


# ---------------------------------------------------------------------------
# data


def _to_uint8(samples: Sequence[SyntheticSample], size: int) -> Any:
    """(N, 3, size, size) uint8 tensor of the samples' images (bilinear resize if needed)."""
    torch = require("torch")
    from PIL import Image

    arr = np.empty((len(samples), size, size, 3), dtype=np.uint8)
    for i, s in enumerate(samples):
        img = s.image.convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR)
        arr[i] = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def _to_float(images: Any, config: TinyConfig) -> Any:
    """uint8 -> normalised float32, the same arithmetic as ``TinyPreprocessor``."""
    torch = require("torch")
    mean = torch.tensor(config.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(config.std, dtype=torch.float32).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def _augment(images: Any, cfg: TrainConfig, gen: Any) -> Any:
    """Random small translation (edge padding) and brightness jitter of a uint8 batch."""
    torch = require("torch")
    F = torch.nn.functional
    x = images.float() / 255.0
    if cfg.max_shift > 0:
        s = cfg.max_shift
        padded = F.pad(x, (s, s, s, s), mode="replicate")
        offs = torch.randint(0, 2 * s + 1, (x.shape[0], 2), generator=gen).tolist()
        h, w = x.shape[-2:]
        x = torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offs)])
    if cfg.brightness > 0:
        scale = 1 + (torch.rand(x.shape[0], 1, 1, 1, generator=gen) * 2 - 1) * cfg.brightness
        x = (x * scale).clamp(0, 1)
    mean = torch.tensor(cfg.model.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(cfg.model.std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


@dataclass
class _Batch:
    texts: list[str]
    positives: NDArray[np.bool_]
    """(n_images, n_texts): caption j describes image i."""
    image_codes: NDArray[np.int64] | None = None
    text_codes: NDArray[np.int64] | None = None


def _captions(
    batch: Sequence[SyntheticSample], cfg: TrainConfig, rng: np.random.Generator
) -> _Batch:
    """Fresh captions for a batch, the positives matrix and the attribute codes of both sides."""
    texts: list[str] = []
    mentions: list[NDArray[np.int64]] = []
    for s in batch:
        lang = cfg.langs[int(rng.integers(len(cfg.langs)))]
        if s.attrs:
            text, mention = describe(
                s.attrs, "zh" if lang == "zh" else "en", rng, cfg.partial_prob, cfg.generic_prob
            )
            mentions.append(mention_codes(mention))
        else:
            text = s.caption_zh if lang == "zh" and s.caption_zh else s.caption_en
        texts.append(text)
    if len(mentions) == len(batch):
        image_codes, text_codes = np.stack([codes(s.attrs) for s in batch]), np.stack(mentions)
        return _Batch(texts, mention_matches(text_codes, image_codes).T, image_codes, text_codes)
    # plain pairs: identical captions are positives of each other's images
    same = np.array([[a == b for b in texts] for a in texts], dtype=bool)
    return _Batch(texts, same | np.eye(len(batch), dtype=bool))


def _attribute_probe(embed_dim: int) -> Any:
    """One linear classifier per attribute field, shared by the image and the text side.

    Reading "colour of the first shape", "shape of the second", "relation" ...
    back from *both* embeddings with the same heads makes each tower bind
    colours to shapes and keep their order, instead of settling for a bag of
    attributes (which contrastive loss alone rarely escapes: a red circle left
    of a blue square and a blue square left of a red circle look alike to it).
    Used in training only; not part of the saved model.
    """
    torch = require("torch")
    return torch.nn.ModuleList(
        [torch.nn.Linear(embed_dim, len(FIELD_VALUES[name])) for name in FIELDS]
    )


def _attribute_loss(probe: Any, emb: Any, targets: NDArray[np.int64]) -> Any:
    """Mean cross-entropy over fields; absent or unmentioned fields (negative codes) are ignored."""
    torch = require("torch")
    F = torch.nn.functional
    tgt = torch.from_numpy(targets).clone()
    tgt[tgt < 0] = -100
    losses = [
        F.cross_entropy(head(emb), tgt[:, i], ignore_index=-100)
        for i, head in enumerate(probe)
        if bool((tgt[:, i] >= 0).any())
    ]
    return torch.stack(losses).mean()


# ---------------------------------------------------------------------------
# training


def _groups(samples: Sequence[SyntheticSample]) -> list[NDArray[np.int64]]:
    """Runs of consecutive samples with the same ``extra["group"]`` (a sample and its counterparts)."""
    out: list[list[int]] = []
    prev: Any = None
    for i, s in enumerate(samples):
        g = s.extra.get("group")
        if out and g is not None and g == prev:
            out[-1].append(i)
        else:
            out.append([i])
        prev = g
    return [np.asarray(g, dtype=np.int64) for g in out]


def _shuffled(groups: list[NDArray[np.int64]], rng: np.random.Generator) -> NDArray[np.int64]:
    """Sample indices in a random order that keeps each group together (hard negatives in one batch)."""
    return np.concatenate([groups[i] for i in rng.permutation(len(groups))])


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``lr * min_lr_ratio`` at ``cfg.steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def build_tokenizer(samples: Sequence[SyntheticSample], context_length: int) -> TinyTokenizer:
    """Vocabulary of the caption templates plus every given caption."""
    texts = [*vocabulary_texts()]
    for s in samples:
        texts += [s.caption_en, s.caption_zh]
    return TinyTokenizer.build(texts, context_length)


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, p in model.named_parameters():
        small = p.ndim < 2 or name.endswith(("pos", "logit_scale")) or "embed" in name
        (no_decay if small else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _round_weights(model: Any, dtype_name: str) -> None:
    torch = require("torch")
    dtype = {"float16": torch.float16, "float32": torch.float32}[dtype_name]
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.to(dtype).to(t.dtype))


def train_tiny(
    config: TrainConfig,
    samples: Sequence[SyntheticSample],
    *,
    eval_samples: Sequence[SyntheticSample] | None = None,
    out_dir: str | Path | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train a tiny model on ``samples``; evaluate on ``eval_samples``; save to ``out_dir``.

    Returns the trained model (fp32, eval mode, weights rounded to
    ``config.save_dtype``), its tokenizer, the gallery metrics and the loss history.
    """
    torch = require("torch")
    if not samples:
        raise ValueError("no training samples")
    start = time.perf_counter()
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        torch.manual_seed(config.seed)
        gen = torch.Generator().manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        tokenizer = build_tokenizer(samples, config.model.context_length)
        config = dataclasses.replace(
            config, model=dataclasses.replace(config.model, vocab_size=len(tokenizer))
        )
        model = build_model(config.model)
        images = _to_uint8(samples, config.model.image_size)
        history = _fit(model, tokenizer, samples, images, config, gen, rng, on_log)
        _round_weights(model, config.save_dtype)
        model.eval()
        metrics = evaluate(model, tokenizer, eval_samples, config.langs) if eval_samples else {}
    finally:
        torch.set_num_threads(prev_threads)
    seconds = time.perf_counter() - start
    if out_dir is not None:
        meta = {"steps": config.steps, "batch_size": config.batch_size, "seed": config.seed,
                "n_train": len(samples), "seconds": round(seconds, 1),
                "metrics": {k: round(v, 4) for k, v in metrics.items()}}  # fmt: skip
        save_model(model, tokenizer, out_dir, dtype=config.save_dtype, metadata=meta)
    return TrainResult(model, tokenizer, metrics, history, seconds)


def _fit(
    model: Any,
    tokenizer: TinyTokenizer,
    samples: Sequence[SyntheticSample],
    images: Any,
    cfg: TrainConfig,
    gen: Any,
    rng: np.random.Generator,
    on_log: Callable[[dict[str, float]], None] | None,
) -> list[dict[str, float]]:
    torch = require("torch")
    F = torch.nn.functional
    probe = _attribute_probe(cfg.model.embed_dim)
    params = _param_groups(model, cfg.weight_decay) + [{"params": list(probe.parameters())}]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.0)
    batch = min(cfg.batch_size, len(samples))
    groups = _groups(samples)
    order = _shuffled(groups, rng)
    cursor, history, running = 0, [], 0.0
    t0 = time.perf_counter()
    model.train()
    for step in range(cfg.steps):
        if cursor + batch > len(order):
            order, cursor = _shuffled(groups, rng), 0
        idx = order[cursor : cursor + batch]
        cursor += batch
        b = _captions([samples[i] for i in idx], cfg, rng)
        pixels = _augment(images[torch.from_numpy(idx)], cfg, gen)
        ids = torch.from_numpy(tokenizer.encode(b.texts))
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        img_feats, txt_feats, scale = model(pixels, ids)
        img, txt = F.normalize(img_feats, dim=-1), F.normalize(txt_feats, dim=-1)
        loss = clip_loss(img, txt, scale, positives=torch.from_numpy(b.positives))
        if cfg.attribute_weight > 0 and b.image_codes is not None and b.text_codes is not None:
            aux = _attribute_loss(probe, img_feats, b.image_codes) + _attribute_loss(
                probe, txt_feats, b.text_codes
            )
            loss = loss + cfg.attribute_weight * aux / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        running += loss.item()
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            n = (step % cfg.log_every) + 1
            entry = {"step": step + 1, "loss": running / n, "lr": lr_at(step, cfg),
                     "scale": scale.item(), "seconds": time.perf_counter() - t0}  # fmt: skip
            history.append(entry)
            running = 0.0
            log.info("step %(step)d loss %(loss).4f lr %(lr).2e scale %(scale).1f", entry)
            if on_log:
                on_log(entry)
    return history
