"""Checks the transformers model tests share (hf, CLAP, X-CLIP, Whisper), and a fake hub.

* :func:`assert_matches_reference`: an encoder's rows against the model card's own calls.
* :func:`load_half` / :func:`assert_close_rows`: the float16 path CUDA takes, run on the CPU.
* :func:`isolate_hub` / :func:`fill_hub_cache`: a hub nobody listens on, and a cache laid
  out as huggingface_hub leaves it after a download (no network is used);
  :func:`offline_error`: the one message a load gives offline with nothing cached.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import torch

from mmsearch.encoders import torch_util
from mmsearch.errors import ModelNotFoundError

from tiny_models import row_cosines

T = TypeVar("T")


def assert_matches_reference(ours: np.ndarray, ref: np.ndarray, shape: tuple[int, int]) -> None:
    """Unit float32 rows of ``shape``, pointing where the reference's do, not all alike."""
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape == shape
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert row_cosines(ours, ref).min() >= 0.9999
    # Different inputs give different vectors (a broken tokenizer or a constant tower would not).
    assert np.abs(ours[0] - ours[1]).max() > 1e-3


def load_half(monkeypatch: pytest.MonkeyPatch, load: Callable[[], T]) -> T:
    """``load()`` as on CUDA (float16 weights and inputs) but on the CPU; checks the weights."""
    monkeypatch.setattr(torch_util, "pick_device", lambda device=None: ("cpu", torch.float16))
    loaded = load()
    assert next(loaded.model.parameters()).dtype == torch.float16  # type: ignore[attr-defined]
    return loaded


def assert_close_rows(ours: np.ndarray, ref: np.ndarray, min_cosine: float) -> None:
    """float32 rows within ``min_cosine`` of the reference's, row by row."""
    assert ours.dtype == np.float32
    assert row_cosines(ours, ref).min() >= min_cosine


def isolate_hub(monkeypatch: Any, cache: Path, *, offline: bool = True) -> Path:
    """An empty hub cache at ``cache`` and a hub endpoint nobody listens on (no network used)."""
    import huggingface_hub.constants as constants

    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("MMSEARCH_HUB_TIMEOUT", "3")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return cache


def offline_error(monkeypatch: pytest.MonkeyPatch, cache: Path, load: Callable[[], Any]) -> str:
    """The one-line :class:`ModelNotFoundError` message of ``load()`` offline with an empty cache."""
    isolate_hub(monkeypatch, cache)
    with pytest.raises(ModelNotFoundError) as info:
        load()
    msg = str(info.value)
    assert "offline mode is on" in msg and "\n" not in msg
    return msg


def fill_hub_cache(cache: Path, repo_id: str, folder: str | Path) -> Path:
    """Lay out ``folder`` in the cache as huggingface_hub would after a download; the snapshot."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    sha = "0" * 40
    snapshot = repo / "snapshots" / sha
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    return snapshot
