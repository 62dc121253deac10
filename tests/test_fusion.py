"""One answer from all the evidence: default targets, calibrated fusion, moments, cut-off.

A library of generated shape photos (builtin:demo), a video whose frames show shapes
and whose subtitles say a phrase no picture shows, a text note, and a recording in an
audio space with a random-weight CLAP model (it knows nothing of any query).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mmsearch import Library
from mmsearch.datasets.synthetic import draw, generate
from mmsearch.errors import QueryError

from media_gen import make_audio, write_srt, write_video
from tiny_av_models import make_tiny_clap

PHRASE = "the zanzibar lighthouse keeper"


def _shape(colour: str, shape: str, position: str = "centre", seed: int = 0) -> np.ndarray:
    attrs = {"count": 1, "shape": shape, "colour": colour, "size": "large", "position": position}
    return np.asarray(draw(attrs, np.random.default_rng(seed), size=64).convert("RGB"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("fusion")
    media = root / "media"
    media.mkdir()
    photos = generate(40, seed=5)
    for i, s in enumerate(photos):
        s.image.save(media / f"photo{i:02d}.png")
    for i, where in enumerate(("left", "right", "top")):
        Image.fromarray(_shape("red", "circle", where, seed=i)).save(media / f"red{i}.png")
    # 0-4 s a red circle, 4-9 s a green triangle, 9-14 s a blue square; the phrase is
    # said at 5-7 s, while nothing on screen shows it.
    frames = []
    for t in np.arange(0, 14, 0.5):
        what = (
            ("red", "circle") if t < 4 else ("green", "triangle") if t < 9 else ("blue", "square")
        )
        frames.append((float(t), _shape(*what)))
    video = write_video(media / "trip.mp4", frames, size=(64, 64), fps=2)
    write_srt(media / "trip.srt", [(1.0, 3.0, "we set off in the morning"), (5.0, 7.0, PHRASE)])
    (media / "note.txt").write_text("Shopping list: bread, olive oil, and tea.")
    make_audio(media / "tones.wav", [(440.0, 3.0), (880.0, 3.0)], sample_rate=8000)
    clap = make_tiny_clap(root / "clap")
    lib = Library.open(root / "lib", model="builtin:demo", audio_model=str(clap))
    lib.add([media], workers=0)
    yield {"lib": lib, "media": media, "video": video, "photos": photos}
    lib.close()


def _name(hit: Any) -> str:
    return Path(hit.path).name


def test_a_text_query_finds_the_subtitle_by_default(corpus: dict[str, Any]) -> None:
    lib = corpus["lib"]
    hits = lib.search("zanzibar lighthouse", k=5)
    assert hits and _name(hits[0]) == "trip.mp4"
    top = hits[0]
    # The moment is the cue that matched, not a stretch of frames.
    assert top.segments[0].kind == "subtitle"
    assert (top.segments[0].t_start, top.segments[0].t_end) == (5.0, 7.0)
    sources = {e.source for e in top.evidence}
    assert "lexical" in sources
    lex = next(e for e in top.evidence if e.source == "lexical")
    marked = [lex.text[a:b].lower() for a, b in lex.highlights]  # type: ignore[index]
    assert marked == ["zanzibar", "lighthouse"]
    d = top.to_dict()
    assert d["evidence"] and d["segments"][0]["highlights"]


def test_hybrid_moments_come_from_the_matched_cue(corpus: dict[str, Any]) -> None:
    hits = corpus["lib"].search("zanzibar lighthouse", k=3, mode="hybrid")
    assert hits[0].segments[0].t_start == 5.0


def test_type_text_returns_text_items(corpus: dict[str, Any]) -> None:
    hits = corpus["lib"].search("olive oil", k=5, filters={"type": "text"})
    assert [_name(h) for h in hits] == ["note.txt"]
    other = corpus["lib"].search("a red circle", k=5, filters={"type": "text"})
    assert [_name(h) for h in other] == ["note.txt"] and other[0].score < 0.01


def test_an_uninformative_audio_space_stays_below_real_picture_matches(
    corpus: dict[str, Any],
) -> None:
    lib = corpus["lib"]
    hits = lib.search("a large red circle", k=30)
    audio_sources = {"audio/audio"}
    assert any(audio_sources & {e.source for e in h.evidence} for h in hits), (
        "the audio space must have been searched"
    )
    recording = [i for i, h in enumerate(hits) if _name(h) == "tones.wav"]
    pictures = [i for i, h in enumerate(hits) if h.modality == "image" and h.score > 0.9]
    assert len(pictures) >= 2
    assert recording and recording[0] > max(pictures)
    # Under reciprocal-rank fusion, the recording ties with the best picture (each is
    # first in its own list) and sits among the real matches.
    rrf = lib.search("a large red circle", k=5, fusion="rrf")
    tones = next(h for h in rrf[:3] if _name(h) == "tones.wav")
    assert any(
        h.modality == "image" and round(h.signals["rrf"], 9) == round(tones.signals["rrf"], 9)
        for h in rrf
    )


def test_scores_share_one_scale_and_the_cut_off_says_so(corpus: dict[str, Any]) -> None:
    lib = corpus["lib"]
    for mode in ("vector", "lexical", "hybrid"):
        hits = lib.search("zanzibar lighthouse", k=5, mode=mode)
        assert hits, mode
        assert all(0.0 <= h.score <= 1.0 for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    kept = lib.search("a large red circle", k=50, min_score=0.9)
    assert kept and all(h.score >= 0.9 for h in kept)
    assert len(kept) < len(lib.search("a large red circle", k=50))
    none = lib.search("olive oil", k=5, min_score=0.999999, mode="vector", modality="audio")
    assert none == [] and none.best_below is not None
    assert none.note() is not None and none.note().startswith("no confident match; best was ")


def test_ties_are_broken_by_evidence_not_chance(corpus: dict[str, Any]) -> None:
    lib = corpus["lib"]
    first = [h.item_id for h in lib.search("a square", k=20, fusion="rrf")]
    again = [h.item_id for h in lib.search("a square", k=20, fusion="rrf")]
    assert first and first == again
    hits = lib.search("a square", k=20, fusion="rrf")
    for a, b in zip(hits, hits[1:], strict=False):
        if round(a.signals["rrf"], 12) == round(b.signals["rrf"], 12):
            assert a.signals["evidence"] >= b.signals["evidence"]


def test_weights_silence_a_source(corpus: dict[str, Any]) -> None:
    lib = corpus["lib"]
    hits = lib.search("zanzibar lighthouse", k=5, weights={"lexical": 0, "main/text": 0})
    top = [h for h in hits if _name(h) == "trip.mp4"]
    assert not top or top[0].score < lib.search("zanzibar lighthouse", k=1)[0].score
    with pytest.raises(QueryError):
        lib.search("x", weights={"lexical": -1})


def test_feedback_refines_the_query(corpus: dict[str, Any]) -> None:
    lib = corpus["lib"]
    base = lib.search("a circle", k=10, modality="image")
    liked = base[3].item_id
    refined = lib.search("a circle", k=10, modality="image", like=[liked])
    assert [h.item_id for h in refined] != [h.item_id for h in base]
    assert liked not in [h.item_id for h in refined]
    disliked = base[0].item_id
    pushed = lib.search("a circle", k=10, modality="image", unlike=disliked)
    assert disliked not in [h.item_id for h in pushed]
    # A liked photo has no vectors in the audio space: that space still takes part.
    mixed = lib.search("a circle", k=30, like=[liked])
    assert any("audio/audio" in {e.source for e in h.evidence} for h in mixed)


def test_recommend_more_like_these(corpus: dict[str, Any]) -> None:
    lib = corpus["lib"]
    photos = [h.item_id for h in lib.search("a red circle", k=3, modality="image")]
    recs = lib.recommend(photos[:2], k=5)
    ids = [h.item_id for h in recs]
    assert recs and not set(photos[:2]) & set(ids)
    skip = ids[0]
    assert skip not in [h.item_id for h in lib.recommend(photos[:2], exclude=[skip], k=5)]
    varied = lib.recommend(photos[:2], k=5, diversity=0.8)
    assert varied and [h.item_id for h in varied] != ids
    recent = lib.recommend(photos[:2], k=5, recency=0.9)
    assert recent
    with pytest.raises(QueryError):
        lib.recommend([], k=3)
    with pytest.raises(QueryError):
        lib.recommend(photos[:1], diversity=2.0)


def test_near_duplicates_fold_into_one_hit(tmp_path: Path) -> None:
    media = tmp_path / "m"
    media.mkdir()
    samples = generate(12, seed=9)
    for i, s in enumerate(samples):
        s.image.save(media / f"p{i:02d}.png")
    samples[0].image.resize((128, 128)).save(media / "p00_big.png")
    samples[0].image.save(media / "p00_copy.jpg", quality=90)
    with Library.open(tmp_path / "lib", model="builtin:demo") as lib:
        lib.add([media], workers=0)
        copies = lib.search(image=str(media / "p00.png"), k=14)
        names = [_name(h) for h in copies]
        assert {"p00_big.png", "p00_copy.jpg"} <= set(names)
        folded = lib.search(image=str(media / "p00.png"), k=14, dedupe=True)
        top = folded[0]
        assert _name(top) == "p00.png"
        by_id = {h.item_id: _name(h) for h in copies}
        assert sorted(by_id[i] for i in top.similar) == ["p00_big.png", "p00_copy.jpg"]
        others = [_name(h) for h in folded]
        assert "p00_big.png" not in others and "p00_copy.jpg" not in others
        # distinct photos stay distinct
        assert len(folded) >= 9


class KeywordReranker:
    """A text reranker that knows one word: the protocol's behaviour made exact."""

    name = "keyword"
    kinds = frozenset({"text"})

    def __init__(self, word: str) -> None:
        self.word = word

    def score(self, query: str, candidates: Any) -> np.ndarray:
        return np.array(
            [0.999 if self.word in (c.text or "").lower() else 0.01 for c in candidates],
            dtype=np.float32,
        )


def test_a_reranker_verdict_joins_the_evidence(corpus: dict[str, Any]) -> None:
    lib = corpus["lib"]
    plain = lib.search("olive oil tea", k=10)
    ranked = lib.search("olive oil tea", k=10, rerank=KeywordReranker("bread"), rerank_top=10)
    note = next(h for h in ranked if _name(h) == "note.txt")
    before = next(h for h in plain if _name(h) == "note.txt")
    verdict = [e for e in note.evidence if e.source == "rerank:keyword"]
    assert verdict and verdict[0].raw == pytest.approx(0.999, abs=1e-6)
    # The verdict adds to what the first stage found; it does not replace it.
    assert note.signals["first_stage"] == pytest.approx(before.signals["evidence"])
    assert note.signals["evidence"] > note.signals["first_stage"] + 2.5
    assert _name(ranked[0]) == "note.txt"
    # A photo the text reranker cannot read keeps its first-stage evidence.
    photo = next(h for h in ranked if h.modality == "image")
    same = next(h for h in plain if h.item_id == photo.item_id)
    assert photo.signals["evidence"] == pytest.approx(same.signals["evidence"])
