"""Find a reranker checkpoint on disk: a folder as given, or a hub id fetched into the cache.

Hub access (timeouts, offline mode, one clear error when the model is neither reachable
nor cached) is the encoders' (``encoders/hub.py``); what differs is the choice of files.
A reranker may keep parts in subfolders (sentence-transformers modules such as a
CrossEncoder's scoring head), so every file of the repository is taken except other
weight formats and exports: the safetensors weights when there are any (else the
PyTorch ``.bin``), never ONNX, OpenVINO, TensorFlow, Flax or Rust copies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from mmsearch.encoders import hub
from mmsearch.encoders.hf import folder_model_id
from mmsearch.errors import ModelNotFoundError

_EXPORT_FOLDERS = ("onnx/", "openvino/")
_OTHER_FORMATS = (".h5", ".msgpack", ".ot", ".onnx", ".onnx_data", ".tflite")
_KEEP = (".json", ".txt", ".model", ".tiktoken", ".safetensors", ".bin")
_BIN_INDEX = re.compile(r"(^|/)pytorch_model\.bin\.index\.json$")


def resolve_checkpoint(name: str, *, spec: str) -> tuple[Path, str]:
    """``(folder, model id)`` for ``name``: a local folder, or a hub id (``org/name``)."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder, folder_model_id(folder)
    if hub.is_hub_id(name):
        return hub.fetch_repo(name, select_files, spec=spec), name
    raise ModelNotFoundError(
        f"{spec!r} is neither a model folder nor a hub id of the form org/name"
    )


def select_files(files: Sequence[str]) -> list[str]:
    """The files of a repository a reranker load needs (one weight format)."""
    if "config.json" not in files and "modules.json" not in files:
        raise ModelNotFoundError("the repository has no config.json (not a transformers model)")
    kept = [
        f
        for f in files
        if f.endswith(_KEEP)
        and not f.startswith(_EXPORT_FOLDERS)
        and not f.endswith(_OTHER_FORMATS)
        and not f.startswith("training_args")
    ]
    if any(f.endswith(".safetensors") for f in kept):
        kept = [f for f in kept if not (f.endswith(".bin") or _BIN_INDEX.search(f))]
    if not any(f.endswith((".safetensors", ".bin")) for f in kept):
        raise ModelNotFoundError("the repository has no PyTorch weights (model.safetensors)")
    return kept
