"""``mmsearch remove``: no silent no-ops, a guard on large removals, --dry-run and --forget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import index, make_shapes, one_error_line, run


@pytest.fixture
def shapes(tmp_path: Path) -> Path:
    return make_shapes(tmp_path / "shapes", 8)


@pytest.fixture
def lib(tmp_path: Path, shapes: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    folder = tmp_path / "lib"
    assert index(capsys, folder, shapes)["added"] == 8
    return ["--library", str(folder)]


def item_count(capsys: pytest.CaptureFixture[str], lib: list[str]) -> int:
    code, out, _ = run(capsys, "info", *lib, "--json")
    assert code == 0
    return int(json.loads(out)["items"])


def test_a_target_matching_nothing_is_named_and_nothing_is_removed(
    shapes: Path, lib: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "remove", str(shapes / "nope.png"), *lib)
    assert code != 0 and out == ""
    assert "nope.png" in one_error_line(err)
    code, out, err = run(capsys, "remove", str(shapes / "img01.png"), "99999", "not-here", *lib)
    line = one_error_line(err)
    assert code != 0 and "99999" in line and "not-here" in line and "img01" not in line
    code, _, err = run(capsys, "remove", "99999999999999999999999", *lib)
    assert code != 0 and "99999999999999999999999" in one_error_line(err)
    assert item_count(capsys, lib) == 8


def test_removing_more_than_half_needs_yes_and_dry_run_lists(
    shapes: Path, lib: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "remove", str(shapes), *lib)
    assert code != 0 and out == ""
    line = one_error_line(err)
    assert "8 of the library's 8 items" in line and "--yes" in line
    assert item_count(capsys, lib) == 8

    code, out, _ = run(capsys, "remove", str(shapes), "--dry-run", *lib)
    lines = out.strip().splitlines()
    assert code == 0 and lines[-1] == "would remove 8 item(s) of 8"
    assert sorted(line.split()[-1] for line in lines[:-1]) == sorted(
        str(p) for p in shapes.glob("*.png")
    )
    assert item_count(capsys, lib) == 8

    code, out, err = run(capsys, "remove", "1", "2", "3", "4", "5", *lib)
    assert code != 0 and "5 of the library's 8 items" in one_error_line(err)
    code, out, _ = run(capsys, "remove", "1", "2", "3", "4", *lib)  # half is allowed
    assert code == 0 and out.startswith("removed 4 item(s)")
    code, out, _ = run(capsys, "remove", str(shapes), "--yes", *lib)
    assert code == 0 and out.startswith("removed 4 item(s)")
    assert item_count(capsys, lib) == 0


def test_forget_lets_a_file_come_back_and_plain_remove_keeps_it_out(
    shapes: Path, lib: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "remove", str(shapes / "img01.png"), *lib)
    assert code == 0 and "stay out of later index runs" in out
    code, out, _ = run(capsys, "remove", str(shapes / "img02.png"), "--forget", *lib)
    assert code == 0 and "come back" in out
    library = Path(lib[1])
    again = index(capsys, library, shapes)
    assert again["added"] == 1 and again["unchanged"] == 6
    code, out, _ = run(capsys, "search", "--like", "1", "-k", "10", "--paths", *lib)
    paths = out.splitlines()
    assert str(shapes / "img02.png") in paths and str(shapes / "img01.png") not in paths


def test_help_explains_forget(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(capsys, "remove", "--help")
    out = " ".join(capsys.readouterr().out.split())
    assert "--forget" in out and "adds them again" in out and "stay out of later" in out
    assert "--dry-run" in out and "--yes" in out
