"""The command line end to end, with the shipped offline model (builtin:demo)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmsearch.cli.main import main
from mmsearch.datasets.synthetic import generate


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


@pytest.fixture
def shapes(tmp_path: Path) -> Path:
    folder = tmp_path / "shapes"
    folder.mkdir()
    for i, s in enumerate(generate(40, seed=7)):
        s.image.save(folder / f"img{i:02d}.png")
        (folder / f"img{i:02d}.json").write_text(json.dumps({"idx": i}))
    (folder / "note.txt").write_text("a red circle on the left")
    (folder / "junk.bin").write_bytes(b"\x00\x01binary")
    (folder / "empty.png").write_bytes(b"")
    return folder


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from mmsearch.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'open_clip', 'onnxruntime') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_index_search_remove_info(
    tmp_path: Path, shapes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = str(tmp_path / "lib")
    rep = run_json(
        capsys, "index", str(shapes), "--library", lib, "--model", "builtin:demo", "--workers", "0"
    )
    assert rep["added"] == 41 and rep["failed"] == 1 and rep["skipped"] == 1
    assert [f["path"].split("/")[-1] for f in rep["failures"]] == ["empty.png"]
    assert [f["path"].split("/")[-1] for f in rep["skipped_files"]] == ["junk.bin"]
    again = run_json(capsys, "index", str(shapes), "--library", lib)
    assert again["unchanged"] == 41 and again["added"] == 0

    # A text query searches all the evidence: the note that says it comes first, found
    # both by meaning and by its words; --modality image narrows to the pictures.
    res = run_json(capsys, "search", "a", "red", "circle", "--library", lib, "-k", "3")
    assert len(res["hits"]) == 3 and res["hits"][0]["path"].endswith("note.txt")
    assert {"main/text", "lexical"} <= {e["source"] for e in res["hits"][0]["evidence"]}
    pictures = run_json(
        capsys, "search", "a red circle", "--modality", "image", "--library", lib, "-k", "3"
    )
    assert len(pictures["hits"]) == 3
    assert all(h["modality"] == "image" for h in pictures["hits"])
    by_image = run_json(
        capsys, "search", "--image", str(shapes / "img05.png"), "--library", lib, "-k", "1"
    )
    assert by_image["hits"][0]["path"].endswith("img05.png")
    as_text = run_json(
        capsys,
        "search",
        "--image",
        str(shapes / "img05.png"),
        "--modality",
        "text",
        "--library",
        lib,
        "-k",
        "1",
    )
    assert as_text["hits"][0]["path"].endswith("note.txt")
    flt = run_json(
        capsys, "search", "shape", "--where", "idx>=10", "--where", "idx<12", "--library", lib
    )
    assert sorted(h["path"][-9:] for h in flt["hits"]) == ["img10.png", "img11.png"]
    weighted = run_json(capsys, "search", "2:a red circle", "-", "a blue square", "--library", lib)
    assert weighted["query"][0].startswith("2×text")

    removed = run_json(capsys, "remove", str(shapes / "img05.png"), "--library", lib)
    assert removed["removed"] == 1
    info = run_json(capsys, "info", "--library", lib)
    assert info["items"] == 40 and info["model"] == "builtin:demo" and info["failures"] == 1


def test_plain_output_and_errors(
    tmp_path: Path, shapes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = str(tmp_path / "lib")
    assert (
        main(["index", str(shapes), "--library", lib, "--model", "builtin:demo", "--workers", "0"])
        == 0
    )
    out = capsys.readouterr().out
    assert "41 added" in out and "failures by reason" in out and "skipped by reason" in out
    assert main(["search", "a green triangle", "--library", lib, "-k", "2"]) == 0
    assert "img" in capsys.readouterr().out
    assert main(["search", "x", "--library", str(tmp_path / "nope")]) == 2
    assert "no library" in capsys.readouterr().err
    assert (
        main(["index", str(shapes), "--library", str(tmp_path / "l2"), "--model", "zzz:foo"]) == 2
    )
    assert "unknown model backend" in capsys.readouterr().err
    assert main(["search", "--library", lib]) == 2


def test_demo_runs_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = run_json(capsys, "demo", "--dir", str(tmp_path / "demo"))
    assert res["ingest"]["added"] >= 200 and res["ingest"]["failed"] == 0
    precisions = {q["title"]: q["precision"] for q in res["queries"]}
    assert sum(precisions.values()) / len(precisions) >= 0.6, precisions
    (video,) = [q for q in res["queries"] if q["title"].startswith("text → video moment")]
    assert video["precision"] == 1.0, video
    seg = video["hits"][0]["segments"][0]
    assert video["hits"][0]["path"].endswith("slideshow.mp4") and seg["t_end"] > seg["t_start"]


def test_default_model_without_hub_gives_one_clear_message(
    tmp_path: Path,
    shapes: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["index", str(shapes), "--library", str(tmp_path / "lib")]) == 2
    err = capsys.readouterr().err
    assert "google/siglip2-base-patch16-256" in err and "mmsearch demo" in err
    assert "Traceback" not in err
