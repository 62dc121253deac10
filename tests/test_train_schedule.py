"""The step schedule shared by the training loop: learning rate and micro-batch supply."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mmsearch.train.config import TrainingError
from mmsearch.train.schedule import lr_at, micro_batches


def test_lr_warms_up_linearly_then_decays_to_the_floor() -> None:
    lrs = [lr_at(step, 10, 1.0, 4, 0.1) for step in range(12)]
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(lrs[4:10], lrs[5:10], strict=False))
    assert lrs[10] == lrs[11] == pytest.approx(0.1)


def test_micro_batches_restart_the_source_until_count() -> None:
    passes: list[int] = []

    def source(attempt: int) -> Iterator[str]:
        passes.append(attempt)
        return iter(["a", "b", "c"])

    assert list(micro_batches(source, 7)) == ["a", "b", "c", "a", "b", "c", "a"]
    assert passes == [0, 1, 2]


def test_micro_batches_of_an_empty_source_is_an_error() -> None:
    with pytest.raises(TrainingError, match="no batch"):
        list(micro_batches(lambda attempt: iter([]), 2))
