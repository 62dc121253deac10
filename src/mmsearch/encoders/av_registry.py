"""Load the audio–text, video–text and speech-recognition models, and resolve their specs.

Three roles, one transformers family each, keyed by the checkpoint's
``config.model_type`` (data, not name substrings):

=======  ===========  ===================================  ==========================
role     model_type   loader                               default
=======  ===========  ===================================  ==========================
audio    clap         :func:`load_audio_encoder`           ``hf:laion/clap-htsat-unfused``
video    xclip        :func:`load_video_encoder`           ``hf:microsoft/xclip-base-patch32``
asr      whisper      :func:`load_recognizer`              ``hf:openai/whisper-base``
=======  ===========  ===================================  ==========================

A spec is ``hf:<hub id>``, a bare hub id (``laion/clap-htsat-unfused``) or a
local folder written by ``save_pretrained``. Hub ids go through
:func:`mmsearch.encoders.hub.fetch_repo` (cache, offline mode and the one clear
:class:`~mmsearch.errors.ModelNotFoundError`); a checkpoint of another kind
(a Whisper folder given as the audio model) is refused with a message naming
what it is and which loader takes it. Backends import :func:`resolve_model`
from here; the backends themselves are imported only when a loader runs.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmsearch.encoders import hf
from mmsearch.encoders.registry import split_spec
from mmsearch.errors import ModelNotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from mmsearch.asr.base import Recognizer
    from mmsearch.encoders.base import AudioTextEncoder, VideoTextEncoder

DEFAULT_AUDIO_MODEL = "hf:laion/clap-htsat-unfused"
DEFAULT_VIDEO_MODEL = "hf:microsoft/xclip-base-patch32"
DEFAULT_ASR_MODEL = "hf:openai/whisper-base"

# model_type -> (what it is, how to load it); used to explain a checkpoint of the wrong kind.
_KINDS: dict[str, tuple[str, str]] = {
    "clap": ("an audio–text model (CLAP)", "load_audio_encoder"),
    "xclip": ("a video–text model (X-CLIP)", "load_video_encoder"),
    "whisper": ("a speech recognition model (Whisper)", "load_recognizer"),
}

# model_type a role needs -> (what the role is, "module:function" of its backend)
_ROLES: dict[str, tuple[str, str]] = {
    "clap": ("an audio–text encoder", "mmsearch.encoders.clap:load"),
    "xclip": ("a video–text encoder", "mmsearch.encoders.xclip:load"),
    "whisper": ("a speech recogniser", "mmsearch.asr.whisper:load"),
}


def load_audio_encoder(spec: str | None = None, **options: Any) -> AudioTextEncoder:
    """Load a CLAP audio–text encoder (``device``, ``batch_size``, ``model_id`` options)."""
    encoder: AudioTextEncoder = _load("clap", spec or DEFAULT_AUDIO_MODEL, options)
    return encoder


def load_video_encoder(spec: str | None = None, **options: Any) -> VideoTextEncoder:
    """Load an X-CLIP video–text encoder (``device``, ``batch_size``, ``model_id`` options)."""
    encoder: VideoTextEncoder = _load("xclip", spec or DEFAULT_VIDEO_MODEL, options)
    return encoder


def load_recognizer(spec: str | None = None, **options: Any) -> Recognizer:
    """Load a Whisper recogniser (``device``, ``batch_size``, ``max_new_tokens``, ``model_id``)."""
    recognizer: Recognizer = _load("whisper", spec or DEFAULT_ASR_MODEL, options)
    return recognizer


def _load(model_type: str, spec: str, options: dict[str, Any]) -> Any:
    what, target = _ROLES[model_type]
    backend, name = split_spec(spec)
    if backend != "hf":
        raise ModelNotFoundError(
            f"{spec!r} is a {backend!r} model; {what} loads through transformers: "
            "give hf:<hub id>, a hub id or a transformers model folder"
        )
    module_name, func_name = target.split(":")
    loader = getattr(importlib.import_module(module_name), func_name)
    return loader(name, spec=spec, **options)


def resolve_model(
    name: str, *, spec: str, model_type: str, model_id: str | None = None
) -> tuple[Path, str]:
    """A local folder holding a ``model_type`` checkpoint for ``name``, and its identity.

    ``name`` is a folder or a hub id (fetched into the cache, or found there when
    offline). ``model_id`` overrides the recorded identity (a copied folder).
    """
    folder, ident = hf.resolve_folder(name, spec=spec, model_id=model_id)
    check_model_type(folder, model_type, spec=spec)
    return folder, ident


def check_model_type(folder: Path, expected: str, *, spec: str) -> None:
    """Raise :class:`ModelNotFoundError` unless ``folder`` holds a ``expected`` checkpoint."""
    found = folder_model_type(folder)
    if found == expected:
        return
    need = _ROLES[expected][0] if expected in _ROLES else "this role"
    if found in _KINDS:
        kind, loader = _KINDS[found]
        raise ModelNotFoundError(
            f"{spec!r} is {kind}: load it with {loader}; {need} needs a {expected!r} checkpoint"
        )
    if found in hf.FAMILIES:
        raise ModelNotFoundError(
            f"{spec!r} is an image–text model ({hf.FAMILIES[found].name}): load it with "
            f"load_encoder; {need} needs a {expected!r} checkpoint"
        )
    raise ModelNotFoundError(
        f"{spec!r} is a {found!r} model; {need} needs a {expected!r} checkpoint"
    )


def folder_model_type(folder: Path) -> str:
    """``model_type`` from a transformers folder's config.json."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"cannot read a transformers config.json in {folder}: {exc}"
        ) from exc
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not isinstance(model_type, str):
        raise ModelNotFoundError(f"{folder / 'config.json'} names no model_type")
    return model_type
