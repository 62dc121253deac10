"""Rerankers applied to the hits of a real library (builtin:demo): photos, a captioned
photo, a text note and a subtitled video, scored by tiny BLIP and CrossEncoder models.

The hits are built from the catalog's own rows (as the engine builds them), so these
tests do not depend on how the engine ranks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mmsearch.errors import QueryError
from mmsearch.library import Library
from mmsearch.search.rerank.apply import RerankScore, rerank_hits
from mmsearch.search.rerank.base import Candidate, Reranker
from mmsearch.search.rerank.registry import load_reranker
from mmsearch.store.rows import SegmentRow
from mmsearch.types import Hit, SegmentHit

from media_gen import make_video, write_srt
from tiny_rerankers import make_tiny_blip_itm, make_tiny_cross_encoder

SHAPES = [("red", "ellipse"), ("green", "rectangle"), ("blue", "ellipse")]
CUES = [(1.0, 2.5, "hello there"), (4.5, 5.5, "the zanzibar lighthouse")]


@dataclass
class Setup:
    lib: Library
    media: Path
    blip: Reranker
    ce: Reranker


def _shape(colour: str, shape: str, path: Path) -> None:
    im = Image.new("RGB", (96, 72), "white")
    getattr(ImageDraw.Draw(im), shape)((24, 12, 72, 60), fill=colour)
    im.save(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("rerank")
    media = root / "media"
    media.mkdir()
    for colour, shape in SHAPES:
        _shape(colour, shape, media / f"{colour}.png")
    _shape("yellow", "rectangle", media / "captioned.png")
    (media / "captioned.txt").write_text("a yellow square on white")
    (media / "note.txt").write_text("Notes about a lighthouse on the coast.")
    make_video(media / "clip.mp4", [("red", 3.0), ("blue", 3.0)], fps=4)
    write_srt(media / "clip.srt", CUES)
    models = root / "models"
    blip = load_reranker(make_tiny_blip_itm(models), device="cpu")
    ce = load_reranker(make_tiny_cross_encoder(models), device="cpu")
    with Library.open(root / "lib", "builtin:demo") as lib:
        report = lib.add([media], workers=0)
        assert report.added == 6, report.to_dict()
        yield Setup(lib, media, blip, ce)


def _hit(setup: Setup, name: str, kinds: Sequence[str] = ()) -> Hit:
    """The item ``name`` as a hit carrying its segments of ``kinds`` (all when empty)."""
    item = setup.lib.catalog.item_by_path(str(setup.media / name))
    assert item is not None, name
    rows = setup.lib.catalog.item_segments(item.id)
    segs = [_seg(r) for r in rows if not kinds or r.kind in kinds]
    return Hit(item.id, item.path, item.modality, 0.5, segments=segs)


def _seg(r: SegmentRow) -> SegmentHit:
    return SegmentHit(r.id, 0.5, r.kind, r.t_start, r.t_end, r.text)


def _by(scores: list[RerankScore], hit_index: int) -> dict[str, RerankScore]:
    return {f"{s.reranker}/{s.candidate}": s for s in scores if s.hit_index == hit_index}


def test_every_hit_gets_its_picture_and_its_text_scored(setup: Setup) -> None:
    hits = [
        _hit(setup, "red.png"),
        _hit(setup, "captioned.png", kinds=["image"]),  # matched by picture: caption from catalog
        _hit(setup, "note.txt"),
        _hit(setup, "clip.mp4", kinds=["frame", "subtitle"]),
        _hit(setup, "green.png"),
    ]
    scores = rerank_hits(setup.lib.catalog, hits, "a red circle", [setup.blip, setup.ce], 50)
    assert all(isinstance(s, RerankScore) for s in scores)
    assert all(0.0 <= s.probability <= 1.0 for s in scores)
    expected = {
        0: {"blip-itm/picture"},
        1: {"blip-itm/picture", "cross-encoder/text"},
        2: {"cross-encoder/text"},
        3: {"blip-itm/picture", "cross-encoder/text"},
        4: {"blip-itm/picture"},
    }
    assert {i: set(_by(scores, i)) for i in expected} == expected
    assert len(scores) == sum(len(v) for v in expected.values())  # one per candidate
    assert _by(scores, 1)["cross-encoder/text"].text == "a yellow square on white"
    assert _by(scores, 1)["cross-encoder/text"].kind == "caption"
    assert _by(scores, 0)["blip-itm/picture"].kind == "image"
    frame = _by(scores, 3)["blip-itm/picture"]
    assert frame.kind == "frame" and frame.t_start is not None
    assert _by(scores, 3)["cross-encoder/text"].kind == "subtitle"
    # Ordered by hit, then reranker; the pictures really differ.
    assert [s.hit_index for s in scores] == sorted(s.hit_index for s in scores)
    pics = [s.probability for s in scores if s.candidate == "picture"]
    assert np.ptp(pics) > 1e-4


def test_scores_match_the_reranker_on_the_decoded_pictures(setup: Setup) -> None:
    hits = [_hit(setup, f"{c}.png") for c, _ in SHAPES]
    scores = rerank_hits(setup.lib.catalog, hits, "a blue circle", [setup.blip], batch_size=2)
    cands = [
        Candidate("picture", image=Image.open(setup.media / f"{c}.png").convert("RGB"))
        for c, _ in SHAPES
    ]
    want = setup.blip.score("a blue circle", cands)
    np.testing.assert_allclose([s.probability for s in scores], want, atol=1e-6)


def test_a_subtitle_hit_is_judged_by_the_frame_on_screen_then(setup: Setup) -> None:
    item = setup.lib.catalog.item_by_path(str(setup.media / "clip.mp4"))
    assert item is not None
    rows = setup.lib.catalog.item_segments(item.id)
    cue = next(r for r in rows if r.kind == "subtitle" and r.text == "the zanzibar lighthouse")
    hit = Hit(item.id, item.path, "text", 0.5, segments=[_seg(cue)])
    scores = rerank_hits(setup.lib.catalog, [hit], "lighthouse", [setup.blip, setup.ce])
    picture = next(s for s in scores if s.candidate == "picture")
    assert picture.kind == "frame"
    assert picture.t_start is not None and picture.t_end is not None
    assert picture.t_start <= 5.0 <= picture.t_end  # the blue scene, 3-6 s
    text = next(s for s in scores if s.candidate == "text")
    assert text.segment_id == cue.id and text.text == "the zanzibar lighthouse"


def test_files_gone_or_changed_are_skipped(setup: Setup, tmp_path: Path) -> None:
    hits = [_hit(setup, "red.png"), _hit(setup, "green.png"), _hit(setup, "blue.png")]
    green, blue = setup.media / "green.png", setup.media / "blue.png"
    data, st = blue.read_bytes(), blue.stat()
    try:
        green.rename(tmp_path / "green.png")  # gone (moved back after, same inode)
        _shape("black", "ellipse", blue)  # another picture under the same name
        scores = rerank_hits(setup.lib.catalog, hits, "a red circle", [setup.blip])
    finally:
        (tmp_path / "green.png").rename(green)
        blue.write_bytes(data)
        os.utime(blue, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert [s.hit_index for s in scores] == [0]
    assert 0.0 <= scores[0].probability <= 1.0


def test_a_corrupt_file_is_skipped(setup: Setup) -> None:
    red = setup.media / "red.png"
    data, st = red.read_bytes(), red.stat()
    try:
        red.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (len(data) - 8))  # same size and mtime
        os.utime(red, ns=(st.st_atime_ns, st.st_mtime_ns))
        hits = [_hit(setup, "red.png"), _hit(setup, "green.png")]
        scores = rerank_hits(setup.lib.catalog, hits, "a red circle", [setup.blip])
    finally:
        red.write_bytes(data)
        os.utime(red, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert [s.hit_index for s in scores] == [1]


def test_only_the_top_hits_are_scored(setup: Setup) -> None:
    hits = [_hit(setup, f"{c}.png") for c, _ in SHAPES]
    scores = rerank_hits(setup.lib.catalog, hits, "a circle", [setup.blip], top=2)
    assert [s.hit_index for s in scores] == [0, 1]


def test_a_text_reranker_skips_pictures_it_cannot_read(setup: Setup) -> None:
    hits = [_hit(setup, "red.png"), _hit(setup, "note.txt")]
    scores = rerank_hits(setup.lib.catalog, hits, "lighthouse", [setup.ce])
    assert [(s.hit_index, s.candidate) for s in scores] == [(1, "text")]


def test_a_blank_query_is_refused(setup: Setup) -> None:
    with pytest.raises(QueryError, match="text query"):
        rerank_hits(setup.lib.catalog, [_hit(setup, "red.png")], "  ", [setup.blip])


class _Broken:
    """A reranker that breaks the contract: one score too few."""

    name = "broken"
    kinds = frozenset({"text"})

    def score(self, query: str, candidates: Sequence[Candidate]) -> np.ndarray:
        return np.zeros(len(candidates) - 1, dtype=np.float32)


def test_a_reranker_returning_the_wrong_count_is_an_error(setup: Setup) -> None:
    with pytest.raises(ValueError, match="returned 0 scores for 1 candidates"):
        rerank_hits(setup.lib.catalog, [_hit(setup, "note.txt")], "coast", [_Broken()])
