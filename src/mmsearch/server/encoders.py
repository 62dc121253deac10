"""The models a server process keeps loaded: those given to ``create_app``, plus the
library's own for each space it has (loaded once, then shared by every reader, or
by every job of the warm job worker)."""

from __future__ import annotations

from typing import Any

from mmsearch.library import Library

ENCODER_KEYS = ("encoder", "audio_encoder", "video_encoder", "text_encoder")
"""``Library.open`` arguments that take a loaded model."""


def shared_encoders(lib: Library, given: dict[str, Any]) -> dict[str, Any]:
    """The encoders every user of ``lib`` should share: those given, plus the library's
    own models (loaded now, once) for each space it has."""
    out = dict(given)
    if "encoder" not in out:
        out["encoder"] = lib.encoder()
    if "audio_encoder" not in out and "audio" in lib.spaces:
        out["audio_encoder"] = lib.audio_encoder()
    if "video_encoder" not in out and "video" in lib.spaces:
        out["video_encoder"] = lib.video_encoder()
    if "text_encoder" not in out and "text" in lib.spaces:
        out["text_encoder"] = lib.spaces["text"].encoder()
    return out
