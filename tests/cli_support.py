"""Helpers for the command-line tests: generated shapes with metadata, a built library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mmsearch.cli.main import main
from mmsearch.datasets.synthetic import generate

MMSEARCH = str(Path(sys.executable).with_name("mmsearch"))


def make_shapes(folder: Path, n: int = 12, *, seed: int = 7) -> Path:
    """``n`` generated pictures ``imgNN.png``, each with a sidecar {"idx": i, "price": 3i}."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(generate(n, seed=seed)):
        s.image.save(folder / f"img{i:02d}.png")
        (folder / f"img{i:02d}.json").write_text(json.dumps({"idx": i, "price": 3 * i}))
    return folder


def index(capsys: pytest.CaptureFixture[str], lib: Path, *paths: Path) -> dict:
    """Index ``paths`` into ``lib`` with builtin:demo; the JSON report."""
    argv = ["index", *map(str, paths), "--library", str(lib), "--model", "builtin:demo"]
    code = main([*argv, "--workers", "0", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)``: exit status, stdout, stderr."""
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def run_cli(
    *argv: str, env: dict[str, str] | None = None, text: bool = True
) -> subprocess.CompletedProcess[Any]:
    """The installed ``mmsearch`` script in a subprocess (stdout and stderr captured)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [MMSEARCH, *argv], capture_output=True, text=text, env=full_env, timeout=300
    )


def one_error_line(err: str) -> str:
    """The stderr of a failed command: exactly one line starting ``mmsearch: error:``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mmsearch: error: "), err
    assert "Traceback" not in err
    return lines[0]
