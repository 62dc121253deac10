"""What every backend's trainable view shares: the ``Towers`` protocol, ``Parts``, helpers.

Training needs more of a model than the :class:`~mmsearch.encoders.base.Encoder`
contract gives: unnormalised features with gradients, a picklable tokeniser for the
DataLoader workers, which parameters form the image tower, the text tower and the
output projections (so a method can lock or train them), the temperature, and a way
to write the result in the base model's own folder format. :class:`Towers` is that
view; one module per backend implements it (``towers_hf``, ``towers_openclip``,
``towers_tiny``) on top of this one, and ``towers.load_towers`` picks it by the
encoder's backend, as the encoder registry does.

Parts are named by parameter-name prefixes from tables keyed by model family
(data, not guesses from names); a projection is a ``torch.nn.Linear`` (``y = W x + b``)
or a matrix parameter (``y = x @ P``), told apart by type.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mmsearch._lazy import require
from mmsearch.encoders.base import EncoderInfo

MAX_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class Parts:
    """Parameter-name prefixes of a model's parts (``""`` never matches)."""

    image: tuple[str, ...]
    text: tuple[str, ...]
    image_proj: str | None
    """Module or parameter path of the image tower's output projection (None: there is none)."""
    text_proj: str | None
    scale: str = "logit_scale"
    """Parameter holding the temperature."""
    scale_kind: str = "log"
    """``log``: scale = exp(p) (CLIP); ``inverse``: scale = 1 / p (ALIGN's temperature)."""
    bias: str | None = None
    """Parameter holding the SigLIP logit bias, when the model has one."""

    def owner(self, name: str) -> str:
        """``image``, ``text``, ``scale``, ``bias`` or ``other`` for a parameter name."""
        if name == self.scale:
            return "scale"
        if self.bias is not None and name == self.bias:
            return "bias"
        if _under(name, self.image):
            return "image"
        if _under(name, self.text):
            return "text"
        return "other"

    def is_projection(self, name: str) -> bool:
        return any(p is not None and _under(name, (p,)) for p in (self.image_proj, self.text_proj))


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(p and (name == p or name.startswith(p + ".")) for p in prefixes)


class Towers(Protocol):
    """A model being trained, seen through its backend."""

    backend: str
    model: Any
    """The torch module holding every weight that is saved (towers, projections, temperature)."""
    parts: Parts
    base_info: EncoderInfo | None
    """The base model's encoder info (None when trained from scratch)."""

    def image_features(self, pixels: Any) -> Any:
        """(N, D) unnormalised image features, with gradients where parameters require them."""
        ...

    def text_features(self, text: dict[str, Any]) -> Any: ...

    def preprocessor(self) -> Callable[[Any], Any]:
        """Picklable: RGB PIL image -> (C, H, W) float32 array, the model's eval preprocessing."""
        ...

    def tokenizer(self) -> Callable[[list[str]], dict[str, Any]]:
        """Picklable: captions -> the text tower's input tensors."""
        ...

    def lora_targets(self) -> list[str]:
        """Names of the modules LoRA may wrap (linear layers the forward pass calls)."""
        ...

    def extend_vocabulary(self, captions: list[str]) -> int:
        """Make the tokenizer spell every word of ``captions``; return the tokens added."""
        ...

    def export(self, folder: Path, model_id: str) -> None:
        """Write the model in its backend's folder format (``load_encoder(folder)`` reads it)."""
        ...


class LoadedTowers:
    """What the towers of a loaded hf or open_clip encoder share: the encoder's own eval
    preprocessing and a subword tokenizer (which spells any caption), fixed at load, and
    LoRA on the linear layers of both towers. Subclasses set the attributes."""

    model: Any
    parts: Parts
    _pre: Callable[[Any], Any]
    _tok: Callable[[list[str]], dict[str, Any]]

    def preprocessor(self) -> Callable[[Any], Any]:
        return self._pre

    def tokenizer(self) -> Callable[[list[str]], dict[str, Any]]:
        return self._tok

    def lora_targets(self) -> list[str]:
        return linear_targets(self.model, self.parts.image + self.parts.text)

    def extend_vocabulary(self, captions: list[str]) -> int:
        """Subword tokenizers spell any caption: nothing to add."""
        return 0


def scale_value(parts: Parts, param: Any) -> Any:
    """The logit scale (multiplier) from the model's temperature parameter."""
    return param.exp() if parts.scale_kind == "log" else 1.0 / param


def clamp_scale(parts: Parts, param: Any) -> None:
    """Keep the logit scale at most 100, as CLIP does (in place, no grad)."""
    torch = require("torch")
    with torch.no_grad():
        if parts.scale_kind == "log":
            param.clamp_(max=math.log(MAX_LOGIT_SCALE))
        else:
            param.clamp_(min=1.0 / MAX_LOGIT_SCALE)


def get_path(model: Any, path: str) -> Any:
    """The submodule or parameter at dotted ``path``."""
    obj = model
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def linear_targets(model: Any, prefixes: tuple[str, ...]) -> list[str]:
    """Linear layers under ``prefixes``, except those inside ``nn.MultiheadAttention``.

    The attention module reads its projections' weights directly, so a LoRA wrapper on
    them would never run.
    """
    torch = require("torch")
    nn = torch.nn
    inside_mha = {
        f"{name}.{child}" if name else child
        for name, mod in model.named_modules()
        if isinstance(mod, nn.MultiheadAttention)
        for child, _ in mod.named_modules()
        if child
    }
    return [
        name
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Linear) and _under(name, prefixes) and name not in inside_mha
    ]
