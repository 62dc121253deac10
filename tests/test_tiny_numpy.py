"""The tiny model's numpy towers against its torch module, and how the encoder picks one.

The numpy towers (mmsearch.encoders.tiny_numpy) let a search with builtin:demo run
without importing torch; they must give the torch module's embeddings (cosine >= 0.9999)
on the shipped demo model and on random models of other shapes, built here.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mmsearch
from mmsearch.datasets import synthetic as syn
from mmsearch.encoders import tiny
from mmsearch.encoders.builtin import model_dir
from mmsearch.encoders.tiny_numpy import CnnImage, GruText, erf, gelu
from mmsearch.errors import ModelNotFoundError

TEXTS = [
    "a red circle left of a blue square",
    "a blue square left of a red circle",
    "一个红色的圆形在蓝色正方形的左边",
    "zzz words it never saw",
    "",
    " ".join(["big"] * 60),  # longer than the context: truncated
]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def _pixels(config: tiny.TinyConfig, n: int) -> np.ndarray:
    pre = tiny.TinyPreprocessor(config.image_size, config.mean, config.std)
    images = [s.image for s in syn.generate(n, seed=3, pair_prob=0.5, size=config.image_size)]
    return np.stack([pre(im) for im in images])


def _torch_features(model: torch.nn.Module, ids: np.ndarray, pixels: np.ndarray) -> tuple:
    with torch.inference_mode():
        text = model.text(torch.from_numpy(ids)).numpy()
        image = model.visual(torch.from_numpy(pixels)).numpy()
    return text, image


def test_erf_and_gelu_match_the_exact_functions() -> None:
    x = np.linspace(-7, 7, 20001, dtype=np.float32)
    want_erf = np.array([math.erf(v) for v in x.astype(np.float64)])
    want_gelu = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    assert np.abs(erf(x) - want_erf).max() < 1e-6
    assert np.abs(gelu(x) - want_gelu).max() < 1e-6
    torch_gelu = torch.nn.GELU()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(gelu(x), torch_gelu, atol=2e-6)


def test_demo_model_towers_match_torch() -> None:
    read = tiny.read_folder(model_dir("demo"))
    model = tiny.torch_model(read.config, read.weights)
    ids = read.tokenizer.encode(TEXTS)
    pixels = _pixels(read.config, 24)
    want_text, want_image = _torch_features(model, ids, pixels)
    got_text = GruText(read.weights, read.config)(ids)
    got_image = CnnImage(read.weights, read.config)(pixels)
    assert got_text.dtype == np.float32 and got_image.dtype == np.float32
    assert _cos(got_text, want_text).min() >= 0.9999
    assert _cos(got_image, want_image).min() >= 0.9999
    assert np.abs(got_text - want_text).max() < 1e-3  # the same vectors, not just directions


@pytest.mark.parametrize(
    "shape",
    [
        {"text_layers": 2, "stem_stride": 1, "channels": (8, 16), "image_size": 32},
        {"text_layers": 1, "stem_stride": 2, "channels": (8, 16, 24, 32), "image_size": 64},
    ],
)
def test_random_models_of_other_shapes_match_torch(shape: dict) -> None:
    tok = tiny.TinyTokenizer.build(syn.vocabulary_texts(), context_length=16)
    cfg = tiny.TinyConfig(
        model_id="test/np", embed_dim=24, vocab_size=len(tok), text_width=20, text_hidden=28,
        context_length=16, **shape,
    )  # fmt: skip
    torch.manual_seed(1)
    model = tiny.build_model(cfg).eval()
    for module in model.modules():  # non-trivial BatchNorm statistics, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    ids = tok.encode(TEXTS)
    pixels = _pixels(cfg, 10)
    want_text, want_image = _torch_features(model, ids, pixels)
    assert _cos(GruText(weights, cfg)(ids), want_text).min() >= 0.9999
    assert _cos(CnnImage(weights, cfg)(pixels), want_image).min() >= 0.9999


def test_both_engines_give_the_same_search_vectors() -> None:
    fast = mmsearch.load_encoder("builtin:demo", engine="numpy")
    ref = mmsearch.load_encoder("builtin:demo", engine="torch")
    assert fast.engine == "numpy" and ref.engine == "torch"
    assert fast.info.fingerprint == ref.info.fingerprint
    images = [s.image for s in syn.generate(6, seed=5, size=64)]
    assert _cos(fast.encode_text(TEXTS), ref.encode_text(TEXTS)).min() >= 0.9999
    assert _cos(fast.encode_images(images), ref.encode_images(images)).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(fast.encode_text(TEXTS), axis=1), 1.0, atol=1e-5)
    assert fast.encode_text([]).shape == (0, 128)
    assert fast.encode_pixels(np.zeros((0, 3, 64, 64), np.float32)).shape == (0, 128)


def test_engine_choice(tmp_path: Path) -> None:
    # torch is imported in this process: "auto" takes it (its import is paid already)
    assert mmsearch.load_encoder("builtin:demo").engine == "torch"
    with pytest.raises(ModelNotFoundError, match="unknown tiny model engine"):
        mmsearch.load_encoder("builtin:demo", engine="jax")
    tok = tiny.TinyTokenizer.build(["a red circle"], context_length=8)
    cfg = tiny.TinyConfig(model_id="t/tr", embed_dim=8, image_size=32, channels=(4, 8),
                          vocab_size=len(tok), text_arch="transformer", text_width=8,
                          text_heads=2)  # fmt: skip
    tiny.save_model(tiny.build_model(cfg), tok, tmp_path, dtype="float32")
    with pytest.raises(ModelNotFoundError, match="torch only"):
        mmsearch.load_encoder(str(tmp_path), engine="numpy")
    assert mmsearch.load_encoder(str(tmp_path)).engine == "torch"


def test_handing_out_the_module_makes_the_encoder_follow_it() -> None:
    enc = mmsearch.load_encoder("builtin:demo", engine="numpy")
    model = enc.model  # what fine-tuning does: it trains this module in place
    assert enc.engine == "torch"
    with torch.no_grad():
        model.text.proj.weight.mul_(-1.0)
    ref = mmsearch.load_encoder("builtin:demo", engine="numpy")
    assert _cos(enc.encode_text(TEXTS[:2]), ref.encode_text(TEXTS[:2])).max() < -0.999


def test_auto_engine_without_torch_never_imports_it() -> None:
    code = (
        "import sys, numpy as np, mmsearch; "
        "from mmsearch.datasets import synthetic as syn; "
        "enc = mmsearch.load_encoder('builtin:demo'); "
        "t = enc.encode_text(['a red circle']); "
        "i = enc.encode_images([s.image for s in syn.generate(2, seed=1, size=64)]); "
        "assert enc.engine == 'numpy', enc.engine; "
        "assert t.shape == (1, 128) and i.shape == (2, 128); "
        "assert 'torch' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
