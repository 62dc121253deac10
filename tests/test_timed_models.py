"""Video and audio through the real model loaders (tiny random-weight CLAP, X-CLIP, Whisper).

Random weights know nothing, but identical inputs still give identical vectors: an
excerpt that is exactly one window of a recording must find that recording at that
window's time, through the same code path real checkpoints take (folders given on
the command line like hub ids).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmsearch.cli.main import main

from media_gen import make_audio, make_video
from tiny_av_models import make_tiny_clap, make_tiny_whisper, make_tiny_xclip, one_torch_thread


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    with one_torch_thread():
        yield


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:  # type: ignore[type-arg]
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_cli_audio_and_speech_models_from_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clap = make_tiny_clap(tmp_path / "clap")
    whisper = make_tiny_whisper(tmp_path / "whisper")
    media = tmp_path / "media"
    media.mkdir()
    # The tiny CLAP hears 1 s windows at 8 kHz.
    make_audio(media / "walk.wav", [("noise", 3.0), (880.0, 3.0)], sample_rate=8000)
    make_audio(media / "other.flac", [(220.0, 4.0)], sample_rate=8000)
    lib = str(tmp_path / "lib")
    report = _run(
        capsys,
        "index", str(media), "--library", lib, "--model", "builtin:demo",
        "--audio-model", str(clap), "--asr-model", str(whisper), "--audio-hop", "1",
    )  # fmt: skip
    assert report["added"] == 2, report
    info = _run(capsys, "info", "--library", lib)
    assert info["spaces"]["audio"]["model"] == str(clap) and info["asr_model"] == str(whisper)
    # The window of walk.wav at 3-4 s, made again sample for sample, finds walk.wav there
    # (the tone's later windows, phase-shifted, score nearly as high and join the moment).
    excerpt = make_audio(tmp_path / "q.wav", [(880.0, 1.0)], sample_rate=8000)
    out = _run(capsys, "search", "--audio", str(excerpt), "--library", lib, "-k", "2")
    top = out["hits"][0]
    assert top["path"].endswith("walk.wav") and top["modality"] == "audio"
    seg = top["segments"][0]
    assert seg["t_start"] == pytest.approx(3.0, abs=0.05)
    assert 4.0 - 0.05 <= seg["t_end"] <= 6.0 + 0.05
    # The models are remembered: a later index run needs no options again.
    make_audio(media / "late.wav", [(440.0, 2.0)], sample_rate=8000)
    again = _run(capsys, "index", str(media), "--library", lib)
    assert again["added"] == 1 and again["unchanged"] == 2


def test_video_space_with_xclip(tmp_path: Path) -> None:
    from mmsearch.library import Library

    from fakes import ColourEncoder

    xclip = make_tiny_xclip(tmp_path / "xclip", num_frames=4)
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "a.mp4", [("red", 6.0), ("blue", 6.0)], size=(64, 48))
    with Library.open(tmp_path / "lib", encoder=ColourEncoder(), video_model=str(xclip)) as lib:
        assert lib.add([media]).added == 1
        clips = [s for s in lib.catalog.item_segments(1) if s.kind == "clip"]
        assert len(clips) >= 2 and all(c.t_end > c.t_start for c in clips)
        hits = lib.search("a red scene", modality="video")
        kinds = {s.kind for h in hits for s in h.segments}
        assert "clip" in kinds  # the X-CLIP space answered
        # A video clip query is embedded by both spaces (frames pooled; X-CLIP clip).
        both = lib.search(video=str(media / "a.mp4"), k=1)
        assert both[0].path.endswith("a.mp4")
        assert lib.info()["spaces"]["video"]["dim"] == lib.video_encoder().dim
