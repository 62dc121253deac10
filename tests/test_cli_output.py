"""What the command line prints: item ids, paths for piping, and file names made safe."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from cli_support import index, make_shapes, run, run_cli

EVIL = "evil\x1b[31mred\nline"
"""A file name holding an escape sequence (turns a terminal red) and a newline."""


@pytest.fixture
def lib(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    shapes = make_shapes(tmp_path / "shapes", 8)
    folder = tmp_path / "lib"
    index(capsys, folder, shapes)
    return folder


def search_json(capsys: pytest.CaptureFixture[str], lib: Path, *argv: str) -> list[dict]:
    code, out, _ = run(capsys, "search", *argv, "--library", str(lib), "--json")
    assert code == 0, out
    hits: list[dict] = json.loads(out)["hits"]
    assert hits
    return hits


def test_plain_output_shows_item_ids_usable_with_like_and_remove(
    lib: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hits = search_json(capsys, lib, "a red circle", "-k", "4")
    code, out, _ = run(capsys, "search", "a red circle", "-k", "4", "--library", str(lib))
    assert code == 0
    # One line per hit (rank, score, id, path); the lines below it are indented details.
    lines = [line for line in out.splitlines() if not line.startswith(" " * 7)]
    rows = [re.match(r"\s*(\d+)\. (-?[\d.]+)\s+#(\d+)\s+(\S+)$", line) for line in lines]
    assert all(rows) and len(rows) == 4, out
    assert [(int(m[3]), m[4]) for m in rows if m] == [(h["item_id"], h["path"]) for h in hits]

    last = hits[-1]["item_id"]
    like = search_json(capsys, lib, "--like", str(last), "-k", "3")
    assert last not in [h["item_id"] for h in like]
    code, out, _ = run(capsys, "remove", str(last), "--library", str(lib))
    assert code == 0 and "removed 1 item" in out


def test_paths_prints_only_paths(lib: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hits = search_json(capsys, lib, "a blue square", "-k", "5")
    code, out, err = run(capsys, "search", "a blue square", "-k", "5", "--paths", "-l", str(lib))
    assert code == 0 and err == ""
    assert out == "".join(h["path"] + "\n" for h in hits)
    code, out, _ = run(capsys, "search", "a blue square", "-k", "5", "-0", "-l", str(lib))
    assert code == 0
    assert out == "".join(h["path"] + "\0" for h in hits)


def test_paths_are_exact_bytes_when_piped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shapes = make_shapes(tmp_path / "shapes", 3)
    odd = os.fsencode(str(shapes)) + b"/caf\xe9 " + EVIL.encode() + b".png"  # not UTF-8
    os.rename(shapes / "img01.png", odd)
    folder = tmp_path / "lib"
    assert index(capsys, folder, shapes)["added"] == 3
    res = run_cli("search", "shape", "-k", "3", "-0", "--library", str(folder), text=False)
    assert res.returncode == 0, res.stderr
    paths = res.stdout.split(b"\0")
    assert paths[-1] == b"" and odd in paths and len(paths) == 4
    res = run_cli("search", "shape", "-k", "3", "--paths", "--library", str(folder), text=False)
    assert res.returncode == 0 and odd in res.stdout  # exact bytes, newline inside and all


def test_control_characters_in_file_names_are_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shapes = make_shapes(tmp_path / "shapes", 3)
    os.rename(shapes / "img01.png", shapes / f"{EVIL}.png")
    (shapes / f"{EVIL}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)  # corrupt
    (shapes / "note.txt").write_text("red \x1b[2J circle")
    folder, lib = tmp_path / "lib", ["--library", str(tmp_path / "lib")]
    code, out, _ = run(capsys, "index", str(shapes), *lib, "--model", "builtin:demo")
    assert code == 0 and "1 failed" in out
    checks = [out]
    code, out, _ = run(capsys, "search", "red circle", "--modality", "any", "-k", "5", *lib)
    # The matched text is escaped, then its matched words are marked.
    assert code == 0 and "evil\\x1b[31mred\\nline.png" in out and "[red] \\x1b[2J [circle]" in out
    checks.append(out)
    code, out, _ = run(capsys, "info", *lib)
    assert code == 0 and "recent failures" in out
    checks.append(out)
    code, out, err = run(capsys, "search", "--image", str(shapes / f"{EVIL}.jpg"), *lib)
    assert code != 0
    checks.append(err)
    code, out, _ = run(capsys, "remove", "--dry-run", str(shapes / f"{EVIL}.png"), *lib)
    assert code == 0 and "would remove 1 item" in out
    checks.append(out)
    code, out, err = run(capsys, "remove", str(shapes / f"{EVIL}.gif"), *lib)
    assert code != 0 and out == ""
    checks.append(err.replace(".gif", ".png"))
    for text in checks:
        assert "\x1b" not in text, text
        assert "evil\\x1b[31mred\\nline" in text, text
        assert "red\nline" not in text, text
    assert folder.is_dir()


def test_no_confident_match_names_an_odd_file_safely(tmp_path: Path) -> None:
    shapes = make_shapes(tmp_path / "shapes", 1)
    odd = os.fsencode(str(shapes)) + b"/caf\xe9 " + EVIL.encode() + b".png"  # not UTF-8
    os.rename(shapes / "img00.png", odd)
    lib = str(tmp_path / "lib")
    res = run_cli("index", str(shapes), "--library", lib, "--model", "builtin:demo")
    assert res.returncode == 0, res.stderr
    argv = ["search", "a purple piano", "--min-score", "0.999", "--library", lib]
    res = run_cli(*argv)
    assert res.returncode == 1 and res.stderr == ""
    assert res.stdout.startswith("no confident match; best was ") and "\x1b" not in res.stdout
    assert "caf\\xe9 evil\\x1b[31mred\\nline.png" in res.stdout
    res = run_cli(*argv, "--json")
    assert res.returncode == 1, res.stderr
    payload = json.loads(res.stdout)
    assert payload["hits"] == [] and "caf\ufffd evil\x1b[31mred\nline.png" in payload["note"]
    assert payload["best_below"]["path"].endswith("caf\ufffd evil\x1b[31mred\nline.png")
