"""``mmsearch train`` on the command line: arguments, output, errors as exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmsearch.cli import cmd_train
from mmsearch.datasets.synthetic import write_dataset

from torch_threads import one_torch_thread  # noqa: F401 (autouse: one torch thread)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("cli") / "data", 60, 7, lang="both")


def test_train_writes_a_model_and_prints_its_card(pairs: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "model"
    rc = cmd_train.main(["--data", str(pairs), "--base", "scratch:tiny", "--out", str(out),
                         "--epochs", "2", "--batch-size", "16", "--workers", "0",
                         "--val-split", "0.2", "--loss", "siglip", "--json"])  # fmt: skip
    assert rc == 0
    card = json.loads(capsys.readouterr().out)
    assert card["loss"] == "siglip" and card["epochs_run"] == 2
    assert card["data"]["val_media"] == 12 and card["data"]["train_pairs"] == 48
    assert (out / "mmsearch_model.json").is_file() and (out / "README.md").is_file()
    assert (out / "checkpoints" / "last.pt").is_file()
    # --resume of a finished run trains no more and exports the same model again
    rc = cmd_train.main(["--data", str(pairs), "--base", "scratch:tiny", "--out", str(out),
                         "--epochs", "2", "--batch-size", "16", "--workers", "0",
                         "--val-split", "0.2", "--loss", "siglip", "--resume"])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0 and "2 epochs" in text and "validation text→image" in text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--base", "scratch:tiny", "--method", "lora"], "from scratch"),
        (["--base", "scratch:giant"], "scratch:tiny"),
        (["--base", "scratch:tiny", "--batch-size", "100"], "fewer than one step"),
    ],
)
def test_bad_settings_are_one_line_errors(pairs: Path, tmp_path: Path, extra: list[str],
                                          message: str, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    rc = cmd_train.main(["--data", str(pairs), "--out", str(tmp_path / "m"), "--workers", "0",
                         *extra])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("mmsearch: error:") and message in err


def test_missing_data_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cmd_train.main(["--data", str(tmp_path / "nope.jsonl"), "--base", "scratch:tiny",
                         "--out", str(tmp_path / "m")])  # fmt: skip
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_resume_refuses_the_checkpoint_of_another_run(pairs: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    args = ["--data", str(pairs), "--base", "scratch:tiny", "--out", str(tmp_path / "m"),
            "--epochs", "1", "--batch-size", "16", "--workers", "0", "--max-steps", "1"]  # fmt: skip
    assert cmd_train.main(args) == 0
    capsys.readouterr()
    assert cmd_train.main([*args, "--resume", "--loss", "siglip"]) == 2
    assert "checkpoint of another run" in capsys.readouterr().err
