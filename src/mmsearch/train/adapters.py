"""Residual adapters on a tower's output, and folding them into its output projection.

An adapter maps a feature ``f`` to ``f + U (D f)`` with a low-rank bottleneck ``D``
(``rank`` × ``dim``) and an up-projection ``U`` that starts at zero, so training starts
from the base model exactly. It is linear on purpose: then it equals the matrix
``M = I + U D`` and folds exactly into the projection that produced ``f`` (``W' = M W``,
``b' = M b`` for a linear layer; ``P' = P Mᵀ`` for a matrix parameter used as ``x @ P``).
The exported model is a plain model of the base's own format that every backend loads;
a non-linear adapter would need adapter code in each backend's loader.

This module needs torch; it is imported only by training code.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mmsearch.train.config import TrainingError
from mmsearch.train.towers_base import get_path


class ResidualAdapter(nn.Module):
    """``f + U (D f)``; ``U`` starts at zero."""

    def __init__(self, dim: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, rank, bias=False)
        self.up = nn.Linear(rank, dim, bias=False)
        nn.init.normal_(self.down.weight, std=dim**-0.5)
        nn.init.zeros_(self.up.weight)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return feats + self.up(self.down(feats))

    def matrix(self) -> torch.Tensor:
        """The adapter as one (dim, dim) matrix ``I + U D``."""
        w = self.up.weight @ self.down.weight
        return torch.eye(w.shape[0], dtype=w.dtype, device=w.device) + w


def projection_dim(model: Any, path: str) -> int:
    """Output size of the projection at ``path`` (a Linear or an ``x @ P`` matrix)."""
    proj = get_path(model, path)
    if isinstance(proj, nn.Linear):
        return int(proj.out_features)
    if isinstance(proj, nn.Parameter) and proj.ndim == 2:
        return int(proj.shape[1])
    raise TrainingError(
        f"{path} is a {type(proj).__name__}, not a linear projection: an adapter cannot be "
        "folded into it on export (use --method lora or lit)"
    )


@torch.no_grad()
def fold(model: Any, path: str, adapter: ResidualAdapter) -> None:
    """Multiply the adapter into the projection at ``path`` (in place)."""
    proj = get_path(model, path)
    m = adapter.matrix().to(torch.float64)
    if isinstance(proj, nn.Linear):
        proj.weight.copy_((m @ proj.weight.to(torch.float64)).to(proj.weight.dtype))
        if proj.bias is not None:
            proj.bias.copy_((m @ proj.bias.to(torch.float64)).to(proj.bias.dtype))
    else:
        proj.copy_((proj.to(torch.float64) @ m.t()).to(proj.dtype))
