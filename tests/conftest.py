"""Shared fixtures: a library folder of generated images, texts and sidecars."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from fakes import ColourEncoder, solid  # noqa: E402


@pytest.fixture
def encoder() -> ColourEncoder:
    return ColourEncoder()


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """Images of solid colours with sidecars, text notes, and one corrupt file."""
    root = tmp_path / "media"
    (root / "photos").mkdir(parents=True)
    (root / "notes").mkdir()
    for i, (colour, price) in enumerate(
        [("red", 5), ("green", 12), ("blue", 20), ("yellow", 8), ("purple", 30), ("orange", 15)]
    ):
        stem = root / "photos" / f"{i:02d}_{colour}"
        solid(colour).save(stem.with_suffix(".png"))
        stem.with_suffix(".json").write_text(json.dumps({"colour": colour, "price": price}))
    (root / "photos" / "02_blue.txt").write_text("a blue sky over the sea")
    (root / "notes" / "fruit.txt").write_text("Bananas are yellow and cherries are red.")
    (root / "notes" / "sea.md").write_text("# The sea\n\nThe sea is blue and deep.")
    (root / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(200))
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for the web page tests, one per test module."""
    from test_server_page_support import chromium

    with chromium() as driver:
        yield driver
