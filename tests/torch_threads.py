"""A module-wide fixture that runs torch on one thread, for the training tests.

Import it into a test module (``from torch_threads import one_torch_thread``) and every
test there runs with one torch thread, the number being restored after the module:
the tiny models there lose more to threads waiting on each other on shared, busy
cores than they gain.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the importing module's tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
