"""The module that is trained: a model's towers, optional adapters, temperature and bias.

``ContrastiveModel`` is what DistributedDataParallel wraps: one ``forward`` computes
both towers' normalised features and returns the logit scale (and SigLIP bias) with
them, so every trained parameter takes part in the wrapped forward pass. The base
model's own temperature is used; a SigLIP bias is the model's own when it has one,
otherwise a new parameter of this module (used in training only, not exported: it
shifts every score equally and does not change a ranking).

This module needs torch; it is imported only by training code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmsearch.train.adapters import ResidualAdapter
from mmsearch.train.towers_base import Parts, Towers, get_path, scale_value

SIGLIP_BIAS_INIT = -10.0


class ContrastiveModel(nn.Module):
    """Towers + adapters + temperature; ``forward(pixels, text)`` -> features, scale, bias."""

    def __init__(self, towers: Towers, *, loss: str, locked: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.net = towers.model
        self.towers = towers
        self.parts: Parts = towers.parts
        self.loss = loss
        self.locked = locked
        """Parameter prefixes of the base model whose modules stay in eval mode (frozen towers)."""
        self.image_adapter: ResidualAdapter | None = None
        self.text_adapter: ResidualAdapter | None = None
        self.own_bias: nn.Parameter | None = None
        if loss == "siglip" and self.parts.bias is None:
            self.own_bias = nn.Parameter(torch.tensor(SIGLIP_BIAS_INIT))

    # -- parameters -----------------------------------------------------------------------
    def scale_param(self) -> nn.Parameter:
        param: nn.Parameter = get_path(self.net, self.parts.scale)
        return param

    def bias_param(self) -> nn.Parameter | None:
        if self.loss != "siglip":
            return None
        if self.own_bias is not None:
            return self.own_bias
        assert self.parts.bias is not None
        param: nn.Parameter = get_path(self.net, self.parts.bias)
        return param

    def train(self, mode: bool = True) -> ContrastiveModel:
        super().train(mode)
        if mode:
            for name, module in self.net.named_modules():
                if name in self.locked:
                    module.eval()
        return self

    # -- forward ----------------------------------------------------------------------------
    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        feats = self.towers.image_features(pixels)
        if self.image_adapter is not None:
            feats = self.image_adapter(feats)
        return F.normalize(feats.float(), dim=-1)

    def encode_text(self, text: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = self.towers.text_features(text)
        if self.text_adapter is not None:
            feats = self.text_adapter(feats)
        return F.normalize(feats.float(), dim=-1)

    def forward(
        self, pixels: torch.Tensor, text: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Normalised image and text features (float32), logit scale, bias (SigLIP only)."""
        img = self.encode_image(pixels)
        txt = self.encode_text(text)
        scale = scale_value(self.parts, self.scale_param().float())
        bias = self.bias_param()
        return img, txt, scale, (bias.float() if bias is not None else None)

    def logit_terms(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The scale and bias alone (for the feature-cache backward pass)."""
        scale = scale_value(self.parts, self.scale_param().float())
        bias = self.bias_param()
        return scale, (bias.float() if bias is not None else None)
