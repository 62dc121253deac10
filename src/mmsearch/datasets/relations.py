"""Two-shape scenes and their confusers: the data of relation and binding tests.

A scene is two coloured shapes in a relation ("a red circle left of a blue
square"). Its *confusers* hold the same words bound differently: the shapes
trade places (swapped relation), trade colours, or trade sizes. A caption of
the scene describes none of its confusers, yet a model that sees a bag of
words ("red", "blue", "circle", "square", "left of") cannot tell them apart.

Layouts: ``standard`` draws as :mod:`~mmsearch.datasets.synthetic` does (the
shapes at fixed thirds of the frame, as the demo model was trained), ``free``
places them anywhere the relation still clearly holds (the horizontal gap
dominates for "left of", the vertical one for "above"), at the same sizes. Everything is deterministic by
``(seed, index)``; captions and the attribute codes behind them come from
:mod:`~mmsearch.datasets.synthetic`, so ``mention_matches`` says which images
a caption describes.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from PIL import Image

from mmsearch.datasets.synthetic import (
    FIELDS,
    SyntheticSample,
    counterparts,
    describe,
    draw_boxes,
    sample_attrs,
    uses_heldout_combo,
)
from mmsearch.datasets.synthetic import draw as draw_standard

Layout = Literal["standard", "free", "mixed"]
LAYOUTS: tuple[str, ...] = ("standard", "free", "mixed")
Box = tuple[float, float, float]
"""(cx, cy, radius) of one shape, as fractions of the image side."""

CONFUSER_KINDS: tuple[str, ...] = ("swap-places", "swap-colours", "swap-sizes")


# ---------------------------------------------------------------------------
# confusers


def _swap_sizes(attrs: dict[str, Any]) -> dict[str, Any] | None:
    if attrs["size"] == attrs["size2"]:
        return None
    return {**attrs, "size": attrs["size2"], "size2": attrs["size"]}


def confusers(attrs: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(kind, attrs)`` of each confuser of a two-shape scene (none for one shape).

    ``swap-places`` ("a blue square left of a red circle") always exists;
    ``swap-colours`` ("a blue circle left of a red square") when both the
    colours and the shapes differ; ``swap-sizes`` when the sizes differ.
    """
    if attrs["count"] != 2:
        return []
    base = {k: v for k, v in attrs.items() if k in FIELDS}
    swapped = counterparts(base)  # [places] or [places, colours]
    out = [("swap-places", swapped[0])]
    if len(swapped) > 1:
        out.append(("swap-colours", swapped[1]))
    sizes = _swap_sizes(base)
    if sizes is not None:
        out.append(("swap-sizes", sizes))
    return out


# ---------------------------------------------------------------------------
# layout and drawing


def _radius(rng: np.random.Generator, size: str) -> float:
    """The radii ``synthetic`` draws two shapes with: only the placement is new."""
    return float(rng.uniform(0.09, 0.11) if size == "small" else rng.uniform(0.16, 0.19))


def free_boxes(attrs: dict[str, Any], rng: np.random.Generator) -> list[Box]:
    """Two boxes anywhere in the frame with the relation of ``attrs`` clearly true.

    Along the relation's axis the shapes do not overlap (gap >= 0.03); across it
    they differ by at most half the distance along it, so "left of" is never
    also read as "above".
    """
    r1, r2 = _radius(rng, attrs["size"]), _radius(rng, attrs["size2"])
    horizontal = attrs["relation"] == "left of"
    while True:
        p1 = rng.uniform([r1, r1], [1 - r1, 1 - r1])
        p2 = rng.uniform([r2, r2], [1 - r2, 1 - r2])
        d = p2 - p1
        along, across = (d[0], d[1]) if horizontal else (d[1], d[0])
        if along >= r1 + r2 + 0.03 and abs(across) <= 0.5 * along:
            return [(float(p1[0]), float(p1[1]), r1), (float(p2[0]), float(p2[1]), r2)]


def draw_scene(
    attrs: dict[str, Any], rng: np.random.Generator, layout: str, size: int = 64
) -> Image.Image:
    """Draw a two-shape scene in ``layout`` (``mixed``: standard or free, even odds)."""
    if layout == "mixed":
        layout = "free" if rng.random() < 0.5 else "standard"
    if layout == "standard":
        return draw_standard(attrs, rng, size)
    if layout == "free":
        return draw_boxes(attrs, free_boxes(attrs, rng), rng, size)
    raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")


# ---------------------------------------------------------------------------
# public entry points


def _sample(
    attrs: dict[str, Any], rng: np.random.Generator, layout: str, size: int, group: int, role: str
) -> SyntheticSample:
    attrs = dict(attrs)
    image = draw_scene(attrs, rng, layout, size)
    caption_en, _ = describe(attrs, "en", rng)
    caption_zh, _ = describe(attrs, "zh", rng)
    extra = {"group": group, "role": role}
    return SyntheticSample(image, caption_en, caption_zh, attrs, caption_en, extra)


def scene_group(
    seed: int,
    index: int,
    *,
    layout: Layout = "free",
    size: int = 64,
    with_confusers: bool = True,
    heldout: bool | None = None,
) -> list[SyntheticSample]:
    """Group ``index`` of ``seed``: a two-shape scene, then (optionally) each of its confusers.

    Every sample carries ``extra = {"group": index, "role": "scene" | <confuser kind>}``.
    ``heldout`` True keeps only scenes using a colour×shape of ``HELDOUT_COMBOS``,
    False only scenes that use none; None takes any.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    rng = np.random.default_rng([seed, index, 7])
    while True:
        attrs = sample_attrs(rng, pair_prob=1.0)
        if heldout is None or uses_heldout_combo(attrs) == heldout:
            break
    out = [_sample(attrs, rng, layout, size, index, "scene")]
    if with_confusers:
        out += [_sample(c, rng, layout, size, index, kind) for kind, c in confusers(attrs)]
    return out


def generate_scenes(
    n_groups: int,
    seed: int,
    *,
    layout: Layout = "free",
    size: int = 64,
    with_confusers: bool = True,
    heldout: bool | None = None,
) -> list[SyntheticSample]:
    """``n_groups`` scene groups (see :func:`scene_group`), concatenated in order."""
    out: list[SyntheticSample] = []
    for index in range(n_groups):
        out += scene_group(
            seed, index, layout=layout, size=size, with_confusers=with_confusers, heldout=heldout
        )
    return out
