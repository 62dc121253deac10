"""Import optional heavy dependencies on first use, with an error naming the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from mmsearch.errors import MissingDependencyError

_EXTRAS = {
    "torch": "torch",
    "torchvision": "torch",
    "transformers": "torch",
    "open_clip": "torch",
    "onnxruntime": "onnx",
    "onnx": "onnx",
    "ftfy": "onnx",
    "av": "media",
    "fastapi": "server",
    "uvicorn": "server",
    "faiss": "all",
    "sentence_transformers": "text",
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingDependencyError(top, _EXTRAS.get(top, "all")) from exc
