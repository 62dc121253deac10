"""Resolve a reranker spec to a :class:`~mmsearch.search.rerank.base.Reranker`.

A spec is ``prefix:name`` or a local folder:

* ``blip:NAME`` — BLIP image–text matching (``blip.py``; pictures), e.g.
  ``blip:Salesforce/blip-itm-base-coco``;
* ``cross-encoder:NAME`` — a sentence-transformers ``CrossEncoder`` (``cross_encoder.py``;
  texts, and pictures too when the model reads images), e.g.
  ``cross-encoder:cross-encoder/ms-marco-MiniLM-L6-v2``;
* ``trained:FOLDER`` — a reranker trained by ``mmsearch train --reranker`` (``trained.py``);
* ``hf:NAME``, a bare hub id (``org/name``) or a folder — judged by the files of the
  checkpoint (:func:`detect_folder_backend`): ``mmsearch_reranker.json`` → trained;
  ``config.json`` of model type ``blip`` → BLIP; a sentence-transformers CrossEncoder
  folder (``config_sentence_transformers.json`` of type ``CrossEncoder``, or a
  transformers ``…ForSequenceClassification``) → cross-encoder.

Adding a backend is one module with ``load(name: str, **options) -> Reranker`` and one
line in :data:`_BACKENDS` (plus, for folders, one rule in :func:`detect_folder_backend`).
Larger multimodal rerankers plug in the same way. One that sentence-transformers' multimodal
``CrossEncoder`` loads (the issue names Qwen3-VL-Reranker) may need nothing new: the
``cross-encoder`` backend sends pictures to a model that says it reads images (untested:
no such model is small enough to build in a test). One that needs its own prompt or
scoring is a module ``qwen3_vl.py`` with ``load`` and a class with ``name``, ``kinds`` and
``score`` (see ``base.py``), and the line ``"qwen3-vl": "mmsearch.search.rerank.qwen3_vl:load"``.
The backend modules are imported only when a spec names them, so nothing here imports torch.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from mmsearch.errors import ModelNotFoundError, UnknownBackendError
from mmsearch.search.rerank.base import Reranker

# prefix -> "module:function"; the function is ``load(name: str, **options) -> Reranker``.
_BACKENDS: dict[str, str] = {
    "blip": "mmsearch.search.rerank.blip:load",
    "cross-encoder": "mmsearch.search.rerank.cross_encoder:load",
    "trained": "mmsearch.search.rerank.trained:load",
}

_HUB_PREFIX = "hf"
"""``hf:NAME``: fetch the checkpoint, then choose the backend by its files."""

TRAINED_MARKER = "mmsearch_reranker.json"


def backends() -> list[str]:
    """The spec prefixes a reranker can be named with."""
    return sorted([*_BACKENDS, _HUB_PREFIX])


def load_reranker(spec: str, **options: Any) -> Reranker:
    """Load the reranker ``spec`` names; ``options`` go to the backend (``device``,
    ``batch_size``). Raises :class:`UnknownBackendError` for a prefix no backend has and
    :class:`ModelNotFoundError` for a folder or checkpoint that is not there."""
    backend, name = split_spec(spec)
    module_name, func_name = _BACKENDS[backend].split(":")
    loader = getattr(importlib.import_module(module_name), func_name)
    reranker: Reranker = loader(name, **options)
    return reranker


def split_spec(spec: str) -> tuple[str, str]:
    """``(backend, name)`` for a spec; folders and ``hf:`` checkpoints by their files."""
    if not isinstance(spec, str) or not spec.strip():
        raise UnknownBackendError(f"empty reranker spec; known: {_known()}")
    path = Path(os.path.expanduser(spec))
    if path.is_dir():
        return detect_folder_backend(path), str(path.resolve())
    prefix, sep, name = spec.partition(":")
    if sep and prefix in _BACKENDS:
        return prefix, name
    if sep and prefix == _HUB_PREFIX:
        return _hub_backend(name, spec)
    if sep and "/" not in prefix and not prefix.startswith((".", "~")):
        raise UnknownBackendError(f"unknown reranker {prefix!r} in {spec!r}; known: {_known()}")
    if spec.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"reranker folder not found: {spec}")
    if "/" in spec and not sep:
        return _hub_backend(spec, spec)
    raise UnknownBackendError(f"unknown reranker {spec!r}; known: {_known()}")


def detect_folder_backend(folder: Path) -> str:
    """Which backend loads a reranker folder, judged by the files it holds."""
    if (folder / TRAINED_MARKER).is_file():
        return "trained"
    st_config = _read_json(folder / "config_sentence_transformers.json")
    config = _read_json(folder / "config.json")
    if st_config.get("model_type") == "CrossEncoder":
        return "cross-encoder"
    if st_config.get("model_type"):
        raise ModelNotFoundError(
            f"{folder} is a sentence-transformers embedding model ({st_config['model_type']}), "
            "not a reranker; use it as a text model, or name a CrossEncoder"
        )
    if config.get("model_type") == "blip":
        return "blip"
    if any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures", [])):
        return "cross-encoder"
    raise ModelNotFoundError(
        f"{folder} is not a reranker folder: expected {TRAINED_MARKER} (mmsearch train "
        "--reranker), a config.json of model type 'blip' (BLIP image-text matching) or a "
        "sentence-transformers CrossEncoder"
    )


def _hub_backend(name: str, spec: str) -> tuple[str, str]:
    """Fetch a hub checkpoint (or find it in the cache) and judge it by its files."""
    from mmsearch.search.rerank.checkpoint import resolve_checkpoint

    folder, _ = resolve_checkpoint(name, spec=spec)
    return detect_folder_backend(folder), str(folder)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _known() -> str:
    return ", ".join(f"{b}:" for b in backends()) + " or a model folder"
