"""What a training run hands back: ``TrainResult``, and the per-epoch callback's type.

Shared by ``trainer`` (the entry point, ``train(config)``) and ``loop`` (the run that
builds the result), so that neither imports the other's module for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EpochCallback = Callable[[dict[str, Any]], None]
"""Called on every process after each epoch's checkpoint with that epoch's record."""


@dataclass
class TrainResult:
    """What a run produced: the model folder, its card, the best validation metrics.

    On the non-main processes of a multi-process run ``card`` is empty.
    """

    out: Path
    card: dict[str, Any]
    metrics: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs: int = 0
    steps: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
