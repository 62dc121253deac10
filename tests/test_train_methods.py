"""Each training method trains exactly what it should, on every backend with torch weights.

Tiny random-weight transformers CLIP and open_clip folders (tests/tiny_models.py) and a
scratch model; trainable parameters are identified by name. Adapters fold exactly
into the projections; LoRA merges back into a plain model.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from mmsearch.train import methods
from mmsearch.train.config import TrainingError
from mmsearch.train.model import ContrastiveModel
from mmsearch.train.towers import load_towers
from mmsearch.train.towers_base import Towers

from tiny_models import make_tiny_hf_clip, make_tiny_openclip
from torch_threads import one_torch_thread  # noqa: F401 (autouse: one torch thread)

CAPTIONS = ["a red circle on the left", "a big blue square above a small green star"]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("models")
    return {
        "hf": make_tiny_hf_clip(root, "clip"),
        "siglip": make_tiny_hf_clip(root, "siglip"),
        "openclip": make_tiny_openclip(root),
        "scratch": "scratch:tiny",
    }


_LOADED: dict[str, Towers] = {}


def _towers(model_dirs: dict[str, str], kind: str) -> Towers:
    """A fresh copy of the towers of ``kind`` (loaded once per module; methods change them)."""
    if kind not in _LOADED:
        _LOADED[kind] = load_towers(model_dirs[kind], captions=CAPTIONS)
    return copy.deepcopy(_LOADED[kind])


def _trainable(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


BACKENDS = ["hf", "openclip", "scratch"]


@pytest.mark.parametrize("kind", BACKENDS)
def test_full_trains_everything(model_dirs: dict[str, str], kind: str) -> None:
    model = methods.build(_towers(model_dirs, kind), "full", "clip", methods.MethodOptions())
    names = {n for n, _ in model.named_parameters()}
    assert _trainable(model) == names


@pytest.mark.parametrize("kind", BACKENDS)
def test_lit_locks_the_image_tower(model_dirs: dict[str, str], kind: str) -> None:
    towers = _towers(model_dirs, kind)
    model = methods.build(towers, "lit", "clip", methods.MethodOptions())
    parts = towers.parts
    for name, p in model.net.named_parameters():
        owner = parts.owner(name)
        if owner == "image":
            assert not p.requires_grad, name
        elif owner in ("text", "scale"):
            assert p.requires_grad, name
    # the locked tower stays in eval mode while the rest trains
    model.train()
    image_root = model.net.get_submodule(parts.image[0])
    assert not image_root.training
    assert model.net.get_submodule(parts.text[0]).training


@pytest.mark.parametrize("kind", BACKENDS)
def test_proj_trains_only_projections_and_temperature(
    model_dirs: dict[str, str], kind: str
) -> None:
    towers = _towers(model_dirs, kind)
    model = methods.build(towers, "proj", "clip", methods.MethodOptions())
    parts = towers.parts
    expected = {n for n, _ in model.net.named_parameters() if parts.is_projection(n)}
    assert expected, "the model has projections"
    assert _trainable(model) == {f"net.{n}" for n in expected} | {f"net.{parts.scale}"}


@pytest.mark.parametrize("kind", BACKENDS)
def test_adapter_trains_only_adapters_and_folds_exactly(
    model_dirs: dict[str, str], kind: str
) -> None:
    towers = _towers(model_dirs, kind)
    model = methods.build(towers, "adapter", "clip", methods.MethodOptions(adapter_rank=4))
    parts = towers.parts
    trainable = _trainable(model)
    assert trainable == {
        "image_adapter.down.weight", "image_adapter.up.weight",
        "text_adapter.down.weight", "text_adapter.up.weight", f"net.{parts.scale}",
    }  # fmt: skip
    with torch.no_grad():  # as if trained: the adapters now change the features
        for adapter in (model.image_adapter, model.text_adapter):
            assert adapter is not None
            adapter.up.weight.normal_(std=0.3)
    _finalize_keeps_features(model, towers)
    assert model.image_adapter is None and model.text_adapter is None


@pytest.mark.parametrize("kind", BACKENDS)
def test_lora_adds_peft_layers_and_merges_back(model_dirs: dict[str, str], kind: str) -> None:
    from peft.tuners.lora import LoraLayer

    towers = _towers(model_dirs, kind)
    targets = towers.lora_targets()
    model = methods.build(towers, "lora", "clip", methods.MethodOptions(lora_rank=2))
    wrapped = [n for n, m in model.net.named_modules() if isinstance(m, LoraLayer)]
    assert sorted(wrapped) == sorted(targets) and wrapped
    trainable = _trainable(model)
    assert trainable - {f"net.{towers.parts.scale}"}
    assert all("lora_" in n for n in trainable - {f"net.{towers.parts.scale}"})
    with torch.no_grad():
        for m in model.net.modules():
            if isinstance(m, LoraLayer):
                m.lora_B["default"].weight.normal_(std=0.2)
    _finalize_keeps_features(model, towers)
    assert not any(isinstance(m, LoraLayer) for m in model.net.modules())
    assert not any("lora_" in k or "base_layer" in k for k in model.net.state_dict())


def test_siglip_bias_trains_only_with_the_siglip_loss(model_dirs: dict[str, str]) -> None:
    clip = methods.build(_towers(model_dirs, "siglip"), "full", "clip", methods.MethodOptions())
    assert "net.logit_bias" not in _trainable(clip)
    sig = methods.build(_towers(model_dirs, "siglip"), "lit", "siglip", methods.MethodOptions())
    assert "net.logit_bias" in _trainable(sig)
    # a CLIP model trained with the SigLIP loss gets a bias of its own
    own = methods.build(_towers(model_dirs, "hf"), "proj", "siglip", methods.MethodOptions())
    assert "own_bias" in _trainable(own)


def test_adapter_needs_a_linear_projection(model_dirs: dict[str, str]) -> None:
    with pytest.raises(TrainingError, match="cannot be folded"):
        methods.build(_towers(model_dirs, "siglip"), "adapter", "clip", methods.MethodOptions())


def test_unknown_scratch_size_is_a_training_error() -> None:
    with pytest.raises(TrainingError, match="scratch:tiny"):
        load_towers("scratch:huge", captions=CAPTIONS)


def _inputs(towers: Towers) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    from PIL import Image

    pre = towers.preprocessor()
    images = [Image.new("RGB", (40, 40), c) for c in ("red", "blue")]
    pixels = torch.from_numpy(np.stack([pre(im) for im in images]))
    return pixels, towers.tokenizer()(CAPTIONS)


def _finalize_keeps_features(model: ContrastiveModel, towers: Towers) -> None:
    """``methods.finalize`` (folding adapters, merging LoRA) leaves the eval features as they were."""
    model.eval()
    pixels, text = _inputs(towers)
    with torch.no_grad():
        before = model.encode_image(pixels), model.encode_text(text)
        methods.finalize(model)
        after = model.encode_image(pixels), model.encode_text(text)
    for b, a in zip(before, after, strict=True):
        assert torch.allclose(b, a, atol=1e-5)


def test_towers_of_a_folder_are_those_of_its_backend(model_dirs: dict[str, str]) -> None:
    assert _towers(model_dirs, "hf").backend == "hf"
    assert _towers(model_dirs, "openclip").backend == "openclip"
    assert Path(model_dirs["openclip"]).is_dir()


def test_word_vocabulary_grows_with_new_caption_words(tmp_path: Path) -> None:
    from mmsearch.encoders.tiny import UNK

    first = load_towers("scratch:tiny", captions=CAPTIONS)
    first.export(tmp_path / "base", "test/base")
    n_before = first.model.text.embed.num_embeddings
    grown = load_towers(str(tmp_path / "base"), captions=["a magenta blob on the left"])
    embed = grown.model.text.embed
    assert embed.num_embeddings == n_before + 2  # "blob", "magenta"
    assert torch.equal(embed.weight[:n_before], first.model.text.embed.weight)
    ids = grown.tokenizer()(["a magenta blob"])["ids"]
    unk = grown.tokenizer_.index[UNK]  # type: ignore[attr-defined]
    assert unk not in ids.tolist()[0]
    grown.export(tmp_path / "grown", "test/grown")
    from mmsearch.encoders.registry import load_encoder

    enc = load_encoder(str(tmp_path / "grown"))
    assert "magenta" in enc.tokenizer.vocab  # type: ignore[attr-defined]
    assert enc.encode_text(["a magenta blob"]).shape == (1, enc.dim)
