"""Settings of a contrastive training run (data, base model, method, loss, schedule) as data.

``TrainConfig`` is what ``mmsearch train`` and ``python -m mmsearch.train.trainer``
build from their arguments and what the model card records. ``TrainingError`` is
the typed error of this package (bad settings, a method a model cannot take).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mmsearch.errors import MMSearchError

Method = Literal["full", "lit", "proj", "adapter", "lora"]
Loss = Literal["clip", "siglip"]

METHODS: dict[str, str] = {
    "full": "every weight of both towers and the temperature",
    "lit": "text tower, projections and temperature; the image tower is locked (LiT)",
    "proj": "the towers' output projections and the temperature only",
    "adapter": "small residual adapters on both towers' outputs (folded into the "
    "projections on export) and the temperature",
    "lora": "low-rank adapters (peft LoRA) on the towers' linear layers, merged on export",
}
"""Training method -> what it trains (help text and model card)."""

LOSSES: dict[str, str] = {
    "clip": "symmetric InfoNCE with a learnable temperature (CLIP)",
    "siglip": "pairwise sigmoid with a learnable temperature and bias (SigLIP)",
}

SCRATCH_PREFIX = "scratch:"


class TrainingError(MMSearchError):
    """A training run cannot start or go on: bad settings, a method the model cannot take."""


def default_lr(method: str, scratch: bool) -> float:
    """A learning rate that suits the method: large from scratch, small for full fine-tuning."""
    if scratch:
        return 2e-3
    return {"full": 1e-5, "lit": 1e-5}.get(method, 1e-4)


@dataclass
class TrainConfig:
    """Everything a training run needs; defaults are what ``mmsearch train`` uses."""

    data: str
    """Pairs file (JSONL/CSV/Karpathy/COCO ...), or WebDataset ``.tar`` shards (a file,
    a folder of them, a glob or a brace pattern ``shard-{000..009}.tar``)."""
    base: str
    """Model spec to start from (``hf:...``, ``openclip:...``, a folder, ``builtin:demo``) or
    ``scratch:tiny`` / ``scratch:small``."""
    out: str
    method: Method = "full"
    loss: Loss = "clip"
    epochs: int = 5
    batch_size: int = 64
    """Pairs per optimizer step on each process, before accumulation."""
    accum: int = 1
    """Micro-batches per step; the contrastive batch is ``batch_size * accum`` (features are
    cached, so this is the same loss as one big batch; see ``trainer``)."""
    lr: float | None = None
    """None: ``default_lr(method, scratch)``."""
    weight_decay: float = 0.05
    warmup_steps: int | None = None
    """None: 5% of the steps (at least 1)."""
    min_lr_ratio: float = 0.0
    val_split: float = 0.1
    """Share of media items held out for validation when ``val_data`` is not given."""
    val_data: str | None = None
    data_split: str | None = None
    """Split name to read from files that hold several (Karpathy JSON, MSR-VTT)."""
    data_root: str | None = None
    """Folder media paths are relative to (default: the pairs file's folder)."""
    patience: int | None = None
    """Stop after this many epochs without a better validation score (None: never)."""
    resume: bool = False
    device: str | None = None
    """``cpu``, ``cuda``, ``cuda:N``; None: CUDA when present."""
    workers: int = 2
    """DataLoader worker processes that decode and preprocess images (0: in-process)."""
    seed: int = 0
    lora_rank: int = 8
    lora_alpha: int = 16
    adapter_rank: int = 16
    threads: int | None = None
    """CPU threads for torch during the run (None: leave torch's setting). On cores that
    other jobs keep busy, 1 can be many times faster than more (threads wait on each other)."""
    amp: bool = True
    """Mixed precision on CUDA (bf16 when the GPU has it, else fp16 with loss scaling)."""
    augment: bool | None = None
    """Random shift/brightness of training images; None: on for ``scratch:``, off otherwise."""
    log_every: int = 20
    ks: tuple[int, ...] = (1, 5, 10)
    max_steps: int | None = None
    """Stop after this many optimizer steps in all (tests, quick runs)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scratch(self) -> bool:
        return self.base.startswith(SCRATCH_PREFIX)

    @property
    def effective_lr(self) -> float:
        return self.lr if self.lr is not None else default_lr(self.method, self.scratch)

    def validate(self) -> None:
        """Raise :class:`TrainingError` for settings that cannot run."""
        if self.method not in METHODS:
            raise TrainingError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.loss not in LOSSES:
            raise TrainingError(f"unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")
        if self.scratch and self.method != "full":
            raise TrainingError("a model trained from scratch can only use --method full")
        for name in ("epochs", "batch_size", "accum"):
            if int(getattr(self, name)) < 1:
                raise TrainingError(f"{name} must be at least 1")
        if self.batch_size * self.accum < 2:
            raise TrainingError("a contrastive batch needs at least 2 pairs")
        if not 0.0 <= self.val_split < 1.0:
            raise TrainingError("val_split must be in [0, 1)")
        if self.patience is not None and self.patience < 1:
            raise TrainingError("patience must be at least 1 epoch")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ks"] = list(self.ks)
        d["lr"] = self.effective_lr
        return d
