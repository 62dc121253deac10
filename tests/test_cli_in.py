"""``mmsearch search QUERY --in DIR``: index DIR incrementally, then search only there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import index, make_shapes, one_error_line, run


def search_in(capsys: pytest.CaptureFixture[str], lib: Path, folder: Path, *extra: str) -> dict:
    argv = ["search", "a red circle", "--in", str(folder), "--library", str(lib), "-k", "50"]
    code, out, err = run(capsys, *argv, "--model", "builtin:demo", "--json", *extra)
    assert code == 0, err
    assert err == ""
    result: dict = json.loads(out)
    return result


def test_search_in_indexes_the_folder_and_searches_only_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    here = make_shapes(tmp_path / "album", 6, seed=1)
    near = make_shapes(tmp_path / "album2", 4, seed=2)  # shares the prefix "album"
    far = make_shapes(tmp_path / "other", 4, seed=3)
    lib = tmp_path / "lib"
    assert index(capsys, lib, near, far)["added"] == 8

    first = search_in(capsys, lib, here)
    assert first["indexed"]["added"] == 6
    paths = [h["path"] for h in first["hits"]]
    assert len(paths) == 6 and all(p.startswith(f"{here}/") for p in paths), paths

    second = search_in(capsys, lib, here)
    assert second["indexed"]["added"] == 0 and second["indexed"]["unchanged"] == 6
    assert [h["path"] for h in second["hits"]] == paths

    code, out, _ = run(capsys, "info", "--library", str(lib), "--json")
    assert code == 0 and json.loads(out)["items"] == 14


def test_search_in_a_fresh_library_creates_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    here = make_shapes(tmp_path / "pics", 3)
    lib = tmp_path / "new-lib"
    res = search_in(capsys, lib, here, "--where", "idx>=1")
    assert res["indexed"]["added"] == 3
    assert sorted(Path(h["path"]).name for h in res["hits"]) == ["img01.png", "img02.png"]
    code, out, _ = run(
        capsys, "search", "red", "--in", str(here), "--paths", "-k", "3", "-l", str(lib)
    )
    assert code == 0 and len(out.splitlines()) == 3


def test_search_in_a_missing_folder_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = tmp_path / "lib"
    argv = [
        "search",
        "red",
        "--in",
        str(tmp_path / "nowhere"),
        "-l",
        str(lib),
        "-m",
        "builtin:demo",
    ]
    code, out, err = run(capsys, *argv)
    assert code != 0 and out == ""
    assert "nowhere" in one_error_line(err) and "no such folder" in err
    with pytest.raises(SystemExit) as exc:
        run(capsys, "search", "red", "--in", str(tmp_path), "--path-prefix", str(tmp_path))
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
