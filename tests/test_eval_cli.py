"""``mmsearch datasets synthetic`` + ``mmsearch eval`` end to end, and the runner on every modality."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.cli.main import main
from mmsearch.encoders.base import EncoderInfo
from mmsearch.encoders.registry import load_encoder
from mmsearch.eval.datasets import read_pairs
from mmsearch.eval.plot import plot_recall_curves
from mmsearch.eval.report import format_results
from mmsearch.eval.runner import EvalResult, evaluate_model
from mmsearch.types import Vectors, l2_normalize

from fakes import ColourEncoder, solid
from media_gen import make_audio, make_video
from tiny_models import make_tiny_hf_clip


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


@pytest.fixture(scope="module")
def synth40(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth40")
    assert (
        main(["datasets", "synthetic", "--out", str(out), "--n", "40", "--seed", "5", "--holdout"])
        == 0
    )
    return out / "pairs.jsonl"


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_tiny_hf_clip(tmp_path_factory.mktemp("models"), "clip")


def test_synthetic_dataset_files(synth40: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [json.loads(x) for x in synth40.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 40
    assert all(row["split"] == "test" for row in lines)  # --holdout: held-out combinations only
    row = lines[0]
    assert row["media"] == "images/000000.png" and row["lang"] == "en"
    assert {"caption", "caption_en", "caption_zh", "shape", "colour", "count"} <= set(row)
    with Image.open(synth40.parent / row["media"]) as im:
        assert im.size == (64, 64)
    # the same seed writes the same file; both languages give two captions per image
    again = synth40.parent.parent / "again"
    both = run_json(
        capsys, "datasets", "synthetic", "--out", str(again), "--n", "40", "--seed", "5",
        "--holdout", "--lang", "both",
    )  # fmt: skip
    assert both["images"] == 40 and both["pairs_written"] == 80 and both["test_images"] == 40
    rows2 = [json.loads(x) for x in Path(both["pairs"]).read_text(encoding="utf-8").splitlines()]
    assert [r["caption_en"] for r in rows2[::2]] == [r["caption_en"] for r in lines]
    assert [r["lang"] for r in rows2[:2]] == ["en", "zh"]
    ps = read_pairs(both["pairs"])
    assert ps.n_media == 40 and ps.n_captions == 80


def test_eval_builtin_demo_json_and_plot(
    synth40: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "plots" / "out.png"
    res = run_json(
        capsys, "eval", "--data", str(synth40), "--model", "builtin:demo", "--plot", str(png),
        "--k", "1,5,10",
    )  # fmt: skip
    assert res["dataset"]["n_media"] == 40 and res["dataset"]["format"] == "jsonl"
    (r,) = res["results"]
    m = r["metrics"]
    chance5 = 5 / 40
    assert m["t2m_R@5"] > 4 * chance5 and m["m2t_R@5"] > 4 * chance5
    assert m["t2m_R@1"] <= m["t2m_R@5"] <= m["t2m_R@10"] <= 1.0
    assert 1.0 <= m["t2m_median_rank"] <= 40 and m["t2m_n_queries"] == 40
    assert r["model"] == "builtin:demo" and r["n_captions"] == 40
    assert r["positives"] == "match_key" and 0 < res["dataset"]["match_keys"] <= 40
    strict = run_json(
        capsys, "eval", "--data", str(synth40), "--model", "builtin:demo", "--strict-pairs"
    )
    sm = strict["results"][0]["metrics"]
    assert strict["results"][0]["positives"] == "own media"
    assert sm["t2m_R@1"] <= m["t2m_R@1"] and sm["t2m_R@5"] > 4 * chance5
    assert res["plot"] == str(png)
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (800, 500)
        assert len(set(im.convert("L").getdata())) > 10  # something was drawn
    # the table for people
    assert main(["eval", "--data", str(synth40), "--model", "builtin:demo", "--limit", "10"]) == 0
    out = capsys.readouterr().out
    assert "text→image" in out and "image→text" in out and "R@10" in out
    assert "dataset pairs:test: 10 image files, 10 captions" in out


def test_eval_cli_errors(synth40: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (
            ["--data", str(tmp_path / "none.jsonl"), "--model", "builtin:demo"],
            "pairs file not found",
        ),
        (["--data", str(synth40)], "give a model"),
        (["--data", str(synth40), "--audio-model", "x"], "--audio-model is for audio datasets"),
        (
            ["--data", str(synth40), "--model", "builtin:demo", "--split", "train"],
            "no pairs in split",
        ),
        (["--data", str(synth40), "--model", "nosuch:thing"], "unknown model backend"),
    ]
    for argv, message in cases:
        assert main(["eval", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("mmsearch: error:") and message in err and "\n" not in err
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--data", str(synth40), "--model", "builtin:demo", "--k", "0,5"])
    assert exc.value.code == 2


def test_datasets_info(synth40: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = run_json(capsys, "datasets", "info", str(synth40))
    assert info["format"] == "jsonl" and info["n_media"] == 40 and info["splits"] == {"test": 40}
    assert info["captions_per_media"] == {"min": 1, "max": 1}


def test_eval_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from mmsearch.cli.main import main\n"
        "for argv in (['eval', '--help'], ['datasets', 'synthetic', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'matplotlib', 'av') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# ----------------------------------------------------------------------------- the runner


def _colour_pairs(folder: Path, colours: Sequence[str], corrupt: bool = False) -> Path:
    rows = []
    for c in colours:
        solid(c).save(folder / f"{c}.png")
        rows += [
            {"media": f"{c}.png", "caption": f"a {c} square"},
            {"image": f"{c}.png", "text": c},
        ]
    if corrupt:
        (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
        rows.append({"media": "broken.png", "caption": "a red square"})
    f = folder / "pairs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


def test_runner_images_drops_undecodable_files(tmp_path: Path) -> None:
    f = _colour_pairs(tmp_path, ["red", "green", "blue", "yellow"], corrupt=True)
    pairs = read_pairs(f)
    assert pairs.n_media == 5 and pairs.n_captions == 9
    result = evaluate_model(pairs, ColourEncoder(), ks=(1, 2), batch_size=2)
    assert result.n_media == 4 and result.n_captions == 8
    assert [Path(p).name for p, _ in result.dropped] == ["broken.png"]
    m = result.metrics
    assert m["t2m_R@1"] == 1.0 and m["m2t_R@1"] == 1.0 and m["m2t_mAP@2"] == 1.0
    d = result.to_dict()
    assert d["dropped"][0]["reason"] and d["metrics"]["t2m_R@1"] == 1.0
    assert result.recall_curve("t2m", [1, 3]) == [1.0, 1.0]


def test_runner_tiny_random_clip(tmp_path: Path, tiny_clip: str) -> None:
    from mmsearch.datasets.synthetic import generate

    folder = tmp_path / "data"
    folder.mkdir()
    rows = []
    for i, s in enumerate(generate(12, seed=1)):
        s.image.save(folder / f"{i}.png")
        rows.append({"media": f"{i}.png", "caption": s.caption_en})
    (folder / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    encoder = load_encoder(tiny_clip)
    result = evaluate_model(read_pairs(folder / "pairs.jsonl"), encoder, ks=(1, 5, 10))
    assert result.n_media == 12 and result.model == encoder.info.spec
    for d in ("t2m", "m2t"):
        m = result.metrics
        assert 0.0 <= m[f"{d}_R@1"] <= m[f"{d}_R@5"] <= m[f"{d}_R@10"] <= 1.0
        assert 1.0 <= m[f"{d}_median_rank"] <= 12 and 1.0 <= m[f"{d}_mean_rank"] <= 12
        assert 0.0 <= m[f"{d}_mAP@10"] <= 1.0 and 0.0 <= m[f"{d}_nDCG@10"] <= 1.0
    assert result.timings["media_s"] >= 0 and result.seconds > 0


class FrameColourVideoEncoder(ColourEncoder):
    """A video–text fake: a clip's vector is the colour histogram of all its frames."""

    def encode_videos(
        self, clips: Sequence[Sequence[Image.Image]], batch_size: int | None = None
    ) -> Vectors:
        self.clip_lengths = [len(c) for c in clips]
        return l2_normalize(np.stack([self.encode_images(list(c)).sum(0) for c in clips]))


def test_runner_video_frames_mean_pooled_and_video_encoder(tmp_path: Path) -> None:
    rows = []
    for colour in ("red", "green", "blue"):
        make_video(tmp_path / f"{colour}.mp4", [(colour, 2.0)], fps=5, moving_square=False)
        rows.append({"video": f"{colour}.mp4", "caption": f"something {colour}"})
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    rows.append({"video": "bad.mp4", "caption": "something red"})
    (tmp_path / "v.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = read_pairs(tmp_path / "v.jsonl")
    assert pairs.modality == "video"
    image_text = evaluate_model(pairs, ColourEncoder(), ks=(1,))
    assert image_text.metrics["t2m_R@1"] == 1.0 and image_text.metrics["m2t_R@1"] == 1.0
    assert [Path(p).name for p, _ in image_text.dropped] == ["bad.mp4"]
    video_text = FrameColourVideoEncoder()
    result = evaluate_model(pairs, video_text, ks=(1,))
    assert result.metrics["t2m_R@1"] == 1.0
    assert video_text.clip_lengths and 1 <= video_text.clip_lengths[0] <= 16


class ToneEncoder:
    """An audio–text fake: low/mid/high pitch <-> the words "low", "mid", "high"."""

    info = EncoderInfo(spec="test:tone", backend="test", model_id="test/tone", dim=3)
    dim = 3
    sample_rate = 16000
    window_seconds = 1.0

    def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors:
        words = ("low", "mid", "high")
        return l2_normalize(
            np.array([[float(w in t.split()) + 0.01 for w in words] for t in texts])
        )

    def encode_audio(self, clips: Sequence[np.ndarray], batch_size: int | None = None) -> Vectors:
        self.window_sizes = [len(c) for c in clips]
        out = []
        for c in clips:
            freq = np.argmax(np.abs(np.fft.rfft(c))) * self.sample_rate / len(c)
            out.append([freq < 400, 400 <= freq < 1000, freq >= 1000])
        return l2_normalize(np.array(out, dtype=np.float32) + 0.01)


def test_runner_audio_windows(tmp_path: Path) -> None:
    rows = []
    for name, freq in (("low", 220.0), ("mid", 660.0), ("high", 1760.0)):
        make_audio(tmp_path / f"{name}.wav", [(freq, 2.5)])
        rows.append({"audio": f"{name}.wav", "caption": f"a {name} tone"})
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    encoder = ToneEncoder()
    result = evaluate_model(read_pairs(tmp_path / "a.jsonl"), encoder, ks=(1,))
    assert result.modality == "audio"
    assert result.metrics["t2m_R@1"] == 1.0 and result.metrics["m2t_R@1"] == 1.0
    assert encoder.window_sizes == [16000, 16000]  # 2.5 s: two 1 s windows, the 0.5 s tail dropped
    # an image-text model cannot embed audio
    from mmsearch.eval.runner import EvalError

    with pytest.raises(EvalError, match="cannot embed audio"):
        evaluate_model(read_pairs(tmp_path / "a.jsonl"), ColourEncoder())


def test_plot_and_table_for_several_models(tmp_path: Path) -> None:
    f = _colour_pairs(tmp_path, ["red", "green", "blue", "yellow", "purple", "orange"])
    pairs = read_pairs(f)
    good = evaluate_model(pairs, ColourEncoder())
    rng = np.random.default_rng(0)

    class Noise(ColourEncoder):
        def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors:
            return l2_normalize(rng.normal(size=(len(texts), 8)))

    bad = evaluate_model(pairs, Noise(model_id="noise"))
    bad.model = "noise"
    png = plot_recall_curves([good, bad], tmp_path / "curves.png", ks=(1, 2, 5, 10, 20, 50))
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (800, 500)
    table = format_results([good, bad])
    assert table.count("text→image") == 2 and "noise" in table and "100.0" in table
    empty = EvalResult("m", "d", "image", 1, 1, {}, 0.0)
    assert "—" in format_results([empty])


def test_eval_cli_video_and_audio_models(
    tmp_path: Path, tiny_clip: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tiny_av_models import make_tiny_clap, make_tiny_xclip

    rows = []
    for colour in ("red", "green", "blue"):
        make_video(tmp_path / f"{colour}.mp4", [(colour, 1.0), ("white", 1.0)], fps=4)
        rows.append({"video": f"{colour}.mp4", "caption": f"a {colour} screen"})
    (tmp_path / "v.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    xclip = make_tiny_xclip(tmp_path / "xclip")
    clip = tiny_clip
    res = run_json(
        capsys, "eval", "--data", str(tmp_path / "v.jsonl"), "--model", clip,
        "--video-model", str(xclip), "--max-frames", "4",
    )  # fmt: skip
    assert [r["modality"] for r in res["results"]] == ["video", "video"]
    for r in res["results"]:
        assert r["n_media"] == 3 and 0 <= r["metrics"]["t2m_R@1"] <= 1 and not r["dropped"]

    rows = []
    for i, freq in enumerate((300.0, 900.0, 2000.0)):
        make_audio(tmp_path / f"{i}.flac", [(freq, 1.5)], sample_rate=8000)
        rows.append({"audio": f"{i}.flac", "caption": f"tone number {i}"})
    (tmp_path / "a.csv").write_text(
        "audio,caption\n" + "".join(f"{r['audio']},{r['caption']}\n" for r in rows)
    )
    clap = make_tiny_clap(tmp_path / "clap")
    res = run_json(capsys, "eval", "--data", str(tmp_path / "a.csv"), "--audio-model", str(clap))
    (r,) = res["results"]
    assert r["modality"] == "audio" and r["n_media"] == 3 and r["n_captions"] == 3
    assert 1 <= r["metrics"]["m2t_mean_rank"] <= 3
    # an image-text model is refused for audio with one clear line
    assert main(["eval", "--data", str(tmp_path / "a.csv"), "--audio-model", clip]) == 2
    assert "image–text model" in capsys.readouterr().err
