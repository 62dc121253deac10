"""Training methods: which weights of a model are trained, and the modules they add.

=========  ==========================================================================
method     trains
=========  ==========================================================================
full       every weight (towers, projections)
lit        the text tower and its projection; the image tower and its projection are
           locked (LiT, Zhai et al. 2022): image vectors stay those of the base model
proj       the two output projections only
adapter    a residual low-rank adapter on each tower's output (see ``adapters``)
lora       LoRA (peft) on the towers' linear layers; the base weights stay frozen
=========  ==========================================================================

Every method also trains the temperature, and the SigLIP bias with the SigLIP loss
(a model's own bias is frozen under the CLIP loss, which does not use it). Towers whose
weights are all frozen are kept in eval mode, so dropout and batch-norm statistics
of a locked tower do not change either. ``finalize`` turns the trained module back
into a plain model of the base's format: LoRA merged, adapters folded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from mmsearch.train.adapters import ResidualAdapter, fold, projection_dim
from mmsearch.train.config import TrainingError
from mmsearch.train.model import ContrastiveModel
from mmsearch.train.towers_base import Towers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MethodOptions:
    lora_rank: int = 8
    lora_alpha: int = 16
    adapter_rank: int = 16


def build(towers: Towers, method: str, loss: str, options: MethodOptions) -> ContrastiveModel:
    """A :class:`ContrastiveModel` of ``towers`` with exactly the ``method``'s weights trainable."""
    parts = towers.parts
    locked: tuple[str, ...] = ()
    if method == "lit":
        locked = parts.image
    elif method in ("proj", "adapter"):
        locked = parts.image + parts.text
    model = ContrastiveModel(towers, loss=loss, locked=locked)
    model.net.requires_grad_(False)
    if method == "full":
        model.net.requires_grad_(True)
    elif method == "lit":
        for name, p in model.net.named_parameters():
            p.requires_grad_(parts.owner(name) != "image")
    elif method == "proj":
        _train_projections(model)
    elif method == "adapter":
        _add_adapters(model, options.adapter_rank)
    elif method == "lora":
        _add_lora(model, options)
    else:
        raise TrainingError(f"unknown method {method!r}")
    model.scale_param().requires_grad_(True)
    if parts.bias is not None:
        bias = model.net.get_parameter(parts.bias)
        bias.requires_grad_(loss == "siglip")
    return model


def _train_projections(model: ContrastiveModel) -> None:
    parts = model.parts
    if parts.image_proj is None or parts.text_proj is None:
        raise TrainingError(
            "this model has no output projection on both towers; use --method lit, lora or full"
        )
    for name, p in model.net.named_parameters():
        if parts.is_projection(name):
            p.requires_grad_(True)


def _add_adapters(model: ContrastiveModel, rank: int) -> None:
    parts = model.parts
    if parts.image_proj is None or parts.text_proj is None:
        raise TrainingError(
            "adapters are folded into the towers' output projections on export, and this "
            "model lacks one; use --method lora or lit"
        )
    image_dim = projection_dim(model.net, parts.image_proj)
    text_dim = projection_dim(model.net, parts.text_proj)
    model.image_adapter = ResidualAdapter(image_dim, min(rank, image_dim))
    model.text_adapter = ResidualAdapter(text_dim, min(rank, text_dim))


def _add_lora(model: ContrastiveModel, options: MethodOptions) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    targets = model.towers.lora_targets()
    if not targets:
        raise TrainingError("this model has no linear layers LoRA can adapt")
    config = LoraConfig(
        r=options.lora_rank,
        lora_alpha=options.lora_alpha,
        lora_dropout=0.0,
        target_modules=targets,
    )
    inject_adapter_in_model(config, model.net)
    for name, p in model.net.named_parameters():
        p.requires_grad_("lora_" in name)
    log.info("LoRA (rank %d) on %d linear layers", options.lora_rank, len(targets))


@torch.no_grad()
def finalize(model: ContrastiveModel) -> None:
    """Merge LoRA weights and fold adapters into the base model, in place."""
    from peft.tuners.lora import LoraLayer

    net = model.net
    for name, module in list(net.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = net.get_submodule(parent_name) if parent_name else net
            setattr(parent, child, module.get_base_layer())
    parts = model.parts
    for adapter, path in (
        (model.image_adapter, parts.image_proj),
        (model.text_adapter, parts.text_proj),
    ):
        if adapter is not None and path is not None:
            fold(net, path, adapter)
    model.image_adapter = model.text_adapter = None


def trainable_summary(model: ContrastiveModel) -> dict[str, int]:
    """Trainable and total parameter counts (adapters and an own bias included)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": int(trainable), "total": int(total)}
