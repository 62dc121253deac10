"""What each optimizer step gets: its learning rate and exactly its number of micro-batches.

Pure functions (no torch), used by ``loop`` and tested on their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from mmsearch.train.config import TrainingError


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
