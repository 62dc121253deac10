"""Resolve a model spec to an encoder: ``prefix:name`` or a local folder.

Backends are registered by prefix with the module that implements them; the
module is imported only when a spec asks for it, so ``onnx:`` never imports
torch. Adding a backend is one file plus one line in ``_BACKENDS``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from mmsearch.encoders.base import Encoder
from mmsearch.errors import ModelNotFoundError, UnknownBackendError

# prefix -> "module:function"; the function is ``load(name: str, **options) -> Encoder``.
_BACKENDS: dict[str, str] = {
    "hf": "mmsearch.encoders.hf:load",
    "openclip": "mmsearch.encoders.openclip:load",
    "onnx": "mmsearch.encoders.onnx:load",
    "tiny": "mmsearch.encoders.tiny:load",
    "builtin": "mmsearch.encoders.builtin:load",
    "st": "mmsearch.encoders.sentence:load",
}

DEFAULT_MODEL = "hf:google/siglip2-base-patch16-256"
"""Default for users with a model hub (multilingual: answers Chinese and English queries)."""

DEMO_MODEL = "builtin:demo"
"""The small model shipped in the package, trained by our own code on generated shapes."""


def backends() -> list[str]:
    return sorted(_BACKENDS)


def split_spec(spec: str) -> tuple[str, str]:
    """Return (backend, name) for a spec; a local folder is detected by its files."""
    path = Path(os.path.expanduser(spec))
    if path.is_dir():
        return detect_folder_backend(path), str(path.resolve())
    prefix, sep, name = spec.partition(":")
    if sep and prefix in _BACKENDS:
        return prefix, name
    if sep and "/" not in prefix and not prefix.startswith("."):
        raise UnknownBackendError(
            f"unknown model backend {prefix!r} in {spec!r}; known: {', '.join(backends())}"
        )
    if spec.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"model folder not found: {spec}")
    # A bare hub id such as "openai/clip-vit-base-patch32" goes to transformers.
    return "hf", spec


def detect_folder_backend(path: Path) -> str:
    """Which backend loads a model folder, judged by the files it holds."""
    if (path / "mmsearch_onnx.json").is_file():
        return "onnx"
    if (path / "mmsearch_model.json").is_file():
        return "tiny"
    if (path / "open_clip_config.json").is_file():
        return "openclip"
    # Before config.json: a sentence-transformers folder holds its transformer's config too.
    if any((path / f).is_file() for f in ("modules.json", "config_sentence_transformers.json")):
        return "st"
    if (path / "config.json").is_file():
        return "hf"
    raise ModelNotFoundError(
        f"{path} is not a model folder: expected config.json (transformers), "
        "open_clip_config.json (open_clip), modules.json (sentence-transformers), "
        "mmsearch_onnx.json (ONNX export) or mmsearch_model.json (mmsearch model)"
    )


def load_encoder(spec: str | None = None, **options: Any) -> Encoder:
    """Load an encoder from a spec such as ``hf:openai/clip-vit-base-patch32``.

    ``options`` go to the backend (``device``, ``batch_size``, ...). With no spec
    the default model is loaded (it needs a model hub or a cached copy).
    """
    backend, name = split_spec(spec or DEFAULT_MODEL)
    module_name, func_name = _BACKENDS[backend].split(":")
    loader = getattr(importlib.import_module(module_name), func_name)
    encoder: Encoder = loader(name, spec=spec or DEFAULT_MODEL, **options)
    return encoder
