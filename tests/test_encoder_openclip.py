"""The open_clip backend against open_clip itself, on a tiny random-weight model.

The model is open_clip's ViT-B-32 layout shrunk (tests/tiny_models.py), saved as
open_clip_config.json + open_clip_model.safetensors. It is loaded as a folder,
from a (fake, local) hub cache as ``hf-hub:org/repo``, and as ``ARCH/TAG`` with
a tag registered for the test, and compared with open_clip's own
create_model_and_transforms + get_tokenizer + encode_text/encode_image.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import pytest
import torch

import mmsearch  # noqa: E402
from mmsearch.encoders import openclip  # noqa: E402
from mmsearch.errors import ModelNotFoundError  # noqa: E402

from tiny_models import (  # noqa: E402
    OPENCLIP_MODEL_CFG,
    TEXTS,
    make_images,
    make_tiny_openclip,
    row_cosines,
)

IMAGES = make_images()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_tiny_openclip(tmp_path_factory.mktemp("openclip"))


def reference(model_name: str, pretrained: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
    tokenizer = open_clip.get_tokenizer(model_name)
    model.eval()
    with torch.no_grad():
        text = model.encode_text(tokenizer(TEXTS))
        image = model.encode_image(torch.stack([preprocess(im) for im in IMAGES]))
    return text.numpy(), image.numpy()


def test_matches_open_clip(folder: str) -> None:
    enc = mmsearch.load_encoder(folder, device="cpu")
    ref_text, ref_image = reference(f"local-dir:{folder}")
    text, images = enc.encode_text(TEXTS), enc.encode_images(IMAGES)

    assert enc.info.backend == "openclip"
    assert enc.dim == OPENCLIP_MODEL_CFG["embed_dim"] == text.shape[1]
    assert text.dtype == np.float32 and images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    assert row_cosines(text, ref_text).min() >= 0.9999
    assert row_cosines(images, ref_image).min() >= 0.9999
    assert np.abs(text[1] - text[3]).max() > 1e-3  # two Chinese strings stay distinct


def test_batching_pixels_and_pickle(folder: str) -> None:
    enc = mmsearch.load_encoder(f"openclip:{folder}", device="cpu")
    singles = np.concatenate([enc.encode_text([t]) for t in TEXTS])
    np.testing.assert_allclose(enc.encode_text(TEXTS, batch_size=3), singles, atol=1e-5)
    images = enc.encode_images(IMAGES, batch_size=3)
    np.testing.assert_allclose(
        images, np.concatenate([enc.encode_images([im]) for im in IMAGES]), atol=1e-5
    )

    pre = enc.image_preprocessor()
    clone = pickle.loads(pickle.dumps(pre))
    pixels = np.stack([pre(im) for im in IMAGES])
    assert pixels.shape == (len(IMAGES), 3, 32, 32) and pixels.dtype == np.float32
    np.testing.assert_array_equal(np.stack([clone(im) for im in IMAGES]), pixels)
    _, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    np.testing.assert_array_equal(pixels[1], preprocess(IMAGES[1]).numpy())
    np.testing.assert_allclose(enc.encode_pixels(pixels), images, atol=1e-5)
    assert enc.encode_text([]).shape == (0, enc.dim)


def test_info_is_stable(folder: str) -> None:
    a = mmsearch.load_encoder(folder, device="cpu").info
    b = mmsearch.load_encoder(f"openclip:{folder}", device="cpu").info
    assert a.fingerprint == b.fingerprint
    assert a.model_id == "tiny-openclip"
    assert a.preprocessing["size"] == [32, 32]
    assert a.preprocessing["interpolation"] == "bicubic"
    assert a.preprocessing["resize_mode"] == "shortest"
    json.dumps(a.to_dict())


# ---- hub forms, served from a local cache with the hub unreachable --------------------------


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import huggingface_hub.constants as constants

    root = tmp_path / "hub-cache"
    root.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("MMSEARCH_HUB_TIMEOUT", "3")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return root


def fill_cache(cache: Path, repo_id: str, folder: str) -> Path:
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    sha = "1" * 40
    snapshot = repo / "snapshots" / sha
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    return snapshot


def test_hf_hub_spec_from_cache(folder: str, cache: Path) -> None:
    fill_cache(cache, "tiny-org/tiny-openclip", folder)
    enc = mmsearch.load_encoder("openclip:hf-hub:tiny-org/tiny-openclip", device="cpu")
    assert enc.info.model_id == "tiny-org/tiny-openclip"
    direct = mmsearch.load_encoder(folder, device="cpu")
    np.testing.assert_allclose(enc.encode_text(TEXTS), direct.encode_text(TEXTS), atol=1e-6)


def test_tag_spec_matches_open_clip_tag(
    folder: str, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as constants
    from open_clip import pretrained as oc_pretrained

    arch_file = tmp_path / "mms-tiny-arch.json"
    arch_file.write_text(json.dumps(OPENCLIP_MODEL_CFG))
    open_clip.add_model_config(arch_file)
    fill_cache(cache, "tiny-org/tiny-openclip", folder)
    tag_cfg: dict[str, Any] = {
        "hf_hub": "tiny-org/tiny-openclip/",
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "interpolation": "bilinear",
        "resize_mode": "squash",
    }
    monkeypatch.setitem(oc_pretrained._PRETRAINED, "mms-tiny-arch", {"tiny_tag": tag_cfg})

    enc = mmsearch.load_encoder("openclip:mms-tiny-arch/tiny-tag", device="cpu")
    assert enc.info.model_id == "mms-tiny-arch/tiny_tag"
    assert enc.info.preprocessing["mean"] == [0.5, 0.5, 0.5]
    assert enc.info.preprocessing["resize_mode"] == "squash"

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ref_text, ref_image = reference("mms-tiny-arch", pretrained="tiny_tag")
    assert row_cosines(enc.encode_text(TEXTS), ref_text).min() >= 0.9999
    assert row_cosines(enc.encode_images(IMAGES), ref_image).min() >= 0.9999


def test_unreachable_hub_without_cache(cache: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="could not be reached") as info:
        mmsearch.load_encoder("openclip:ViT-B-32/laion2b_s34b_b79k")
    assert "ViT-B-32/laion2b_s34b_b79k" in str(info.value)
    with pytest.raises(ModelNotFoundError, match="mmsearch demo"):
        mmsearch.load_encoder("openclip:hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")


def test_bad_specs() -> None:
    with pytest.raises(ModelNotFoundError, match="no tag 'nope'"):
        mmsearch.load_encoder("openclip:ViT-B-32/nope")
    with pytest.raises(ModelNotFoundError, match="no architecture"):
        mmsearch.load_encoder("openclip:Not-An-Arch/openai")
    with pytest.raises(ModelNotFoundError, match="ARCH/TAG"):
        mmsearch.load_encoder("openclip:ViT-B-32")


def test_file_selection() -> None:
    files = [
        "open_clip_config.json",
        "open_clip_pytorch_model.bin",
        "open_clip_model.safetensors",
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "README.md",
    ]
    assert openclip.select_files(files) == [
        "open_clip_config.json",
        "open_clip_model.safetensors",
        "tokenizer.json",
    ]
    with pytest.raises(ModelNotFoundError, match="use hf:"):
        openclip.select_files(["config.json", "model.safetensors"])
    assert openclip._weight_candidates("") == [
        "open_clip_model.safetensors",
        "open_clip_pytorch_model.bin",
    ]
    assert openclip._weight_candidates("open_clip_pytorch_model.bin") == [
        "open_clip_pytorch_model.safetensors",
        "open_clip_pytorch_model.bin",
    ]


def test_folder_without_weights_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": OPENCLIP_MODEL_CFG}))
    with pytest.raises(ModelNotFoundError, match="no open_clip weights"):
        mmsearch.load_encoder(str(tmp_path))


def test_half_precision_path(folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What CUDA gets (float16 weights and inputs), run on the CPU: float32 unit rows out."""
    full = mmsearch.load_encoder(folder, device="cpu")
    monkeypatch.setattr(openclip, "pick_device", lambda device=None: ("cpu", torch.float16))
    half = mmsearch.load_encoder(folder)
    text, images = half.encode_text(TEXTS), half.encode_images(IMAGES)
    assert text.dtype == np.float32 and images.dtype == np.float32
    assert row_cosines(text, full.encode_text(TEXTS)).min() >= 0.999
    assert row_cosines(images, full.encode_images(IMAGES)).min() >= 0.999
