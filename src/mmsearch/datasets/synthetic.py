"""Deterministic generator of captioned images: coloured shapes on light backgrounds.

Each image holds one shape (with a size and a position) or two shapes in a
spatial relation ("a red circle left of a blue square"). Captions come in
English and Chinese from several phrasing templates. Everything is drawn from
``numpy`` generators seeded by ``(seed, index)``, so sample ``i`` of a seed is
the same whatever ``n`` is.

The attributes behind a caption are kept as a flat ``attrs`` dict. A caption
may mention only part of them (``describe(..., partial_prob=...)``); the
mention is returned with the caption so a trainer knows every image it fits
(``codes`` and ``mention_matches``). A named split keeps some colour×shape
combinations out of training (``HELDOUT_COMBOS``) to measure generalisation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

Lang = Literal["en", "zh", "both"]
Split = Literal["all", "train", "heldout"]

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (245, 215, 0),
    "purple": (140, 40, 170),
    "orange": (245, 135, 0),
    "white": (255, 255, 255),
    "black": (20, 20, 20),
}
SIZES: tuple[str, ...] = ("small", "large")
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "centre")
RELATIONS: tuple[str, ...] = ("left of", "above")
"""Relations as stored in ``attrs``: the first shape is left of / above the second."""

HELDOUT_COMBOS: frozenset[tuple[str, str]] = frozenset(
    {
        ("red", "triangle"),
        ("green", "star"),
        ("blue", "cross"),
        ("yellow", "square"),
        ("purple", "circle"),
        ("white", "star"),
        ("black", "triangle"),
        ("orange", "cross"),
    }
)
"""Colour×shape combinations of the "heldout" split, never drawn in the "train" split."""

FIELDS: tuple[str, ...] = (
    "count",
    "shape",
    "colour",
    "size",
    "position",
    "relation",
    "shape2",
    "colour2",
    "size2",
)
FIELD_VALUES: dict[str, tuple[Any, ...]] = {
    "count": (1, 2),
    "shape": SHAPES,
    "colour": tuple(COLOURS),
    "size": SIZES,
    "position": POSITIONS,
    "relation": RELATIONS,
    "shape2": SHAPES,
    "colour2": tuple(COLOURS),
    "size2": SIZES,
}
"""The values each field of ``FIELDS`` takes; a code is an index into these."""
ABSENT = -2
"""Code of a field an image does not have (e.g. ``position`` when there are two shapes)."""
WILDCARD = -1
"""Code of a field a caption does not mention: it fits any value."""

# ---------------------------------------------------------------------------
# phrase tables

_EN_SIZE = {"small": ("small", "little"), "large": ("large", "big")}
_EN_POS = {
    "left": ("on the left", "at the left", "on the left side"),
    "right": ("on the right", "at the right", "on the right side"),
    "top": ("at the top", "near the top", "in the upper part"),
    "bottom": ("at the bottom", "near the bottom", "in the lower part"),
    "centre": ("in the centre", "in the center", "in the middle"),
}
_EN_REL = {
    "left of": ("left of", "to the left of", "on the left of"),
    "right of": ("right of", "to the right of", "on the right of"),
    "above": ("above", "over", "on top of"),
    "below": ("below", "under", "beneath"),
}
_EN_THING = ("shape", "object")
_EN_SINGLE = ("{obj} {pos}", "a picture of {obj} {pos}", "there is {obj} {pos}", "{pos}, {obj}")
_EN_SINGLE_NOPOS = ("{obj}", "a picture of {obj}", "there is {obj}", "an image of {obj}")
_EN_PAIR = ("{a} {rel} {b}", "a picture of {a} {rel} {b}", "there is {a} {rel} {b}")

_ZH_COLOUR = {
    "red": "红色",
    "green": "绿色",
    "blue": "蓝色",
    "yellow": "黄色",
    "purple": "紫色",
    "orange": "橙色",
    "white": "白色",
    "black": "黑色",
}
_ZH_SHAPE = {
    "circle": "圆形",
    "square": "正方形",
    "triangle": "三角形",
    "star": "星形",
    "cross": "十字形",
}
_ZH_SIZE = {"small": ("小", "较小"), "large": ("大", "较大")}
_ZH_POS = {
    "left": ("左边", "左侧"),
    "right": ("右边", "右侧"),
    "top": ("上面", "上方"),
    "bottom": ("下面", "下方"),
    "centre": ("中间", "中央"),
}
_ZH_REL = {
    "left of": ("左边", "左侧"),
    "right of": ("右边", "右侧"),
    "above": ("上面", "上方"),
    "below": ("下面", "下方"),
}
_ZH_THING = ("图形", "形状")
_ZH_SINGLE = ("{pos}有{obj}", "{obj}在{pos}", "图片{pos}是{obj}", "画面的{pos}有{obj}")
_ZH_SINGLE_NOPOS = ("{obj}", "图片里有{obj}", "画面中是{obj}", "有{obj}")
_ZH_PAIR = ("{a}在{b}的{rel}", "{b}的{rel}有{a}", "图片中{a}在{b}的{rel}")
_SWAP = {"left of": "right of", "above": "below"}


@dataclass
class SyntheticSample:
    """One generated image with its captions and the attributes they describe."""

    image: Image.Image
    caption_en: str
    caption_zh: str
    attrs: dict[str, Any]
    caption: str = ""
    """The caption in the language asked for (``lang="both"`` picks one per sample)."""
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# attributes


def uses_heldout_combo(attrs: dict[str, Any]) -> bool:
    """True when any shape of ``attrs`` is a colour×shape combination in ``HELDOUT_COMBOS``."""
    if (attrs["colour"], attrs["shape"]) in HELDOUT_COMBOS:
        return True
    return attrs["count"] == 2 and (attrs["colour2"], attrs["shape2"]) in HELDOUT_COMBOS


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def sample_attrs(rng: np.random.Generator, pair_prob: float = 0.5) -> dict[str, Any]:
    """Draw the symbolic content of one image (no geometry yet)."""
    attrs: dict[str, Any] = {
        "count": 1,
        "shape": _pick(rng, SHAPES),
        "colour": _pick(rng, tuple(COLOURS)),
        "size": _pick(rng, SIZES),
    }
    if rng.random() < pair_prob:
        attrs["count"] = 2
        attrs["relation"] = _pick(rng, RELATIONS)
        while True:
            shape2, colour2 = _pick(rng, SHAPES), _pick(rng, tuple(COLOURS))
            if (shape2, colour2) != (attrs["shape"], attrs["colour"]):
                break
        attrs.update(shape2=shape2, colour2=colour2, size2=_pick(rng, SIZES))
    else:
        attrs["position"] = _pick(rng, POSITIONS)
    return attrs


def codes(attrs: dict[str, Any]) -> NDArray[np.int64]:
    """Integer code per field of ``FIELDS``: value index, or ``ABSENT``."""
    out = np.full(len(FIELDS), ABSENT, dtype=np.int64)
    for i, name in enumerate(FIELDS):
        if name in attrs and attrs[name] is not None:
            out[i] = FIELD_VALUES[name].index(attrs[name])
    return out


def mention_codes(mention: dict[str, Any]) -> NDArray[np.int64]:
    """Like ``codes`` but fields a caption leaves out are ``WILDCARD`` (they fit anything)."""
    out = codes(mention)
    out[out == ABSENT] = WILDCARD
    return out


def mention_matches(mentions: NDArray[np.int64], images: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Boolean (n_mentions, n_images) matrix: does caption ``i`` describe image ``j``?"""
    m = mentions[:, None, :]
    a = images[None, :, :]
    return np.all((m == WILDCARD) | (m == a), axis=-1)


# ---------------------------------------------------------------------------
# captions


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _en_object(
    rng: np.random.Generator, colour: str | None, shape: str | None, size: str | None
) -> str:
    words = [_pick(rng, _EN_SIZE[size])] if size else []
    words += [colour] if colour else []
    return _article(" ".join([*words, shape or _pick(rng, _EN_THING)]))


def _zh_object(
    rng: np.random.Generator,
    colour: str | None,
    shape: str | None,
    size: str | None,
    *,
    article: bool,
) -> str:
    c = _ZH_COLOUR[colour] if colour else ""
    s = _ZH_SHAPE[shape] if shape else _pick(rng, _ZH_THING)
    z = _pick(rng, _ZH_SIZE[size]) if size else ""
    if not c:
        body = _pick(rng, (f"{z}的{s}", f"{z}{s}")) if z else s
    elif not z:
        body = _pick(rng, (f"{c}的{s}", f"{c}{s}"))
    else:
        body = _pick(rng, (f"{z}的{c}{s}", f"{c}的{z}{s}", f"{z}{c}{s}"))
    return ("一个" + body) if article else body


def _mention(
    attrs: dict[str, Any], rng: np.random.Generator, partial_prob: float, generic_prob: float
) -> dict[str, Any]:
    keep = {k: v for k, v in attrs.items() if k in FIELDS}
    if attrs["count"] == 1 and rng.random() < generic_prob:
        del keep[_pick(rng, ("colour", "shape"))]  # "a red shape", "a circle"
    groups = (("size",), ("position",)) if attrs["count"] == 1 else (("size", "size2"),)
    for group in groups:
        if rng.random() < partial_prob:
            for name in group:
                keep.pop(name, None)
    return keep


def _render_en(m: dict[str, Any], rng: np.random.Generator) -> str:
    a = _en_object(rng, m.get("colour"), m.get("shape"), m.get("size"))
    if m["count"] == 1:
        if "position" not in m:
            return str(_pick(rng, _EN_SINGLE_NOPOS)).format(obj=a)
        pos = _pick(rng, _EN_POS[m["position"]])
        return str(_pick(rng, _EN_SINGLE)).format(obj=a, pos=pos)
    b = _en_object(rng, m["colour2"], m["shape2"], m.get("size2"))
    rel = m["relation"]
    if rng.random() < 0.5:  # say it the other way round: "B right of A"
        a, b, rel = b, a, _SWAP[rel]
    return str(_pick(rng, _EN_PAIR)).format(a=a, b=b, rel=_pick(rng, _EN_REL[rel]))


def _render_zh(m: dict[str, Any], rng: np.random.Generator) -> str:
    if m["count"] == 1:
        obj = _zh_object(rng, m.get("colour"), m.get("shape"), m.get("size"), article=True)
        if "position" not in m:
            return str(_pick(rng, _ZH_SINGLE_NOPOS)).format(obj=obj)
        pos = _pick(rng, _ZH_POS[m["position"]])
        return str(_pick(rng, _ZH_SINGLE)).format(obj=obj, pos=pos)
    first = (m["colour"], m["shape"], m.get("size"))
    second = (m["colour2"], m["shape2"], m.get("size2"))
    rel = m["relation"]
    if rng.random() < 0.5:
        first, second, rel = second, first, _SWAP[rel]
    a = _zh_object(rng, *first, article=True)
    b = _zh_object(rng, *second, article=False)
    return str(_pick(rng, _ZH_PAIR)).format(a=a, b=b, rel=_pick(rng, _ZH_REL[rel]))


def describe(
    attrs: dict[str, Any],
    lang: Literal["en", "zh"],
    rng: np.random.Generator,
    partial_prob: float = 0.0,
    generic_prob: float = 0.0,
) -> tuple[str, dict[str, Any]]:
    """A caption of ``attrs`` in ``lang`` and the attributes it mentions.

    With ``partial_prob`` > 0 each optional attribute (size, position) is left
    out with that probability, as in short queries like "a red circle". With
    ``generic_prob`` > 0 a one-shape caption sometimes names only the colour or
    only the shape ("a red shape", "a circle on the left").
    """
    mention = _mention(attrs, rng, partial_prob, generic_prob)
    text = _render_en(mention, rng) if lang == "en" else _render_zh(mention, rng)
    return text, mention


def vocabulary_texts() -> list[str]:
    """Every word and phrase the caption templates can produce (to build a tokenizer vocab)."""
    texts: list[str] = ["a an", *SHAPES, *COLOURS, *_EN_THING, *_ZH_THING]
    texts += [p for table in (_EN_SIZE, _EN_POS, _EN_REL) for ps in table.values() for p in ps]
    texts += [*_EN_SINGLE, *_EN_SINGLE_NOPOS, *_EN_PAIR]
    texts += ["一个的", *_ZH_COLOUR.values(), *_ZH_SHAPE.values()]
    texts += [p for table in (_ZH_SIZE, _ZH_POS, _ZH_REL) for ps in table.values() for p in ps]
    texts += [*_ZH_SINGLE, *_ZH_SINGLE_NOPOS, *_ZH_PAIR]
    return texts


# ---------------------------------------------------------------------------
# drawing


def _layout(attrs: dict[str, Any], rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """(cx, cy, radius) per shape, as fractions of the image side."""
    u = rng.uniform
    if attrs["count"] == 1:
        r = u(0.09, 0.12) if attrs["size"] == "small" else u(0.18, 0.22)
        anchor = {
            "left": (0.27, 0.5),
            "right": (0.73, 0.5),
            "top": (0.5, 0.27),
            "bottom": (0.5, 0.73),
            "centre": (0.5, 0.5),
        }[attrs["position"]]
        along = 0.05 if attrs["position"] == "centre" else 0.1
        across = 0.05
        if attrs["position"] in ("top", "bottom"):
            return [(anchor[0] + u(-along, along), anchor[1] + u(-across, across), r)]
        return [(anchor[0] + u(-across, across), anchor[1] + u(-along, along), r)]
    r1 = u(0.09, 0.11) if attrs["size"] == "small" else u(0.16, 0.19)
    r2 = u(0.09, 0.11) if attrs["size2"] == "small" else u(0.16, 0.19)
    a, b = 0.26 + u(-0.04, 0.04), 0.74 + u(-0.04, 0.04)
    c1, c2 = 0.5 + u(-0.12, 0.12), 0.5 + u(-0.12, 0.12)
    if attrs["relation"] == "left of":
        return [(a, c1, r1), (b, c2, r2)]
    return [(c1, a, r1), (c2, b, r2)]


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        h = r * 0.85
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "triangle":
        angles = [-90.0, 30.0, 150.0]
        return [
            (cx + r * math.cos(math.radians(t)), cy + r * math.sin(math.radians(t))) for t in angles
        ]
    if shape == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            t = math.radians(-90.0 + 36.0 * i)
            pts.append((cx + rad * math.cos(t), cy + rad * math.sin(t)))
        return pts
    if shape == "cross":
        w, h = r * 0.36, r
        return [
            (cx - w, cy - h), (cx + w, cy - h), (cx + w, cy - w), (cx + h, cy - w),
            (cx + h, cy + w), (cx + w, cy + w), (cx + w, cy + h), (cx - w, cy + h),
            (cx - w, cy + w), (cx - h, cy + w), (cx - h, cy - w), (cx - w, cy - w),
        ]  # fmt: skip
    raise ValueError(f"unknown shape {shape!r}")


def _jitter_colour(rng: np.random.Generator, name: str) -> tuple[int, int, int]:
    base = np.array(COLOURS[name], dtype=np.int64) + rng.integers(-12, 13, size=3)
    r, g, b = (int(v) for v in np.clip(base, 0, 255))
    return r, g, b


def _background(rng: np.random.Generator, size: int) -> NDArray[np.float32]:
    """A light, slightly tinted background with a gentle gradient."""
    base = rng.uniform(175.0, 215.0) + rng.uniform(-18.0, 18.0, size=3)
    gx, gy = rng.uniform(-14.0, 14.0, size=2)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    grad = gx * ramp[None, :] + gy * ramp[:, None]
    return (base[None, None, :] + grad[:, :, None]).astype(np.float32)


def draw(attrs: dict[str, Any], rng: np.random.Generator, size: int = 64) -> Image.Image:
    """Render ``attrs`` to an RGB image; records each shape's pixel centre in ``attrs``."""
    return draw_boxes(attrs, _layout(attrs, rng), rng, size)


def draw_boxes(
    attrs: dict[str, Any],
    boxes: Sequence[tuple[float, float, float]],
    rng: np.random.Generator,
    size: int = 64,
) -> Image.Image:
    """Render the shapes of ``attrs`` at ``boxes`` (``(cx, cy, radius)`` as fractions of
    the side, one per shape); records each shape's pixel centre in ``attrs``."""
    scale = 4  # draw large, then downsample: anti-aliased edges
    big = size * scale
    canvas = Image.new("RGB", (big, big), (0, 0, 0))
    mask = Image.new("L", (big, big), 0)
    layer = ImageDraw.Draw(canvas)
    mask_draw = ImageDraw.Draw(mask)
    objects = [(attrs["shape"], attrs["colour"])]
    if attrs["count"] == 2:
        objects.append((attrs["shape2"], attrs["colour2"]))
    for i, ((shape, colour), (cx, cy, r)) in enumerate(zip(objects, boxes, strict=True)):
        fill = _jitter_colour(rng, colour)
        x, y, rr = cx * big, cy * big, r * big
        if shape == "circle":
            box = (x - rr, y - rr, x + rr, y + rr)
            layer.ellipse(box, fill=fill)
            mask_draw.ellipse(box, fill=255)
        else:
            poly = _polygon(shape, x, y, rr)
            layer.polygon(poly, fill=fill)
            mask_draw.polygon(poly, fill=255)
        attrs["xy" if i == 0 else "xy2"] = [round(cx * size, 2), round(cy * size, 2)]
    small = np.asarray(canvas.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255.0
    # The canvas is black outside shapes; un-premultiply where alpha > 0.
    fg = small / np.maximum(alpha, 1e-6)[:, :, None]
    bg = _background(rng, size)
    out = alpha[:, :, None] * fg + (1.0 - alpha[:, :, None]) * bg
    out += rng.normal(0.0, rng.uniform(2.0, 7.0), size=out.shape)
    return Image.fromarray(np.clip(out, 0, 255).round().astype(np.uint8), "RGB")


# ---------------------------------------------------------------------------
# public entry points


def _split_filter(
    split: Split, holdout: Callable[[dict[str, Any]], bool] | None
) -> Callable[[dict[str, Any]], bool]:
    held = holdout or uses_heldout_combo
    if split == "all":
        return lambda attrs: True
    if split == "train":
        return lambda attrs: not held(attrs)
    if split == "heldout":
        return held
    raise ValueError(f"unknown split {split!r}; expected 'all', 'train' or 'heldout'")


def counterparts(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """Hard negatives of a two-shape image: the same parts bound differently.

    The two shapes trade places ("a blue square left of a red circle" for "a red
    circle left of a blue square"), or trade colours ("a blue circle left of a
    red square"). Only a model that binds colour to shape and reads word order
    tells them apart. One-shape images have none.
    """
    if attrs["count"] != 2:
        return []
    base = {k: v for k, v in attrs.items() if k in FIELDS}
    out = [
        {**base, "shape": attrs["shape2"], "colour": attrs["colour2"], "size": attrs["size2"],
         "shape2": attrs["shape"], "colour2": attrs["colour"], "size2": attrs["size"]}
    ]  # fmt: skip
    if attrs["colour"] != attrs["colour2"] and attrs["shape"] != attrs["shape2"]:
        out.append({**base, "colour": attrs["colour2"], "colour2": attrs["colour"]})
    return out


def _render(
    attrs: dict[str, Any], rng: np.random.Generator, size: int, lang: Lang, group: int
) -> SyntheticSample:
    image = draw(attrs, rng, size)
    caption_en, _ = describe(attrs, "en", rng)
    caption_zh, _ = describe(attrs, "zh", rng)
    if lang == "both":
        caption = caption_en if rng.random() < 0.5 else caption_zh
    else:
        caption = caption_en if lang == "en" else caption_zh
    return SyntheticSample(image, caption_en, caption_zh, attrs, caption, {"group": group})


def make_group(
    seed: int,
    index: int,
    *,
    size: int = 64,
    lang: Lang = "en",
    split: Split = "all",
    holdout: Callable[[dict[str, Any]], bool] | None = None,
    pair_prob: float = 0.5,
    counterpart_prob: float = 0.0,
) -> list[SyntheticSample]:
    """Group ``index`` of the stream of ``seed``: one sample, sometimes followed by a counterpart.

    Deterministic by ``(seed, index)`` alone. With probability
    ``counterpart_prob`` a two-shape sample comes with one of its
    ``counterparts`` (when that one is in the split too); both carry
    ``extra["group"] == index`` so a trainer can put them in the same batch.
    """
    rng = np.random.default_rng([seed, index])
    keep = _split_filter(split, holdout)
    while True:
        attrs = sample_attrs(rng, pair_prob)
        if keep(attrs):
            break
    group = [_render(attrs, rng, size, lang, index)]
    if counterpart_prob > 0 and attrs["count"] == 2 and rng.random() < counterpart_prob:
        options = [c for c in counterparts(attrs) if keep(c)]
        if options:
            group.append(_render(_pick(rng, options), rng, size, lang, index))
    return group


def generate(
    n: int,
    seed: int,
    *,
    size: int = 64,
    lang: Lang = "en",
    split: Split = "all",
    holdout: Callable[[dict[str, Any]], bool] | None = None,
    pair_prob: float = 0.5,
    counterpart_prob: float = 0.0,
) -> list[SyntheticSample]:
    """``n`` captioned images, deterministic by ``seed``.

    ``split="train"`` leaves out every image that ``holdout`` (by default:
    uses a colour×shape combination of ``HELDOUT_COMBOS``) accepts;
    ``split="heldout"`` keeps only those, so the two never share a combination.
    ``lang`` picks the language of ``SyntheticSample.caption``; both captions
    are always filled in. ``counterpart_prob`` > 0 adds hard-negative
    counterparts right after some two-shape samples (see ``make_group``).
    Sample ``i`` does not depend on ``n``.
    """
    if lang not in ("en", "zh", "both"):
        raise ValueError(f"unknown lang {lang!r}; expected 'en', 'zh' or 'both'")
    out: list[SyntheticSample] = []
    index = 0
    while len(out) < n:
        out += make_group(
            seed, index, size=size, lang=lang, split=split, holdout=holdout,
            pair_prob=pair_prob, counterpart_prob=counterpart_prob,
        )  # fmt: skip
        index += 1
    return out[:n]


def write_dataset(
    out_dir: str | Path,
    n: int,
    seed: int,
    *,
    size: int = 64,
    lang: Lang = "both",
    split: Split = "all",
    image_format: Literal["png", "jpg"] = "png",
) -> Path:
    """Write ``n`` images under ``out_dir/images`` and ``out_dir/pairs.jsonl``; return the JSONL path.

    Each JSONL line is ``{"media": "images/000000.png", "caption": ..., "caption_en": ...,
    "caption_zh": ..., <attrs>}`` with the media path relative to ``out_dir``.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    pairs = out / "pairs.jsonl"
    with pairs.open("w", encoding="utf-8") as fh:
        for i, s in enumerate(generate(n, seed, size=size, lang=lang, split=split)):
            rel = f"images/{i:06d}.{image_format}"
            if image_format == "jpg":
                s.image.save(out / rel, quality=92)
            else:
                s.image.save(out / rel)
            row = {
                "media": rel,
                "caption": s.caption,
                "caption_en": s.caption_en,
                "caption_zh": s.caption_zh,
                **s.attrs,
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return pairs
