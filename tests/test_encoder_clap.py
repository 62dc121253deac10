"""The CLAP audio–text encoder against transformers itself, on tiny random-weight checkpoints.

Also the spec resolution every audio/video/ASR loader shares (av_registry): a
folder of the wrong kind, a non-transformers spec, and the offline hub error.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import ClapModel, ClapProcessor

from mmsearch.encoders import clap
from mmsearch.encoders.av_registry import DEFAULT_AUDIO_MODEL, load_audio_encoder
from mmsearch.encoders.base import AudioTextEncoder
from mmsearch.errors import ModelNotFoundError, UnknownBackendError

from encoder_checks import (
    assert_close_rows,
    assert_matches_reference,
    fill_hub_cache,
    isolate_hub,
    load_half,
    offline_error,
)
from tiny_av_models import make_tiny_clap, tone
from tiny_models import row_cosines
from torch_threads import one_torch_thread  # noqa: F401 (autouse: one torch thread)

RATE = 8000  # the tiny checkpoints' sampling rate; their window is 1 s
TEXTS = ["the sound of a dog barking", "rain on a tin roof", "a car horn", "birds"]
CLIPS = [
    tone(0.3, RATE, 220.0, seed=1),
    tone(0.75, RATE, 440.0, seed=2),
    tone(1.0, RATE, 880.0, seed=3),
    tone(0.05, RATE, 1500.0, seed=4),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clap(tmp_path_factory.mktemp("clap") / "tiny-clap")


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clap(tmp_path_factory.mktemp("clap") / "tiny-clap-fused", fusion=True)


@pytest.fixture(scope="module")
def enc(folder: Path) -> clap.ClapEncoder:
    encoder = load_audio_encoder(str(folder), device="cpu")
    assert isinstance(encoder, clap.ClapEncoder)
    return encoder


def reference(folder: Path, texts: list[str], clips: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The model card's calls: processor + get_text_features / get_audio_features."""
    model = ClapModel.from_pretrained(folder).eval()
    processor = ClapProcessor.from_pretrained(folder)
    text_in = processor(text=texts, padding=True, return_tensors="pt")
    audio_in = processor(audio=clips, sampling_rate=RATE, return_tensors="pt")
    with torch.inference_mode():
        text = model.get_text_features(**text_in).pooler_output
        audio = model.get_audio_features(**audio_in).pooler_output
    return text.numpy(), audio.numpy()


def test_matches_transformers(enc: clap.ClapEncoder, folder: Path) -> None:
    ref_text, ref_audio = reference(folder, TEXTS, CLIPS)
    assert_matches_reference(enc.encode_text(TEXTS), ref_text, (len(TEXTS), enc.dim))
    assert_matches_reference(enc.encode_audio(CLIPS), ref_audio, (len(CLIPS), enc.dim))


def test_contract_and_description(enc: clap.ClapEncoder) -> None:
    assert isinstance(enc, AudioTextEncoder)
    assert enc.sample_rate == RATE and enc.window_seconds == 1.0
    assert enc.dim == 24 == enc.info.dim
    info = enc.info
    assert info.backend == "hf" and info.model_id == "tiny-clap"
    assert info.preprocessing["sampling_rate"] == RATE
    assert info.preprocessing["padding"] == "repeatpad"
    assert info.extra["model_type"] == "clap" and info.extra["fusion"] is False


def test_batching_matches_one_by_one(enc: clap.ClapEncoder) -> None:
    singles = np.concatenate([enc.encode_audio([c]) for c in CLIPS])
    np.testing.assert_allclose(enc.encode_audio(CLIPS, batch_size=3), singles, atol=1e-5)
    texts = np.concatenate([enc.encode_text([t]) for t in TEXTS])
    np.testing.assert_allclose(enc.encode_text(TEXTS, batch_size=3), texts, atol=1e-5)
    assert enc.encode_audio([]).shape == (0, enc.dim)
    assert enc.encode_text([]).shape == (0, enc.dim)


def test_long_clip_is_the_mean_of_its_windows(enc: clap.ClapEncoder) -> None:
    long = tone(2.5, RATE, 330.0, seed=5)
    assert clap.window_starts(long.size, RATE) == [0, RATE, long.size - RATE]
    windows = [long[:RATE], long[RATE : 2 * RATE], long[-RATE:]]
    expected = enc.encode_audio(windows).sum(axis=0)
    expected /= np.linalg.norm(expected)

    first = enc.encode_audio([long, CLIPS[0]], batch_size=2)
    again = enc.encode_audio([long])
    assert row_cosines(first[:1], expected[None]).min() >= 0.99999
    np.testing.assert_allclose(again[0], first[0], atol=1e-6)
    # Not just the first window: the later ones count.
    assert row_cosines(first[:1], enc.encode_audio(windows[:1])).min() < 0.9999


def test_window_starts() -> None:
    assert clap.window_starts(1, 10) == [0]
    assert clap.window_starts(10, 10) == [0]
    assert clap.window_starts(11, 10) == [0, 1]
    assert clap.window_starts(30, 10) == [0, 10, 20]
    assert clap.window_starts(35, 10) == [0, 10, 20, 25]


def test_fused_checkpoint_is_deterministic(fused: Path) -> None:
    """Fused CLAP marks a random clip of a batch "longer"; ours never does, so batches don't matter."""
    enc = load_audio_encoder(str(fused), device="cpu")
    assert enc.info.extra["fusion"] is True
    alone = enc.encode_audio([CLIPS[1]])
    in_batch = enc.encode_audio([CLIPS[0], CLIPS[1], CLIPS[2]])
    np.testing.assert_allclose(in_batch[1], alone[0], atol=1e-5)
    np.testing.assert_allclose(enc.encode_audio([CLIPS[1]]), alone, atol=1e-6)

    model = ClapModel.from_pretrained(fused).eval()
    features = ClapProcessor.from_pretrained(fused).feature_extractor(
        [CLIPS[1]], sampling_rate=RATE, return_tensors="pt"
    )
    with torch.inference_mode():
        ref = model.get_audio_features(
            input_features=features["input_features"],
            is_longer=torch.zeros((1, 1), dtype=torch.bool),
        ).pooler_output.numpy()
    assert row_cosines(alone, ref).min() >= 0.9999


def test_features_path_and_pickling(enc: clap.ClapEncoder) -> None:
    pre = enc.audio_preprocessor()
    clone = pickle.loads(pickle.dumps(pre))
    feats = np.stack([pre(c) for c in CLIPS])
    np.testing.assert_array_equal(np.stack([clone(c) for c in CLIPS]), feats)
    assert feats.dtype == np.float32 and feats.shape[:2] == (len(CLIPS), 1)
    np.testing.assert_allclose(enc.encode_audio_features(feats), enc.encode_audio(CLIPS), atol=1e-5)
    with pytest.raises(ValueError, match="mono window"):
        pre(np.zeros(RATE + 1, dtype=np.float32))


def test_bad_clips_are_refused(enc: clap.ClapEncoder) -> None:
    with pytest.raises(ValueError, match="clip 1"):
        enc.encode_audio([CLIPS[0], np.zeros(0, dtype=np.float32)])
    with pytest.raises(ValueError, match="mono"):
        enc.encode_audio([np.zeros((2, RATE), dtype=np.float32)])


def test_fingerprint_stable_and_distinct(
    enc: clap.ClapEncoder, folder: Path, fused: Path, tmp_path: Path
) -> None:
    again = load_audio_encoder(f"hf:{folder}", device="cpu")
    assert again.info.fingerprint == enc.info.fingerprint
    other_weights = make_tiny_clap(tmp_path / "tiny-clap-seed1", seed=1)
    other = load_audio_encoder(str(other_weights), device="cpu")
    assert other.info.fingerprint != enc.info.fingerprint
    assert np.abs(other.encode_text(TEXTS[:1]) - enc.encode_text(TEXTS[:1])).max() > 1e-3
    assert load_audio_encoder(str(fused), device="cpu").info.fingerprint != enc.info.fingerprint

    # Same folder name, other feature settings: another space.
    copy = tmp_path / "elsewhere" / "tiny-clap"
    shutil.copytree(folder, copy)
    config_path = copy / "processor_config.json"
    config = json.loads(config_path.read_text())
    config["feature_extractor"]["frequency_min"] = 120
    config_path.write_text(json.dumps(config))
    changed = load_audio_encoder(str(copy), device="cpu")
    assert changed.info.model_id == enc.info.model_id
    assert changed.info.fingerprint != enc.info.fingerprint
    assert load_audio_encoder(str(copy), model_id="laion/x").info.model_id == "laion/x"


def test_half_precision_path(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What CUDA gets (float16 weights and inputs), run on the CPU: float32 unit rows out."""
    full = load_audio_encoder(str(folder), device="cpu")
    half = load_half(monkeypatch, lambda: load_audio_encoder(str(folder)))
    assert_close_rows(half.encode_text(TEXTS), full.encode_text(TEXTS), 0.99)
    assert_close_rows(half.encode_audio(CLIPS), full.encode_audio(CLIPS), 0.99)


# ---- spec resolution shared by the audio, video and ASR loaders --------------------------------


def _config_folder(root: Path, model_type: str) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"model_type": model_type}))
    return root


@pytest.mark.parametrize(
    ("model_type", "says"),
    [
        ("whisper", "speech recognition model (Whisper): load it with load_recognizer"),
        ("xclip", "video–text model (X-CLIP): load it with load_video_encoder"),
        ("siglip", "image–text model (SigLIP / SigLIP 2): load it with load_encoder"),
        ("bert", "'bert' model"),
    ],
)
def test_folder_of_another_kind_is_a_clear_error(
    tmp_path: Path, model_type: str, says: str
) -> None:
    folder = _config_folder(tmp_path / "m", model_type)
    with pytest.raises(ModelNotFoundError, match="needs a 'clap' checkpoint") as info:
        load_audio_encoder(str(folder))
    assert says in str(info.value)


def test_other_specs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="loads through transformers"):
        load_audio_encoder("openclip:ViT-B-32")
    with pytest.raises(UnknownBackendError):
        load_audio_encoder("nope:thing")
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        load_audio_encoder(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="neither a model folder nor a hub id"):
        load_audio_encoder("hf:not a hub id")


@pytest.mark.parametrize("spec", [None, DEFAULT_AUDIO_MODEL, "laion/clap-htsat-unfused"])
def test_offline_without_cache_is_one_clear_error(
    spec: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    msg = offline_error(monkeypatch, tmp_path / "hub-cache", lambda: load_audio_encoder(spec))
    assert "laion/clap-htsat-unfused" in msg and "--model /path/to/folder" in msg


def test_cached_hub_copy_loads_offline(
    folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fill_hub_cache(isolate_hub(monkeypatch, tmp_path / "hub-cache"), "tiny-org/tiny-clap", folder)
    enc = load_audio_encoder("hf:tiny-org/tiny-clap", device="cpu")
    assert enc.info.model_id == "tiny-org/tiny-clap"
    direct = load_audio_encoder(str(folder), device="cpu")
    np.testing.assert_allclose(
        enc.encode_audio(CLIPS[:2]), direct.encode_audio(CLIPS[:2]), atol=1e-6
    )
