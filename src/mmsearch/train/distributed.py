"""Multi-process training: set-up under ``torchrun``, and the gather the contrastive loss needs.

Under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` in the environment) each
process joins the default process group (NCCL on CUDA, gloo on the CPU) and drives one
device. The contrastive loss compares every image with every caption of the *global*
batch, so features are gathered from all processes with :func:`gather_with_grad`:
its backward pass sums the incoming gradients over processes (all-reduce) and keeps
this process's slice. Every process computes the same global loss; with DDP averaging
parameter gradients over ``world`` processes, the result is exactly the gradient of
the global loss (the all-reduce contributes the factor ``world`` that the average
takes away). gloo and NCCL both have all-gather and all-reduce.

This module needs torch; it is imported only by training code.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from mmsearch.train.config import TrainingError


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a (possibly one-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"
    owns_group: bool = False
    """True when :func:`setup` created the process group (and :func:`teardown` ends it)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def _pick_device(device: str | None, local_rank: int) -> str:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrainingError("--device cuda was asked for, but no CUDA device is available")
        if device == "cuda":
            device = f"cuda:{local_rank % torch.cuda.device_count()}"
        torch.cuda.set_device(device)
    return device


def setup(device: str | None = None) -> DistEnv:
    """Join the process group when started by torchrun (or already in one); else one process."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return DistEnv(rank, world, local, _pick_device(device, local), owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv(device=_pick_device(device, 0))
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick_device(device, local)
    backend = "nccl" if dev.startswith("cuda") else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return DistEnv(rank, world, local, dev, owns_group=True)


def teardown(env: DistEnv) -> None:
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0; backward: all-reduce the gradient, keep this rank's slice."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        world, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(parts, tensor.contiguous())
        ctx.rank, ctx.n = rank, tensor.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> torch.Tensor:
        grad = grads[0].contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather_with_grad(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """This tensor from every process, concatenated in rank order; gradients flow back."""
    if not env.distributed:
        return tensor
    out: torch.Tensor = _GatherWithGrad.apply(tensor)
    return out


def gather(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """All-gather without gradients (ids, metrics)."""
    if not env.distributed:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(env.world)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def broadcast_object(obj: Any, env: DistEnv) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not env.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()
