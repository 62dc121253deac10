"""The transformers backend against transformers itself, on tiny random-weight checkpoints.

Every family is built locally (tests/tiny_models.py), loaded through
``mmsearch.load_encoder(folder)`` and compared with the reference calls of its
model card: ``processor(...)`` + ``model.get_text_features`` /
``model.get_image_features`` on the same weights. Also: the hub/offline path
(no network is used: the hub endpoint is pointed at a closed local port).
"""

from __future__ import annotations

import pickle
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import transformers  # noqa: F401

import mmsearch  # noqa: E402
from mmsearch.encoders import hf, hub  # noqa: E402
from mmsearch.errors import ModelNotFoundError  # noqa: E402

from encoder_checks import (  # noqa: E402
    assert_close_rows,
    assert_matches_reference,
    fill_hub_cache,
    isolate_hub,
    load_half,
)
from tiny_models import HF_KINDS, TEXTS, make_images, make_tiny_hf_clip  # noqa: E402

# The reference text call of each family, as its model card writes it (the tiny
# checkpoints have 64 text positions; the real CLIP ones have 77).
REFERENCE_TEXT_KWARGS: dict[str, dict[str, Any]] = {
    "clip": {"padding": True},
    "siglip": {"padding": "max_length", "max_length": 64},
    "siglip2": {"padding": "max_length", "max_length": 64},
    "siglip2_naflex": {"padding": "max_length", "max_length": 64},
    "chinese_clip": {"padding": True},
    "altclip": {"padding": True},
    "align": {"padding": True},
}


IMAGES = make_images()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hf-models")


_BUILT: dict[str, str] = {}


def folder_for(kind: str, root: Path) -> str:
    if kind not in _BUILT:
        _BUILT[kind] = make_tiny_hf_clip(root, kind)
    return _BUILT[kind]


def reference(kind: str, folder: str) -> tuple[np.ndarray, np.ndarray]:
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    text_in = processor(text=TEXTS, return_tensors="pt", **REFERENCE_TEXT_KWARGS[kind])
    image_in = processor(images=IMAGES, return_tensors="pt")
    with torch.inference_mode():
        text = model.get_text_features(**text_in)
        image = model.get_image_features(**image_in)
    text = text if torch.is_tensor(text) else text.pooler_output
    image = image if torch.is_tensor(image) else image.pooler_output
    return text.numpy(), image.numpy()


@pytest.mark.parametrize("kind", HF_KINDS)
def test_matches_transformers(kind: str, tiny_dir: Path) -> None:
    folder = folder_for(kind, tiny_dir)
    enc = mmsearch.load_encoder(folder, device="cpu")
    ref_text, ref_image = reference(kind, folder)

    assert_matches_reference(enc.encode_text(TEXTS), ref_text, (len(TEXTS), enc.dim))
    assert_matches_reference(enc.encode_images(IMAGES), ref_image, (len(IMAGES), enc.dim))
    assert enc.info.backend == "hf" and enc.info.dim == enc.dim


@pytest.mark.parametrize("kind", ["clip", "siglip2", "siglip2_naflex", "align"])
def test_batching_and_pixels_path(kind: str, tiny_dir: Path) -> None:
    enc = mmsearch.load_encoder(folder_for(kind, tiny_dir), device="cpu")

    one_by_one = np.concatenate([enc.encode_text([t]) for t in TEXTS])
    np.testing.assert_allclose(enc.encode_text(TEXTS, batch_size=3), one_by_one, atol=1e-5)
    images = enc.encode_images(IMAGES, batch_size=3)
    singles = np.concatenate([enc.encode_images([im]) for im in IMAGES])
    np.testing.assert_allclose(images, singles, atol=1e-5)

    pre = enc.image_preprocessor()
    pixels = np.stack([pre(im) for im in IMAGES])
    np.testing.assert_allclose(enc.encode_pixels(pixels), images, atol=1e-5)
    assert enc.encode_text([]).shape == (0, enc.dim)
    assert enc.encode_images([]).shape == (0, enc.dim)


@pytest.mark.parametrize("kind", ["clip", "siglip2_naflex", "align"])
def test_image_preprocessor_is_picklable_and_exact(kind: str, tiny_dir: Path) -> None:
    from transformers import AutoProcessor

    folder = folder_for(kind, tiny_dir)
    pre = mmsearch.load_encoder(folder, device="cpu").image_preprocessor()
    clone = pickle.loads(pickle.dumps(pre))
    image = IMAGES[2]
    out = pre(image)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(clone(image), out)
    if kind != "siglip2_naflex":
        ref = AutoProcessor.from_pretrained(folder)(images=[image], return_tensors="np")
        assert out.shape == ref["pixel_values"][0].shape
        np.testing.assert_array_equal(out, ref["pixel_values"][0])


def test_info_is_stable_and_describes_preprocessing(tiny_dir: Path) -> None:
    folder = folder_for("clip", tiny_dir)
    a = mmsearch.load_encoder(folder, device="cpu").info
    b = mmsearch.load_encoder(f"hf:{folder}", device="cpu").info
    assert a.fingerprint == b.fingerprint
    assert a.model_id == "tiny-clip"
    pre = a.preprocessing
    assert pre["size"] == {"shortest_edge": 40}
    assert pre["crop_size"] == {"height": 32, "width": 32}
    assert pre["resample"] == "bicubic"
    assert pre["image_mean"] == pytest.approx([0.48145466, 0.4578275, 0.40821073])
    other = mmsearch.load_encoder(folder_for("siglip2", tiny_dir), device="cpu").info
    assert other.fingerprint != a.fingerprint
    assert other.extra["text_padding"] == "max_length"


def test_unsupported_model_type_is_a_clear_error(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=8,
            vocab_size=10,
        )
    ).save_pretrained(tmp_path)
    with pytest.raises(ModelNotFoundError, match="'bert' model"):
        mmsearch.load_encoder(str(tmp_path))


def test_select_files_picks_one_weight_format() -> None:
    files = [
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
        "tf_model.h5",
        "flax_model.msgpack",
        "tokenizer.json",
        "spiece.model",
        "onnx/model.onnx",
        "preprocessor_config.json",
        "README.md",
    ]
    chosen = hf.select_files(files)
    assert "model.safetensors" in chosen and "pytorch_model.bin" not in chosen
    assert {"config.json", "tokenizer.json", "spiece.model", "preprocessor_config.json"} <= set(
        chosen
    )
    assert not any(f.endswith((".h5", ".msgpack", ".onnx", ".md")) for f in chosen)
    assert hf.select_files(["config.json", "pytorch_model.bin"]) == [
        "config.json",
        "pytorch_model.bin",
    ]
    with pytest.raises(ModelNotFoundError, match="openclip:hf-hub"):
        hf.select_files(["open_clip_config.json", "open_clip_model.safetensors"])


# ---- hub: unreachable, offline, cached ---------------------------------------------------------


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty hub cache and a hub endpoint nobody listens on (connection refused)."""
    return isolate_hub(monkeypatch, tmp_path / "hub-cache", offline=False)


def test_unreachable_hub_and_no_cache_raise_one_clear_error(no_hub: Path) -> None:
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError) as info:
        mmsearch.load_encoder("hf:google/siglip2-base-patch16-256")
    assert time.monotonic() - start < 30
    msg = str(info.value)
    assert "google/siglip2-base-patch16-256" in msg
    assert "could not be reached" in msg
    assert "--model /path/to/folder" in msg and "mmsearch demo" in msg
    assert "HF_HUB_OFFLINE" in msg and "HF_ENDPOINT" in msg
    assert "\n" not in msg


def test_offline_mode_without_cache(no_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="offline mode is on"):
        mmsearch.load_encoder("openai/clip-vit-base-patch32")


@pytest.mark.parametrize("offline_flag", [False, True])
def test_cached_model_loads_without_hub(
    no_hub: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch, offline_flag: bool
) -> None:
    if offline_flag:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = folder_for("clip", tiny_dir)
    snapshot = fill_hub_cache(no_hub, "tiny-org/tiny-clip", folder)
    enc = mmsearch.load_encoder("hf:tiny-org/tiny-clip", device="cpu")
    assert enc.info.model_id == "tiny-org/tiny-clip"
    direct = mmsearch.load_encoder(folder, device="cpu")
    np.testing.assert_allclose(enc.encode_text(TEXTS), direct.encode_text(TEXTS), atol=1e-6)
    # The snapshot folder itself keeps the hub identity, so both share one space.
    assert hub.hub_id_from_folder(snapshot) == "tiny-org/tiny-clip"
    assert (
        mmsearch.load_encoder(str(snapshot), device="cpu").info.fingerprint == enc.info.fingerprint
    )


def test_model_id_override_and_bad_names(tiny_dir: Path) -> None:
    folder = folder_for("clip", tiny_dir)
    enc = mmsearch.load_encoder(folder, device="cpu", model_id="openai/clip-vit-base-patch32")
    assert enc.info.model_id == "openai/clip-vit-base-patch32"
    with pytest.raises(ModelNotFoundError, match="neither a model folder nor a hub id"):
        mmsearch.load_encoder("hf:not a hub id")


def test_folder_keeps_hub_id_recorded_in_config(tiny_dir: Path, tmp_path: Path) -> None:
    import json

    copy = tmp_path / "copied-model"
    shutil.copytree(folder_for("clip", tiny_dir), copy)
    config = json.loads((copy / "config.json").read_text())
    config["_name_or_path"] = "tiny-org/tiny-clip"
    (copy / "config.json").write_text(json.dumps(config))
    assert mmsearch.load_encoder(str(copy), device="cpu").info.model_id == "tiny-org/tiny-clip"


@pytest.mark.parametrize("kind", ["clip", "siglip2_naflex"])
def test_half_precision_path(kind: str, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What CUDA gets (float16 weights and inputs), run on the CPU: float32 unit rows out."""
    folder = folder_for(kind, tiny_dir)
    full = mmsearch.load_encoder(folder, device="cpu")
    half = load_half(monkeypatch, lambda: mmsearch.load_encoder(folder))
    assert_close_rows(half.encode_text(TEXTS), full.encode_text(TEXTS), 0.999)
    assert_close_rows(half.encode_images(IMAGES), full.encode_images(IMAGES), 0.999)
