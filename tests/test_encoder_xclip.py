"""The X-CLIP video–text encoder against transformers itself, on tiny random-weight checkpoints."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoProcessor, XCLIPModel

from mmsearch.encoders import xclip
from mmsearch.encoders.av_registry import DEFAULT_VIDEO_MODEL, load_video_encoder
from mmsearch.encoders.base import VideoTextEncoder
from mmsearch.errors import ModelNotFoundError

from encoder_checks import (
    assert_close_rows,
    assert_matches_reference,
    load_half,
    offline_error,
)
from tiny_av_models import make_frames, make_tiny_clap, make_tiny_xclip
from tiny_models import row_cosines
from torch_threads import one_torch_thread  # noqa: F401 (autouse: one torch thread)

TEXTS = ["a yellow square moving right", "a person cooking", "the city at night", "dog"]
CLIPS = [make_frames(8, seed=s) for s in range(3)]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xclip")


@pytest.fixture(scope="module")
def folder(root: Path) -> Path:
    return make_tiny_xclip(root / "tiny-xclip")


@pytest.fixture(scope="module")
def enc(folder: Path) -> xclip.XClipEncoder:
    encoder = load_video_encoder(str(folder), device="cpu")
    assert isinstance(encoder, xclip.XClipEncoder)
    return encoder


def reference(folder: Path, texts: list[str], clips: list[list]) -> tuple[np.ndarray, np.ndarray]:
    """The model card's calls: processor + get_text_features / get_video_features."""
    model = XCLIPModel.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    text_in = processor(text=texts, padding=True, return_tensors="pt")
    videos = []
    for frames in clips:
        pixels = processor(videos=frames, return_tensors="pt")["pixel_values"]
        # transformers 5 flattens a clip's frames to (T, C, H, W) for image processors.
        videos.append(pixels.reshape(1, len(frames), *pixels.shape[-3:]))
    with torch.inference_mode():
        text = model.get_text_features(**text_in).pooler_output
        video = model.get_video_features(pixel_values=torch.cat(videos)).pooler_output
    return text.numpy(), video.numpy()


@pytest.mark.parametrize("image_processor", ["videomae", "clip"])
def test_matches_transformers(image_processor: str, root: Path, folder: Path) -> None:
    if image_processor != "videomae":
        folder = make_tiny_xclip(root / f"tiny-xclip-{image_processor}", image_processor="clip")
    enc = load_video_encoder(str(folder), device="cpu")
    ref_text, ref_video = reference(folder, TEXTS, CLIPS)
    assert_matches_reference(enc.encode_text(TEXTS), ref_text, (len(TEXTS), enc.dim))
    assert_matches_reference(enc.encode_videos(CLIPS), ref_video, (len(CLIPS), enc.dim))


def test_text_is_not_conditioned_on_a_video(enc: xclip.XClipEncoder, folder: Path) -> None:
    """X-CLIP's forward() rewrites text embeddings per video; an index needs independent ones."""
    model = XCLIPModel.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    inputs = processor(text=TEXTS[:2], padding=True, return_tensors="pt")
    pixels = processor(videos=CLIPS[0], return_tensors="pt")["pixel_values"].reshape(
        1, 8, 3, 32, 32
    )
    with torch.inference_mode():
        conditioned = model(**inputs, pixel_values=pixels).text_embeds[0].numpy()
    ours = enc.encode_text(TEXTS[:2])
    assert row_cosines(ours, conditioned).max() < 0.9999
    np.testing.assert_allclose(enc.encode_text(TEXTS[:2]), ours)


def test_clips_are_resampled_evenly(enc: xclip.XClipEncoder) -> None:
    assert xclip.frame_indices(16, 8) == [1, 3, 5, 7, 9, 11, 13, 15]
    assert xclip.frame_indices(8, 8) == list(range(8))
    assert xclip.frame_indices(3, 8) == [0, 0, 0, 1, 1, 2, 2, 2]
    assert xclip.frame_indices(1, 8) == [0] * 8

    long = make_frames(20, seed=7)
    short = make_frames(3, seed=8)
    got = enc.encode_videos([long, short])
    chosen = [
        [long[i] for i in xclip.frame_indices(20, 8)],
        [short[i] for i in xclip.frame_indices(3, 8)],
    ]
    np.testing.assert_allclose(got, enc.encode_videos(chosen), atol=1e-6)
    # Not simply the first eight frames.
    assert np.abs(got[0] - enc.encode_videos([long[:8]])[0]).max() > 1e-3


def test_num_frames_comes_from_the_config(root: Path) -> None:
    enc = load_video_encoder(
        str(make_tiny_xclip(root / "tiny-xclip-4", num_frames=4)), device="cpu"
    )
    assert enc.num_frames == 4 and enc.info.preprocessing["num_frames"] == 4
    assert enc.video_preprocessor()(make_frames(9)).shape == (4, 3, 32, 32)
    assert enc.encode_videos([make_frames(9), make_frames(2)]).shape == (2, enc.dim)


def test_contract_and_description(enc: xclip.XClipEncoder) -> None:
    assert isinstance(enc, VideoTextEncoder)
    assert enc.num_frames == 8 and enc.dim == 24 == enc.info.dim
    info = enc.info
    assert info.backend == "hf" and info.model_id == "tiny-xclip"
    pre = info.preprocessing
    assert pre["processor"] == "VideoMAEImageProcessor"
    assert pre["crop_size"] == {"height": 32, "width": 32}
    assert pre["image_mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert info.extra["model_type"] == "xclip"


def test_batching_and_pixels_path(enc: xclip.XClipEncoder) -> None:
    singles = np.concatenate([enc.encode_videos([c]) for c in CLIPS])
    np.testing.assert_allclose(enc.encode_videos(CLIPS, batch_size=2), singles, atol=1e-5)
    texts = np.concatenate([enc.encode_text([t]) for t in TEXTS])
    np.testing.assert_allclose(enc.encode_text(TEXTS, batch_size=3), texts, atol=1e-5)

    pre = enc.video_preprocessor()
    clone = pickle.loads(pickle.dumps(pre))
    pixels = np.stack([pre(c) for c in CLIPS])
    assert pixels.dtype == np.float32 and pixels.shape == (3, 8, 3, 32, 32)
    np.testing.assert_array_equal(np.stack([clone(c) for c in CLIPS]), pixels)
    np.testing.assert_allclose(enc.encode_video_pixels(pixels), singles, atol=1e-5)

    assert enc.encode_videos([]).shape == (0, enc.dim)
    assert enc.encode_text([]).shape == (0, enc.dim)
    with pytest.raises(ValueError, match="at least one frame"):
        enc.encode_videos([[]])
    # Frames in another mode are converted to RGB.
    grey = [f.convert("L") for f in CLIPS[0]]
    assert enc.encode_videos([grey]).shape == (1, enc.dim)


def test_fingerprint_stable_and_distinct(enc: xclip.XClipEncoder, folder: Path, root: Path) -> None:
    assert load_video_encoder(f"hf:{folder}", device="cpu").info.fingerprint == enc.info.fingerprint
    other = load_video_encoder(
        str(make_tiny_xclip(root / "tiny-xclip-seed1", seed=1)), device="cpu"
    )
    assert other.info.fingerprint != enc.info.fingerprint
    assert np.abs(other.encode_videos(CLIPS[:1]) - enc.encode_videos(CLIPS[:1])).max() > 1e-3


def test_half_precision_path(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = load_video_encoder(str(folder), device="cpu")
    half = load_half(monkeypatch, lambda: load_video_encoder(str(folder)))
    assert_close_rows(half.encode_text(TEXTS), full.encode_text(TEXTS), 0.99)
    assert_close_rows(half.encode_videos(CLIPS), full.encode_videos(CLIPS), 0.99)


def test_audio_model_is_refused(root: Path) -> None:
    folder = make_tiny_clap(root / "a-clap")
    with pytest.raises(ModelNotFoundError, match="audio–text model .* load_audio_encoder"):
        load_video_encoder(str(folder))


def test_offline_without_cache_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert DEFAULT_VIDEO_MODEL in offline_error(monkeypatch, tmp_path / "hub", load_video_encoder)
