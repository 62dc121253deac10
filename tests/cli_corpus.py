"""A small mixed library for the search and recommend command-line tests.

Generated shape photos, three large red circles and three large blue squares drawn
on purpose (so "more like this" has right answers), a resized copy of one photo (a
near-duplicate), three text notes (one in the shapes' words), and a video whose frames show shapes and whose
subtitle file says a phrase no picture shows (at 5-7 s). Built with builtin:demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mmsearch.datasets.synthetic import draw, generate
from mmsearch.library import Library

from media_gen import write_srt, write_video

PHRASE = "the zanzibar lighthouse keeper"
NOTE = "Shopping list: bread, olive oil, and tea."
NOTE2 = "Remember to water the garden on Sunday."
CIRCLE_NOTE = "a red circle on the left"


@dataclass
class Corpus:
    media: Path
    library: str
    ids: dict[str, int]
    """Item id by file name."""

    def name(self, item_id: int) -> str:
        return next(n for n, i in self.ids.items() if i == item_id)


def shape(colour: str, kind: str, position: str = "centre", seed: int = 0) -> np.ndarray:
    attrs = {"count": 1, "shape": kind, "colour": colour, "size": "large", "position": position}
    return np.asarray(draw(attrs, np.random.default_rng(seed), size=64).convert("RGB"))


def build(root: Path) -> Corpus:
    media = root / "media"
    media.mkdir(parents=True)
    for i, s in enumerate(generate(16, seed=7)):
        s.image.save(media / f"photo{i:02d}.png")
    for i, where in enumerate(("left", "right", "top")):
        Image.fromarray(shape("red", "circle", where, seed=i)).save(media / f"red{i}.png")
        Image.fromarray(shape("blue", "square", where, seed=10 + i)).save(media / f"blue{i}.png")
    Image.open(media / "photo03.png").resize((96, 96)).save(media / "photo03_big.png")
    (media / "note.txt").write_text(NOTE)
    (media / "garden.txt").write_text(NOTE2)
    (media / "circle.txt").write_text(CIRCLE_NOTE)
    frames = []
    for t in np.arange(0, 10, 1.0):
        what = ("green", "triangle") if t < 5 else ("yellow", "star")
        frames.append((float(t), shape(*what)))
    write_video(media / "trip.mp4", frames, size=(64, 64), fps=1)
    write_srt(media / "trip.srt", [(1.0, 3.0, "we set off in the morning"), (5.0, 7.0, PHRASE)])
    folder = root / "lib"
    with Library.open(folder, model="builtin:demo") as lib:
        report = lib.add([media], workers=0)
        assert report.failed == 0, report.summary()
        ids = {Path(it.path).name: it.id for it in lib.catalog.iter_items()}
    return Corpus(media, str(folder), ids)
