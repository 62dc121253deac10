"""Bad input on the command line: one clear line naming what is wrong, exit status != 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_support import make_shapes, one_error_line, run, run_cli
from mmsearch.library import Library


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("errors")
    shapes = make_shapes(root / "shapes", 8)
    (shapes / "note.txt").write_text("a red circle on the left")
    folder = root / "lib"
    with Library.open(folder, model="builtin:demo") as library:
        report = library.add([shapes], workers=0)
    assert report.added == 9
    return str(folder)


def search_error(capsys: pytest.CaptureFixture[str], lib: str, *argv: str) -> str:
    code, out, err = run(capsys, "search", *argv, "--library", lib)
    assert code != 0 and out == ""
    return one_error_line(err)


def test_non_numeric_range_bound_names_field_and_value(
    lib: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = search_error(capsys, lib, "red", "--where", "price<=abc")
    assert "price" in line and "'abc'" in line and "number" in line


def test_unknown_modality_is_named_with_the_known_ones(
    lib: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = search_error(capsys, lib, "red", "--modality", "bogus")
    assert "'bogus'" in line
    for known in ("image", "text", "video", "audio", "any"):
        assert known in line


def test_unknown_field_is_named_with_the_librarys_fields(
    lib: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = search_error(capsys, lib, "red", "--where", "unknown_field=x")
    assert "'unknown_field'" in line and "idx" in line and "price" in line
    # A known field with a value nobody has is a real query with no results.
    code, out, _ = run(capsys, "search", "red", "--where", "price=1000", "--library", lib)
    assert code == 0 and out.strip() == "no results"


def test_missing_query_image_is_named(lib: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = search_error(capsys, lib, "--image", "nope.jpg")
    assert "nope.jpg" in line and "no such file" in line


def test_undecodable_query_image_is_named(
    lib: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    line = search_error(capsys, lib, "--image", str(bad))
    assert "bad.png" in line


def test_like_of_a_missing_item_says_so(lib: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no item 99999" in search_error(capsys, lib, "--like", "99999")
    huge = "99999999999999999999999"
    assert f"no item {huge}" in search_error(capsys, lib, "--like", huge)
    assert "no item 99999" in search_error(capsys, lib, "red", "--like", "99999")


def test_mistyped_flag_shows_the_subcommands_usage() -> None:
    res = run_cli("search", "red", "--bogus")
    assert res.returncode == 2 and res.stdout == ""
    assert "usage: mmsearch search" in res.stderr
    assert "unrecognized arguments: --bogus" in res.stderr
    res = run_cli("remove", "--frobnicate", "3")
    assert res.returncode == 2 and "usage: mmsearch remove" in res.stderr


def test_top_level_help_names_every_kind_of_media(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(capsys, "--help")
    out = capsys.readouterr().out
    for word in ("images", "video", "audio", "text"):
        assert word in out


def test_info_prints_no_raw_dicts(lib: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "info", "--library", lib)
    assert code == 0 and "items: 9" in out
    assert "{" not in out and "}" not in out, out
    assert "image: 8" in out and "text: 1" in out, out
