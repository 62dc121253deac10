"""Train the cross-attention reranker (``mmsearch train --reranker``) on top of a dual encoder.

The reranker (:mod:`mmsearch.search.rerank.trained`) reads a caption and a picture
together, through the dual encoder's own towers (copied into it and kept frozen): the
text tower's token states and embedding, the image tower's patch grid and embedding.
Only the projections, the cross-attention layers and the matching head learn. As BLIP
starts its matching head from trained unimodal encoders, this one starts from what the
dual encoder already reads and learns what a cosine cannot: which colour is on which
shape, which shape is on the left. It learns image–text matching, a binary loss,
on pairs with hard negatives mined by the dual encoder
(:mod:`~mmsearch.train.reranker_data`): for each picture, its caption, the wrong
caption the dual encoder likes best for it, and the wrong picture the dual encoder
likes best for the caption — swapped relations and swapped colours among them.
AdamW with a short warm-up and cosine decay; a few minutes on two CPU cores.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch._lazy import require
from mmsearch.encoders.registry import load_encoder, split_spec
from mmsearch.encoders.tiny import TinyEncoder
from mmsearch.search.rerank.trained import RerankerConfig, build_reranker, save_reranker
from mmsearch.train.config import TrainingError
from mmsearch.train.reranker_data import MinedPool, draw_batch, make_pool, mine

log = logging.getLogger(__name__)


@dataclass
class RerankerTrainConfig:
    """Settings of a reranker training run."""

    out: str
    dual_encoder: str = "builtin:demo"
    steps: int = 600
    batch_size: int = 32
    """Pictures per step; each brings 3 pairs (its caption, a hard caption, a hard picture)."""
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    scenes: int = 1000
    """Generated scene groups (a scene and its confusers) in the training pool."""
    layout: str = "mixed"
    single_share: float = 0.15
    hard_negatives: int = 8
    langs: tuple[str, ...] = ("en", "zh")
    partial_prob: float = 0.2
    seed: int = 0
    threads: int | None = None
    """Torch CPU threads during the run (None: as they are)."""
    log_every: int = 50
    architecture: dict[str, Any] = field(default_factory=dict)
    """Overrides of :class:`RerankerConfig` fields (``width``, ``layers``, ``heads``, ...)."""

    def validate(self) -> None:
        for name in ("steps", "batch_size", "scenes", "hard_negatives", "log_every"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1")
        if not self.lr > 0:
            raise TrainingError("lr must be positive")
        if self.layout not in ("standard", "free", "mixed"):
            raise TrainingError(f"unknown layout {self.layout!r}; choose standard, free or mixed")


@dataclass
class RerankerTrainResult:
    """The trained module (eval mode), where it was saved, and the loss history."""

    model: Any
    out: Path
    history: list[dict[str, float]]
    seconds: float
    card: dict[str, Any]


def _dual_encoder(spec: str) -> TinyEncoder:
    """The tiny dual encoder ``spec`` names (checked before anything is loaded)."""
    backend, _ = split_spec(spec)
    encoder = load_encoder(spec) if backend in ("tiny", "builtin") else None
    if not isinstance(encoder, TinyEncoder):
        raise TrainingError(
            f"the trained reranker is built on tiny models (builtin:demo or a folder trained by "
            f"mmsearch); {spec!r} is a {backend} model"
        )
    return encoder


def _build(cfg: RerankerTrainConfig, encoder: TinyEncoder) -> Any:
    """A fresh reranker holding a frozen copy of the dual encoder."""
    torch = require("torch")
    arch = RerankerConfig(dual=encoder.config, dual_encoder=cfg.dual_encoder)
    try:
        arch = dataclasses.replace(arch, **cfg.architecture)
    except TypeError as exc:
        raise TrainingError(f"unknown reranker setting: {exc}") from exc
    model = build_reranker(arch)
    weights = {k: torch.from_numpy(v) for k, v in encoder.weights.items()}
    model.dual.clip.load_state_dict(weights, strict=True)
    model.dual.requires_grad_(False)
    return model


def lr_at(step: int, cfg: RerankerTrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5% of ``lr`` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _optimizer(model: Any, cfg: RerankerTrainConfig) -> Any:
    torch = require("torch")
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    small = {n for n, p in trained if p.ndim < 2 or n.endswith("pos")}
    groups = [
        {"params": [p for n, p in trained if n not in small], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in trained if n in small], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))


def _image_features(model: Any, pool: MinedPool, encoder: TinyEncoder) -> tuple[Any, Any]:
    """The frozen dual encoder's patch grid and embedding of every picture in the pool."""
    torch = require("torch")
    pre = encoder.image_preprocessor()
    grids, embs = [], []
    with torch.inference_mode():
        for start in range(0, len(pool.samples), 256):
            chunk = pool.samples[start : start + 256]
            grid, emb = model.dual.image(torch.from_numpy(np.stack([pre(s.image) for s in chunk])))
            grids.append(grid)
            embs.append(emb)
    return torch.cat(grids), torch.cat(embs)


def train_reranker(
    cfg: RerankerTrainConfig, *, on_log: Callable[[dict[str, float]], None] | None = None
) -> RerankerTrainResult:
    """Mine, train, save; return the trained module and its loss history."""
    cfg.validate()
    torch = require("torch")
    start = time.perf_counter()
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        torch.manual_seed(cfg.seed)
        encoder = _dual_encoder(cfg.dual_encoder)
        samples = make_pool(cfg.scenes, cfg.seed, layout=cfg.layout, single_share=cfg.single_share)  # type: ignore[arg-type]
        pool = mine(encoder, samples, cfg.hard_negatives)
        log.info("mined %d hard negatives for %d pictures in %.0fs", cfg.hard_negatives,
                 len(samples), time.perf_counter() - start)  # fmt: skip
        model = _build(cfg, encoder)
        model.eval()  # the dual encoder's batch-norm statistics stay its own; no dropout here
        history = _fit(model, pool, _image_features(model, pool, encoder), encoder, cfg, on_log)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    seconds = time.perf_counter() - start
    card = {"dual_encoder": cfg.dual_encoder, "steps": cfg.steps, "batch_size": cfg.batch_size,
            "pictures": len(samples), "layout": cfg.layout, "seed": cfg.seed,
            "seconds": round(seconds, 1), "final_loss": round(history[-1]["loss"], 4)}  # fmt: skip
    out = save_reranker(model, encoder.tokenizer, cfg.out, metadata=card)
    return RerankerTrainResult(model, out, history, seconds, card)


def _fit(
    model: Any,
    pool: MinedPool,
    features: tuple[Any, Any],
    encoder: TinyEncoder,
    cfg: RerankerTrainConfig,
    on_log: Callable[[dict[str, float]], None] | None,
) -> list[dict[str, float]]:
    torch = require("torch")
    F = torch.nn.functional
    grids, embs = features
    rng = np.random.default_rng(cfg.seed)
    opt = _optimizer(model, cfg)
    history: list[dict[str, float]] = []
    running, t0 = 0.0, time.perf_counter()
    size = min(cfg.batch_size, len(pool.samples))
    order, cursor = rng.permutation(len(pool.samples)), 0
    for step in range(cfg.steps):
        if cursor + size > len(order):
            order, cursor = rng.permutation(len(pool.samples)), 0
        idx = order[cursor : cursor + size]
        cursor += size
        batch = draw_batch(pool, idx, rng, langs=cfg.langs, partial_prob=cfg.partial_prob)
        unique, where = np.unique(batch.images, return_inverse=True)
        pick = torch.from_numpy(unique)
        patches = model.image_tokens(grids[pick], embs[pick])[torch.from_numpy(where)]
        ids = torch.from_numpy(encoder.tokenizer.encode(batch.texts))
        ids = ids[:, : int((ids != 0).sum(1).max())]
        with torch.no_grad():
            states, emb = model.dual.text(ids)
        logits = model.match_logits(model.text_tokens(ids, states, emb), patches)
        loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(batch.labels))
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running += float(loss.item())
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            n = step % cfg.log_every + 1
            entry = {"step": step + 1, "loss": running / n, "lr": lr_at(step, cfg),
                     "seconds": time.perf_counter() - t0}  # fmt: skip
            history.append(entry)
            running = 0.0
            log.info("step %(step)d loss %(loss).4f lr %(lr).2e", entry)
            if on_log:
                on_log(entry)
    return history
