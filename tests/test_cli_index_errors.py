"""`mmsearch index` when things go wrong (issue #9): one clear line and exit status != 0,
never a traceback, and nothing lost: a missing folder, a model that cannot load, a full
disk, a read-only library, two first runs racing, a library folder named with '#'."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmsearch.cli.main import main
from mmsearch.datasets.synthetic import generate
from mmsearch.library import Library

from fakes import ColourEncoder

MMSEARCH = [sys.executable, "-m", "mmsearch.cli.main"]


def shapes(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(generate(n, seed=3)):
        s.image.save(folder / f"img{i:03d}.png")
    return folder


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode not in (0, 1), (proc.returncode, proc.stderr)  # 1 = a traceback
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("mmsearch: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MMSEARCH, *argv], capture_output=True, text=True, timeout=300, env=env)


def in_private_mounts(script: str) -> subprocess.CompletedProcess[str]:
    """Run a shell ``script`` in a mount namespace of its own (its mounts vanish with it)."""
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_missing_folder_is_an_error_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = tmp_path / "new" / "lib"
    code = main(["index", str(tmp_path / "does-not-exist"), "--library", str(lib)])
    err = capsys.readouterr().err
    assert code == 2 and "no such file or folder" in err and "does-not-exist" in err
    assert not (tmp_path / "new").exists()


def test_a_model_that_cannot_load_leaves_no_half_made_library(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = shapes(tmp_path / "media", 2)
    lib = tmp_path / "lib"
    code = main(["index", str(media), "--library", str(lib), "--model", str(tmp_path / "nope")])
    assert code == 2 and "model folder not found" in capsys.readouterr().err
    assert not lib.exists()
    # A half-made library from an older mmsearch (a catalog, no model) says what happened.
    Library.open(lib, encoder=ColourEncoder()).close()
    import sqlite3

    with sqlite3.connect(lib / "catalog.sqlite") as conn:
        conn.execute("DELETE FROM spaces")
    assert main(["info", "--library", str(lib)]) == 2
    err = capsys.readouterr().err
    assert "never finished" in err and "delete the folder" in err


def test_the_library_is_refused_by_model_id_before_any_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = shapes(tmp_path / "media", 2)
    lib = str(tmp_path / "lib")
    assert main(["index", str(media), "--library", lib, "--model", "builtin:demo"]) == 0
    capsys.readouterr()
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"}
    os.environ.update(env)
    try:
        code = main(["search", "a red circle", "--library", lib, "--model", "hf:org/other"])
    finally:
        for k in env:
            os.environ.pop(k, None)
    err = capsys.readouterr().err
    assert code == 2 and "was built with builtin:demo" in err and "hf:org/other" in err
    assert "cache" not in err and "hub" not in err  # no download was tried


def test_a_full_disk_stops_with_one_line_and_a_report(tmp_path: Path) -> None:
    """The library lives on a 1.5 MB tmpfs (in a private mount namespace); 120 photos
    with thumbnails-free rows fill it; the rerun on a bigger disk finishes the job."""
    media = shapes(tmp_path / "media", 300)
    mnt = tmp_path / "small"
    mnt.mkdir()
    script = (
        f"mount -t tmpfs -o size=1500k tmpfs {mnt} && "
        f"{sys.executable} -m mmsearch.cli.main index {media} --library {mnt}/lib "
        "--model builtin:demo --workers 0 --batch-size 8 --json; "
        f"echo EXIT=$?; cp -a {mnt}/lib {tmp_path}/rescued"
    )
    proc = in_private_mounts(script)
    assert "EXIT=2" in proc.stdout, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("mmsearch: error:")]
    assert len(err) == 1 and "disk holding the library is full" in err[0], proc.stderr
    report = json.loads(proc.stdout[: proc.stdout.rindex("EXIT=")])
    assert report["error"] and 0 < report["added"] < 300
    # Nothing committed is lost: the rescued library holds what the report says, and
    # running again where there is room adds only the rest.
    rescued = tmp_path / "rescued"
    with Library.open(rescued, readonly=True) as lib:
        assert lib.info()["items"] == report["added"]
    again = cli("index", str(media), "--library", str(rescued), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["added"] == 300 - report["added"]


def test_a_read_only_library_is_one_line(tmp_path: Path) -> None:
    media = shapes(tmp_path / "media", 3)
    lib = tmp_path / "ro" / "lib"
    lib.parent.mkdir()
    built = cli("index", str(media), "--library", str(lib), "--model", "builtin:demo")
    assert built.returncode == 0, built.stderr
    shapes(media, 6)
    script = (
        f"mount --bind {lib.parent} {lib.parent} && mount -o remount,bind,ro {lib.parent} && "
        f"{sys.executable} -m mmsearch.cli.main index {media} --library {lib}; echo EXIT=$?"
    )
    proc = in_private_mounts(script)
    assert "EXIT=2" in proc.stdout, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    line = one_line_error(subprocess.CompletedProcess([], 2, proc.stdout, proc.stderr))
    assert "cannot write" in line or "read-only" in line
    with Library.open(lib, readonly=True) as ro:
        assert ro.info()["items"] == 3  # untouched


def test_two_first_runs_racing_to_create_a_library(tmp_path: Path) -> None:
    media = shapes(tmp_path / "media", 30)
    lib = tmp_path / "lib"
    argv = [*MMSEARCH, "index", str(media), "--library", str(lib), "--model", "builtin:demo"]
    procs = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    for code, err in results:
        assert "Traceback" not in err, err
        assert code == 0 or (code == 2 and "another process is writing" in err), err
    assert any(code == 0 for code, _ in results)
    with Library.open(lib, readonly=True) as ro:
        assert ro.info()["items"] == 30 and len(ro.catalog.spaces()) == 1


def test_library_folders_named_with_hash_signs_are_distinct(tmp_path: Path) -> None:
    media = shapes(tmp_path / "media", 2)
    for n in (1, 2):
        with Library.open(tmp_path / f"lib #{n}", encoder=ColourEncoder()) as lib:
            lib.add(media if n == 1 else media / "img000.png", workers=0)
    for n, items in ((1, 2), (2, 1)):
        assert (tmp_path / f"lib #{n}" / "catalog.sqlite").is_file()
        with Library.open(tmp_path / f"lib #{n}", encoder=ColourEncoder(), readonly=True) as lib:
            assert lib.info()["items"] == items
    assert not (tmp_path / "lib ").exists()
    shutil.rmtree(tmp_path / "lib #1")
