"""A generated multimodal library with known answers, for ``bench_fusion.py``.

Items (file names are random hex, so item ids say nothing about roles):

* videos (``.mp4``, H.264 + AAC): scenes of one generated shape each
  (``mmsearch.datasets.synthetic.draw``), a sound track of tones and noise, and a
  ``.srt`` sidecar whose cue ``i`` is said while scene ``i`` is on screen;
* captioned stills: a ``.png`` of one shape and its ``.txt`` caption sidecar;
* text notes (``.txt``): a few sentences;
* recordings (``.wav``): tones and noise, nothing else.

Every picture shows one shape with a distinct (colour, shape, size, position), so
``builtin:demo`` can tell each from every other. Every text says phrases of two
invented words, ``<place> <object>`` ("the vostrik palumen"), which no picture shows
and no image–text model knows; each place word is in about two phrases and each
object word in about four, so a phrase's words alone also point at distractors.

Queries, three kinds, each with its relevant items:

* ``picture``: a caption of one picture (size and position sometimes left out),
  kept only when exactly one item shows a picture that fits it;
* ``text``: ``<place> <object>`` of a phrase said in exactly one item;
* ``both``: ``<shape>, <place> <object>`` (or the phrase first: half of them) built from a *triad*: the target shows the
  shape while it says the phrase (a video: in the same scene and cue; a photo: the
  picture and its caption); one distractor shows the same shape (same colour, shape
  and size, another position) and does not say the phrase; another says the phrase
  and shows no such shape. Only the target is relevant.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.datasets.synthetic import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    codes,
    describe,
    draw,
    mention_codes,
    mention_matches,
)

TESTS = Path(__file__).resolve().parents[1] / "tests"
SCENE_S = 3.0
"""Seconds each scene of a video is on screen."""
FRAME_SIDE = 96
PHOTO_SIDE = 128
CUE_TEMPLATES = (
    "we finally reached the {}",
    "look, the {} is right over there",
    "nobody remembers the old {}",
    "my grandmother told me about the {}",
    "tomorrow we will visit the {}",
    "this is the famous {}",
)
CAPTION_TEMPLATES = ("holiday snapshot of the {}", "the {} last summer", "postcard: the {}")
_ONSETS = ("b", "br", "d", "dr", "f", "g", "gl", "k", "kr", "l", "m", "n", "p", "pl", "qu",
           "r", "s", "sk", "t", "tr", "v", "z", "zh")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "", "n", "r", "s", "k", "th", "l", "m")
_AVOID = ("red", "blue", "green", "circle", "square", "star", "cross", "large", "small", "left")


@dataclass(frozen=True)
class Scale:
    videos: int
    photos: int
    notes: int
    recordings: int
    scenes: int = 4
    cues: int = 3
    picture_queries: int = 40
    text_queries: int = 40
    both_queries: int = 30


FULL = Scale(videos=40, photos=40, notes=20, recordings=10)
QUICK = Scale(
    videos=16,
    photos=16,
    notes=8,
    recordings=4,
    picture_queries=15,
    text_queries=15,
    both_queries=10,
)


@dataclass
class Item:
    """One file of the corpus and what it holds (pictures: synthetic attrs; phrases)."""

    kind: str  # video, photo, note, recording
    name: str
    pictures: list[dict[str, Any] | None] = field(default_factory=list)
    phrases: list[str | None] = field(default_factory=list)
    sounds: list[tuple[float | str, float]] = field(default_factory=list)

    @property
    def path_suffix(self) -> str:
        return {"video": ".mp4", "photo": ".png", "note": ".txt", "recording": ".wav"}[self.kind]


@dataclass(frozen=True)
class QuerySpec:
    kind: str  # picture, text, both
    text: str
    relevant: frozenset[str]
    """Names of the relevant items."""
    variant: str = ""
    """``both`` queries: ``shape first`` or ``phrase first`` (the word order)."""


@dataclass
class Corpus:
    folder: Path
    items: list[Item]
    queries: list[QuerySpec]

    def path(self, item: Item) -> str:
        return str(self.folder / (item.name + item.path_suffix))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for it in self.items:
            out[it.kind] = out.get(it.kind, 0) + 1
        return out


# -- invented words -----------------------------------------------------------------


def invented_words(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct pronounceable non-words (two or three syllables)."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        syl = int(rng.integers(2, 4))
        word = "".join(
            str(rng.choice(_ONSETS)) + str(rng.choice(_VOWELS)) for _ in range(syl)
        ) + str(rng.choice(_CODAS))
        if word in seen or len(word) < 5 or any(a in word for a in _AVOID):
            continue
        seen.add(word)
        out.append(word)
    return out


def phrase_pool(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct ``place object`` phrases; places in ~2 phrases, objects in ~4."""
    places = invented_words(rng, max(2, n // 2 + 1))
    objects = invented_words(np.random.default_rng(rng.integers(1 << 31)), max(2, n // 4 + 1))
    objects = [o for o in objects if o not in places]
    combos = [f"{p} {o}" for p, o in itertools.product(places, objects)]
    order = rng.permutation(len(combos))
    # Cycle the places so each is used about equally often.
    by_place: dict[str, list[str]] = {}
    for i in order:
        c = combos[int(i)]
        by_place.setdefault(c.split()[0], []).append(c)
    out: list[str] = []
    while len(out) < n:
        for p in places:
            if by_place[p] and len(out) < n:
                out.append(by_place[p].pop())
    return out


# -- layout -------------------------------------------------------------------------


def plan(scale: Scale, seed: int = 0) -> tuple[list[Item], list[QuerySpec]]:
    """The items (without files) and the queries with their relevant items."""
    rng = np.random.default_rng(seed)
    names = iter(f"{int(v):08x}" for v in rng.choice(1 << 32, size=10_000, replace=False))
    items = [Item("video", next(names), [None] * scale.scenes, [None] * scale.cues)
             for _ in range(scale.videos)]  # fmt: skip
    items += [Item("photo", next(names), [None], [None]) for _ in range(scale.photos)]
    items += [Item("note", next(names), [], [None] * 3) for _ in range(scale.notes)]
    items += [Item("recording", next(names)) for _ in range(scale.recordings)]
    visual = [it for it in items if it.kind in ("video", "photo")]
    texty = [it for it in items if it.kind in ("video", "photo", "note")]
    n_phrases = sum(len(it.phrases) for it in items)
    phrases = iter(phrase_pool(rng, n_phrases))

    triads: list[tuple[dict[str, Any], str]] = []
    all_csz = list(itertools.product(COLOURS, SHAPES, SIZES))
    reserved = [all_csz[int(i)] for i in rng.permutation(len(all_csz))[: scale.both_queries]]
    for colour, shape, size in reserved:
        target = _pick_slot(rng, visual, both=True)
        shaper = _pick_slot(rng, [v for v in visual if v is not target[0]], picture=True)
        sayer = _pick_slot(rng, [t for t in texty if t not in (target[0], shaper[0])], text=True)
        p1, p2 = (str(p) for p in rng.choice(POSITIONS, size=2, replace=False))
        base = {"count": 1, "colour": colour, "shape": shape, "size": size}
        phrase = next(phrases)
        target[0].pictures[target[1]] = {**base, "position": p1}
        target[0].phrases[target[1]] = phrase
        shaper[0].pictures[shaper[1]] = {**base, "position": p2}
        sayer[0].phrases[sayer[1]] = phrase
        triads.append((base, phrase))

    reserved_set = set(reserved)
    free_keys = [k for k in itertools.product(COLOURS, SHAPES, SIZES, POSITIONS)
                 if k[:3] not in reserved_set]  # fmt: skip
    keys = iter(free_keys[int(i)] for i in rng.permutation(len(free_keys)))
    for it in items:
        for i, pic in enumerate(it.pictures):
            if pic is None:
                c, s, z, p = next(keys)
                it.pictures[i] = {"count": 1, "colour": c, "shape": s, "size": z, "position": p}
        for i, ph in enumerate(it.phrases):
            if ph is None:
                it.phrases[i] = next(phrases)
        if it.kind in ("video", "recording"):
            n = scale.scenes if it.kind == "video" else int(rng.integers(2, 5))
            it.sounds = [_sound(rng) for _ in range(n)]
    queries = _picture_queries(rng, items, scale.picture_queries)
    queries += _text_queries(rng, items, triads, scale.text_queries)
    queries += _both_queries(rng, items, triads)
    return items, queries


def _pick_slot(
    rng: np.random.Generator,
    pool: Sequence[Item],
    *,
    both: bool = False,
    picture: bool = False,
    text: bool = False,
) -> tuple[Item, int]:
    """A random item of ``pool`` and the index of a free slot of the kinds asked."""
    for i in rng.permutation(len(pool)):
        it = pool[int(i)]
        slots = []
        for j in range(max(len(it.pictures), len(it.phrases))):
            pic_free = j < len(it.pictures) and it.pictures[j] is None
            txt_free = j < len(it.phrases) and it.phrases[j] is None
            if (both and pic_free and txt_free) or (picture and pic_free) or (text and txt_free):
                slots.append(j)
        if slots:
            return it, int(rng.choice(slots))
    raise ValueError("corpus too small for the queries asked: add items or ask fewer")


def _sound(rng: np.random.Generator) -> tuple[float | str, float]:
    if rng.random() < 0.25:
        return "noise", SCENE_S
    return float(rng.choice([220.0, 330.0, 440.0, 660.0, 880.0, 1320.0])), SCENE_S


def _pictures(items: Sequence[Item]) -> tuple[np.ndarray, list[str]]:
    rows, owners = [], []
    for it in items:
        for pic in it.pictures:
            assert pic is not None
            rows.append(codes(pic))
            owners.append(it.name)
    return np.stack(rows), owners


def _picture_queries(rng: np.random.Generator, items: Sequence[Item], n: int) -> list[QuerySpec]:
    pics, owners = _pictures(items)
    out: list[QuerySpec] = []
    candidates = [(it, pic) for it in items for pic in it.pictures if pic is not None]
    for i in rng.permutation(len(candidates)):
        it, pic = candidates[int(i)]
        text, mention = describe(dict(pic), "en", rng, partial_prob=0.4)
        fits = mention_matches(mention_codes(mention)[None], pics)[0]
        relevant = frozenset(owners[j] for j in np.flatnonzero(fits))
        if relevant == {it.name}:
            out.append(QuerySpec("picture", text, relevant))
        if len(out) == n:
            break
    return out


def _text_queries(
    rng: np.random.Generator,
    items: Sequence[Item],
    triads: Sequence[tuple[dict[str, Any], str]],
    n: int,
) -> list[QuerySpec]:
    said: dict[str, set[str]] = {}
    for it in items:
        for ph in it.phrases:
            assert ph is not None
            said.setdefault(ph, set()).add(it.name)
    in_triads = {ph for _, ph in triads}
    unique = sorted(ph for ph, who in said.items() if len(who) == 1 and ph not in in_triads)
    picks = [unique[int(i)] for i in rng.permutation(len(unique))[:n]]
    return [QuerySpec("text", ph, frozenset(said[ph])) for ph in picks]


def _both_queries(
    rng: np.random.Generator, items: Sequence[Item], triads: Sequence[tuple[dict[str, Any], str]]
) -> list[QuerySpec]:
    pics, owners = _pictures(items)
    out: list[QuerySpec] = []
    for base, phrase in triads:
        shape_text, mention = describe(dict(base), "en", rng)
        fits = mention_matches(mention_codes(mention)[None], pics)[0]
        showing = {owners[j] for j in np.flatnonzero(fits)}
        saying = {it.name for it in items if phrase in it.phrases}
        relevant = frozenset(showing & saying)
        assert len(relevant) == 1 and len(showing) == 2 and len(saying) == 2, (showing, saying)
        if rng.random() < 0.5:
            out.append(QuerySpec("both", f"{shape_text}, {phrase}", relevant, "shape first"))
        else:
            out.append(QuerySpec("both", f"{phrase}, {shape_text}", relevant, "phrase first"))
    return out


# -- files --------------------------------------------------------------------------


def _sentence(rng: np.random.Generator, templates: Sequence[str], phrase: str) -> str:
    return str(rng.choice(templates)).format(phrase)


def write(items: Sequence[Item], folder: Path, seed: int = 0) -> None:
    """Write every item's files (and sidecars) into ``folder``."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from media_gen import make_audio, write_srt, write_video

    rng = np.random.default_rng([seed, 1])
    folder.mkdir(parents=True, exist_ok=True)
    for it in items:
        base = folder / it.name
        if it.kind == "video":
            frames = []
            for i, pic in enumerate(it.pictures):
                assert pic is not None
                img = np.asarray(draw(dict(pic), rng, FRAME_SIDE))
                frames += [(i * SCENE_S + k * 0.5, img) for k in range(int(SCENE_S * 2))]
            write_video(base.with_suffix(".mp4"), frames, size=(FRAME_SIDE, FRAME_SIDE),
                        fps=2, audio=it.sounds)  # fmt: skip
            cues = [(i * SCENE_S + 0.5, i * SCENE_S + 2.5, _sentence(rng, CUE_TEMPLATES, ph or ""))
                    for i, ph in enumerate(it.phrases)]  # fmt: skip
            write_srt(base.with_suffix(".srt"), cues)
        elif it.kind == "photo":
            pic = it.pictures[0]
            assert pic is not None
            draw(dict(pic), rng, PHOTO_SIDE).save(base.with_suffix(".png"))
            caption = _sentence(rng, CAPTION_TEMPLATES, it.phrases[0] or "")
            base.with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
        elif it.kind == "note":
            lines = [
                _sentence(rng, CUE_TEMPLATES, ph or "").capitalize() + "." for ph in it.phrases
            ]
            base.with_suffix(".txt").write_text(" ".join(lines) + "\n", encoding="utf-8")
        else:
            make_audio(base.with_suffix(".wav"), it.sounds, sample_rate=16000)


def build(folder: Path, scale: Scale, seed: int = 0) -> Corpus:
    items, queries = plan(scale, seed)
    write(items, folder, seed)
    return Corpus(folder, items, queries)
