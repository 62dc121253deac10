"""Contrastive training of an image–text model on caption pairs: the loop.

``train(config)`` reads the pairs, loads the base model (or builds one from scratch),
applies the method (``methods``), and runs epochs of AdamW steps with a warm-up and
cosine learning-rate schedule. After each epoch it scores retrieval on the validation
pairs, keeps the best weights, stops early after ``patience`` epochs without
improvement, and writes a checkpoint that ``resume=True`` continues from. At the end
the best weights are exported as a model folder with a card (``export``).

Details that matter:

* **Gradient accumulation** (``accum > 1``) caches features instead of summing
  per-micro-batch losses, which for a contrastive loss would shrink the pool of
  negatives to one micro-batch. Each step: (1) embed every micro-batch without
  gradients, (2) compute the loss over all of them and its gradient with respect to
  the features, (3) embed each micro-batch again with gradients (same random state)
  and back-propagate those feature gradients. The gradient is then that of one batch
  of ``batch_size * accum`` pairs (up to batch-norm statistics, which stay per
  micro-batch), for the memory of one micro-batch and one extra forward pass.
* **Several processes** (``torchrun``): DistributedDataParallel over the trained
  module; features are gathered with gradients from every process
  (``distributed.gather_with_grad``), so the loss is over the global batch.
* **Mixed precision** on CUDA: bf16 autocast when the GPU has it, else fp16 with a
  gradient scaler; the loss itself is computed in float32.

Run it under torchrun as ``torchrun --nproc_per_node=N -m mmsearch.train.trainer
--data ... --base ... --out ...`` (the arguments of ``mmsearch train``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmsearch.train.config import TrainConfig, TrainingError

log = logging.getLogger(__name__)

EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """What a run produced: the model folder, its card, the best validation metrics."""

    out: Path
    card: dict[str, Any]
    metrics: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs: int = 0
    steps: int = 0
    stopped_early: bool = False
    seconds: float = 0.0


def train(config: TrainConfig, *, on_epoch_end: EpochCallback | None = None) -> TrainResult:
    """Train as ``config`` says; return the result (on every process of a multi-process run).

    ``on_epoch_end`` is called on every process after each epoch's checkpoint with that
    epoch's record (loss, validation metrics, score).
    """
    config.validate()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from mmsearch.train import distributed

    threads = torch.get_num_threads()
    env = distributed.setup(config.device)
    try:
        from mmsearch.train.loop import Run

        return Run(config, env, on_epoch_end).fit()
    finally:
        distributed.teardown(env)
        torch.set_num_threads(threads)


def lr_at(step: int, total: int, base_lr: float, warmup: int, min_ratio: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``base_lr * min_ratio``."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    floor = base_lr * min_ratio
    return floor + (base_lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def micro_batches(make_iter: Callable[[int], Iterator[Any]], count: int) -> Iterator[Any]:
    """Exactly ``count`` items: an iterable source restarted (pass 1, 2, ...) if it runs dry."""
    produced, attempt = 0, 0
    while produced < count:
        empty = True
        for item in make_iter(attempt):
            empty = False
            yield item
            produced += 1
            if produced >= count:
                return
        if empty:
            raise TrainingError("the training data produced no batch")
        attempt += 1


def main(argv: list[str] | None = None) -> int:
    """``python -m mmsearch.train.trainer`` (e.g. under torchrun): ``mmsearch train``'s arguments."""
    from mmsearch.cli.cmd_train import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
