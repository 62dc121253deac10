"""mmsearch: multimodal semantic search over text, images, video and audio in shared spaces.

The public names are imported lazily so that ``import mmsearch`` (and the CLI's
``--help``) stays fast and never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Library",
    "load_encoder",
    "load_audio_encoder",
    "load_video_encoder",
    "load_recognizer",
    "Hit",
    "Query",
    "QueryPart",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from mmsearch.encoders.av_registry import (
        load_audio_encoder,
        load_recognizer,
        load_video_encoder,
    )
    from mmsearch.encoders.registry import load_encoder
    from mmsearch.library import Library
    from mmsearch.search.query import Query, QueryPart
    from mmsearch.types import Hit

_LAZY = {
    "Library": ("mmsearch.library", "Library"),
    "load_encoder": ("mmsearch.encoders.registry", "load_encoder"),
    "load_audio_encoder": ("mmsearch.encoders.av_registry", "load_audio_encoder"),
    "load_video_encoder": ("mmsearch.encoders.av_registry", "load_video_encoder"),
    "load_recognizer": ("mmsearch.encoders.av_registry", "load_recognizer"),
    "Hit": ("mmsearch.types", "Hit"),
    "Query": ("mmsearch.search.query", "Query"),
    "QueryPart": ("mmsearch.search.query", "QueryPart"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'mmsearch' has no attribute {name!r}")
