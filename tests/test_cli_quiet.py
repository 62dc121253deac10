"""Quiet by default: model libraries print no bars or notices unless ``-v`` is given."""

from __future__ import annotations

import logging
import os
import re
import subprocess

import pytest

from cli_support import MMSEARCH, make_shapes, run
from mmsearch.cli.quiet import QUIET_ENV, quiet_model_libraries
from mmsearch.library import Library

from tiny_models import make_tiny_hf_clip


@pytest.fixture(scope="module")
def hf_lib(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("quiet")
    model = make_tiny_hf_clip(root)
    shapes = make_shapes(root / "shapes", 3)
    folder = root / "lib"
    with Library.open(folder, model=model) as lib:
        assert lib.add([shapes], workers=0).added == 3
    return str(folder)


def hit_lines(out: str) -> list[str]:
    """The rank lines of a search's output; every other line explains the hit above it."""
    lines = out.splitlines()
    assert all(re.match(r" {2}\d\. | {7}\S", line) for line in lines), out
    return [line for line in lines if not line.startswith(" " * 7)]


def test_a_search_with_a_transformers_model_prints_only_the_result(hf_lib: str) -> None:
    # --no-dedupe: to a tiny random model every picture looks alike, and would fold.
    argv = [MMSEARCH, "search", "a red circle", "-k", "2", "--no-dedupe", "--library", hf_lib]
    # Both cold starts at once: most of their time is importing torch and transformers.
    quiet = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    loud = subprocess.Popen(
        [argv[0], "-v", *argv[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    q_out, q_err = quiet.communicate(timeout=300)
    l_out, l_err = loud.communicate(timeout=300)
    assert quiet.returncode == 0, q_err
    assert q_err == ""
    assert len(hit_lines(q_out)) == 2, q_out
    assert loud.returncode == 0 and "Loading weights" in l_err
    assert l_out == q_out


def test_quiet_mode_is_undone_when_the_command_ends(
    hf_lib: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {k: os.environ.get(k) for k in QUIET_ENV}
    levels = logging.getLogger("transformers").level, logging.getLogger("torch").level
    code, out, err = run(capsys, "search", "red", "-k", "1", "--library", hf_lib)
    assert code == 0 and len(hit_lines(out)) == 1 and "Loading weights" not in err
    assert {k: os.environ.get(k) for k in QUIET_ENV} == before
    assert (logging.getLogger("transformers").level, logging.getLogger("torch").level) == levels


def test_records_from_model_libraries_are_dropped_but_errors_and_ours_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = logging.getLogger()
    with caplog.at_level(logging.INFO), quiet_model_libraries():
        logging.getLogger("huggingface_hub.file_download").warning("hub notice")
        record = logging.LogRecord(
            "root",
            logging.WARNING,
            "/x/site-packages/open_clip/factory.py",
            1,
            "oc note",
            None,
            None,
        )
        root.handle(record)  # open_clip logs on the root logger
        logging.getLogger("transformers.modeling_utils").error("a real error")
        logging.getLogger("mmsearch.ingest").warning("our warning")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["a real error", "our warning"]
