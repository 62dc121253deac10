"""Model specs resolve to backends: prefixes, local folders judged by their files, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmsearch.encoders import registry
from mmsearch.errors import ModelNotFoundError, UnknownBackendError


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hf:google/siglip2-base-patch16-256", ("hf", "google/siglip2-base-patch16-256")),
        ("openclip:ViT-B-32/laion2b_s34b_b79k", ("openclip", "ViT-B-32/laion2b_s34b_b79k")),
        ("openclip:hf-hub:laion/CLIP-ViT-B-32", ("openclip", "hf-hub:laion/CLIP-ViT-B-32")),
        ("onnx:/models/x", ("onnx", "/models/x")),
        ("openai/clip-vit-base-patch32", ("hf", "openai/clip-vit-base-patch32")),
    ],
)
def test_prefixes_and_bare_hub_ids(spec: str, expected: tuple[str, str]) -> None:
    assert registry.split_spec(spec) == expected


def test_unknown_prefix_is_rejected() -> None:
    with pytest.raises(UnknownBackendError, match="unknown model backend 'clip'"):
        registry.split_spec("clip:ViT-B-32")
    with pytest.raises(UnknownBackendError):
        registry.load_encoder("nope:thing")


@pytest.mark.parametrize("spec", ["./no-such-model", "/no/such/model/folder", "~/no-such-model-x"])
def test_missing_folder_is_model_not_found(spec: str) -> None:
    with pytest.raises(ModelNotFoundError, match="not found"):
        registry.split_spec(spec)


@pytest.mark.parametrize(
    ("files", "backend"),
    [
        (["config.json", "model.safetensors"], "hf"),
        (["open_clip_config.json", "open_clip_model.safetensors"], "openclip"),
        # A hub repository serving both libraries loads with open_clip only when asked.
        (["open_clip_config.json", "config.json"], "openclip"),
        (["mmsearch_onnx.json", "config.json"], "onnx"),
    ],
)
def test_local_folder_detection(tmp_path: Path, files: list[str], backend: str) -> None:
    for name in files:
        (tmp_path / name).write_text(json.dumps({}))
    assert registry.split_spec(str(tmp_path)) == (backend, str(tmp_path.resolve()))


def test_folder_without_model_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelNotFoundError, match="is not a model folder"):
        registry.split_spec(str(tmp_path))


def test_folder_spec_loads_the_detected_backend(tmp_path: Path) -> None:
    from tiny_models import make_tiny_hf_clip, make_tiny_openclip

    hf_folder = make_tiny_hf_clip(tmp_path, "clip")
    oc_folder = make_tiny_openclip(tmp_path)
    assert registry.load_encoder(hf_folder, device="cpu").info.backend == "hf"
    assert registry.load_encoder(oc_folder, device="cpu").info.backend == "openclip"
    # The same folder through an explicit prefix gives the same space.
    a = registry.load_encoder(hf_folder, device="cpu").info.fingerprint
    assert registry.load_encoder(f"hf:{hf_folder}", device="cpu").info.fingerprint == a


def test_a_trained_folder_is_identified_by_its_card_not_its_base(tmp_path: Path) -> None:
    """A fine-tuned folder keeps its base's config; its card's model_id must win, so a
    library built with the base refuses it (and vice versa)."""
    import shutil

    from tiny_models import make_tiny_hf_clip

    base = Path(make_tiny_hf_clip(tmp_path / "a", "clip"))
    tuned = tmp_path / "b" / base.name  # same folder name, other weights in real life
    shutil.copytree(base, tuned)
    (tuned / "mmsearch_card.json").write_text(json.dumps({"model_id": "mmsearch-trained/x-1"}))
    a = registry.load_encoder(str(base), device="cpu")
    b = registry.load_encoder(str(tuned), device="cpu")
    assert b.info.model_id == "mmsearch-trained/x-1"
    assert a.info.fingerprint != b.info.fingerprint
