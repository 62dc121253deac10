"""Backend "builtin": models shipped inside the mmsearch package (no download needed).

``builtin:demo`` is a tiny CLIP-style model trained by ``scripts/train_demo_model.py``
on generated images of coloured shapes with English and Chinese captions. It
knows only that world, but it shows real cross-modal search on a fresh machine.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from mmsearch.encoders.base import Encoder
from mmsearch.errors import ModelNotFoundError

BUILTIN_MODELS: dict[str, str] = {"demo": "demo-model"}
"""Builtin name -> folder under ``mmsearch/assets``."""


def available() -> list[str]:
    return sorted(BUILTIN_MODELS)


def model_dir(name: str) -> Path:
    """The package folder of builtin model ``name``."""
    if name not in BUILTIN_MODELS:
        raise ModelNotFoundError(
            f"unknown builtin model {name!r}; available: "
            + ", ".join(f"builtin:{n}" for n in available())
        )
    folder = Path(str(resources.files("mmsearch") / "assets" / BUILTIN_MODELS[name]))
    if not folder.is_dir():
        raise ModelNotFoundError(
            f"builtin model {name!r} is missing from this installation ({folder})"
        )
    return folder


def load(name: str, *, spec: str, **kw: Any) -> Encoder:
    """Load a builtin model through the backend that reads its folder format."""
    from mmsearch.encoders import tiny

    return tiny.load(str(model_dir(name)), spec=spec, **kw)
