"""The captioned-shapes generator: determinism, captions that fit the pixels, held-out split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mmsearch.datasets import synthetic as syn


def _nearest_colour(rgb: np.ndarray) -> str:
    return min(syn.COLOURS, key=lambda c: float(np.sum((np.array(syn.COLOURS[c]) - rgb) ** 2)))


def test_generate_is_deterministic_by_seed() -> None:
    a = syn.generate(12, seed=5, lang="both")
    b = syn.generate(12, seed=5, lang="both")
    c = syn.generate(12, seed=6, lang="both")
    for x, y in zip(a, b, strict=True):
        assert x.caption_en == y.caption_en and x.caption_zh == y.caption_zh
        assert x.attrs == y.attrs
        assert np.array_equal(np.asarray(x.image), np.asarray(y.image))
    assert [s.caption_en for s in a] != [s.caption_en for s in c]
    # sample i does not depend on how many are drawn
    assert syn.generate(4, seed=5, lang="both")[3].attrs == a[3].attrs


def test_images_are_rgb_of_the_requested_size() -> None:
    for s in syn.generate(3, seed=0, size=48):
        assert s.image.mode == "RGB" and s.image.size == (48, 48)


def test_shape_centre_pixel_has_the_named_colour() -> None:
    for s in syn.generate(60, seed=11):
        px = np.asarray(s.image, dtype=np.float64)
        shapes = [("xy", "colour")] + ([("xy2", "colour2")] if s.attrs["count"] == 2 else [])
        for xy_key, colour_key in shapes:
            x, y = (int(v) for v in s.attrs[xy_key])
            patch = px[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).mean(0)
            assert _nearest_colour(patch) == s.attrs[colour_key], s.caption_en
        # the background (a corner far from every shape) is light
        assert px[:3, :3].mean() > 140 or s.attrs["count"] == 2


def test_positions_and_relations_fit_the_geometry() -> None:
    for s in syn.generate(80, seed=3):
        a = s.attrs
        x, y = a["xy"]
        if a["count"] == 1:
            expected = {"left": x < 26, "right": x > 38, "top": y < 26, "bottom": y > 38}
            assert expected.get(a["position"], 26 <= x <= 38 and 26 <= y <= 38)
        else:
            x2, y2 = a["xy2"]
            assert (x < x2) if a["relation"] == "left of" else (y < y2)


def test_captions_name_the_attributes_in_both_languages() -> None:
    for s in syn.generate(40, seed=2, lang="both"):
        a = s.attrs
        assert a["colour"] in s.caption_en and a["shape"] in s.caption_en
        assert syn._ZH_COLOUR[a["colour"]] in s.caption_zh
        assert syn._ZH_SHAPE[a["shape"]] in s.caption_zh
        if a["count"] == 2:
            assert a["colour2"] in s.caption_en and syn._ZH_SHAPE[a["shape2"]] in s.caption_zh
        assert s.caption in (s.caption_en, s.caption_zh)
    assert {s.caption for s in syn.generate(10, seed=2, lang="zh")} <= {
        s.caption_zh for s in syn.generate(10, seed=2, lang="zh")
    }


def test_captions_use_several_templates() -> None:
    samples = syn.generate(200, seed=9)
    singles = [s.caption_en for s in samples if s.attrs["count"] == 1]
    starts = {c.split()[0] for c in singles}
    assert len(starts) >= 3
    assert len({s.caption_zh[:2] for s in samples}) >= 4


def test_partial_mentions_match_every_fitting_image() -> None:
    rng = np.random.default_rng(0)
    samples = syn.generate(50, seed=4)
    image_codes = np.stack([syn.codes(s.attrs) for s in samples])
    for s in samples[:10]:
        text, mention = syn.describe(s.attrs, "en", rng, partial_prob=1.0)
        assert "size" not in mention and "position" not in mention
        fits = syn.mention_matches(syn.mention_codes(mention)[None], image_codes)[0]
        expected = [
            t.attrs["count"] == s.attrs["count"]
            and t.attrs["colour"] == s.attrs["colour"]
            and t.attrs["shape"] == s.attrs["shape"]
            and t.attrs.get("relation") == s.attrs.get("relation")
            and t.attrs.get("shape2") == s.attrs.get("shape2")
            and t.attrs.get("colour2") == s.attrs.get("colour2")
            for t in samples
        ]
        assert fits.tolist() == expected, text


def test_heldout_split_is_disjoint_from_train() -> None:
    train = syn.generate(150, seed=1, split="train")
    held = syn.generate(60, seed=1, split="heldout")

    def combos(s: syn.SyntheticSample) -> set[tuple[str, str]]:
        out = {(s.attrs["colour"], s.attrs["shape"])}
        if s.attrs["count"] == 2:
            out.add((s.attrs["colour2"], s.attrs["shape2"]))
        return out

    train_combos = set().union(*(combos(s) for s in train))
    assert not train_combos & syn.HELDOUT_COMBOS
    assert all(combos(s) & syn.HELDOUT_COMBOS for s in held)


def test_custom_holdout_predicate() -> None:
    def no_stars(attrs: dict) -> bool:
        return "star" in (attrs["shape"], attrs.get("shape2"))

    train = syn.generate(40, seed=8, split="train", holdout=no_stars)
    assert not any(no_stars(s.attrs) for s in train)
    assert all(
        no_stars(s.attrs) for s in syn.generate(10, seed=8, split="heldout", holdout=no_stars)
    )
    with pytest.raises(ValueError):
        syn.generate(1, seed=0, split="nope")  # type: ignore[arg-type]


def test_write_dataset(tmp_path) -> None:
    pairs = syn.write_dataset(tmp_path / "ds", 6, seed=3)
    rows = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6
    for row, s in zip(rows, syn.generate(6, seed=3, lang="both"), strict=True):
        assert row["caption_en"] == s.caption_en and row["caption_zh"] == s.caption_zh
        assert row["caption"] == s.caption and row["shape"] == s.attrs["shape"]
        img = Image.open(pairs.parent / row["media"])
        assert np.array_equal(np.asarray(img.convert("RGB")), np.asarray(s.image))


def _fields(attrs: dict) -> dict:
    return {k: v for k, v in attrs.items() if k in syn.FIELDS}


def test_counterparts_share_a_group_and_bind_parts_differently() -> None:
    samples = syn.generate(30, seed=7, pair_prob=1.0, counterpart_prob=1.0)
    assert len(samples) == 30
    pairs = [samples[i : i + 2] for i in range(0, 30, 2)]
    for a, b in pairs:
        assert a.extra["group"] == b.extra["group"]
        assert _fields(b.attrs) in syn.counterparts(a.attrs)
        assert _fields(b.attrs) != _fields(a.attrs)
        assert sorted([a.attrs["colour"], a.attrs["colour2"]]) == sorted(
            [b.attrs["colour"], b.attrs["colour2"]]
        )
    assert len({s.extra["group"] for s in samples}) == 15
    # without counterparts the stream is the plain one
    plain = syn.generate(5, seed=7, pair_prob=1.0)
    assert [s.caption_en for s in plain] == [
        s.caption_en for s in syn.generate(5, seed=7, pair_prob=1.0)
    ]
    assert syn.counterparts(syn.generate(1, seed=0, pair_prob=0.0)[0].attrs) == []


def test_counterparts_respect_the_split() -> None:
    samples = syn.generate(120, seed=3, split="train", counterpart_prob=1.0)
    assert not any(syn.uses_heldout_combo(s.attrs) for s in samples)
    assert any(len({t.extra["group"] for t in samples[i : i + 2]}) == 1 for i in range(119))
