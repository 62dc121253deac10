"""Training checkpoints: everything a run needs to continue exactly where it stopped.

``OUT/checkpoints/last.pt`` is written after every epoch (atomically: a temporary file,
fsync, rename): model and optimizer state, the loss scaler, the step and epoch, the
early-stopping state, the history and every random generator's state, so a resumed run
continues with the same numbers an uninterrupted one would have produced.
``best.pt`` holds the weights of the best validation epoch.

This module needs torch; it is imported only by training code.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"


def folder(out: Path) -> Path:
    return out / CHECKPOINT_DIR


def save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def rng_state(device: str) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: str) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if device.startswith("cuda") and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def load(path: Path) -> dict[str, Any]:
    # our own file, holding numpy/python RNG states besides tensors
    data: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return data
