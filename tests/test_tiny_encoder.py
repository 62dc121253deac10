"""Backend "tiny", the shipped ``builtin:demo`` model and the tiny trainer."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

import mmsearch
from mmsearch.datasets import synthetic as syn
from mmsearch.encoders import builtin, tiny
from mmsearch.encoders.base import Encoder
from mmsearch.errors import ModelNotFoundError
from mmsearch.train.tiny_trainer import TrainConfig, recall_at_k, train_tiny

FRESH_SEED = 4242  # not the training seed (20240601) nor the gallery seed (777)


@pytest.fixture(scope="module")
def demo() -> tiny.TinyEncoder:
    enc = mmsearch.load_encoder("builtin:demo", device="cpu")
    assert isinstance(enc, tiny.TinyEncoder)
    return enc


@pytest.fixture(scope="module")
def fresh() -> list[syn.SyntheticSample]:
    return syn.generate(100, seed=FRESH_SEED)


@pytest.fixture(scope="module")
def fresh_vectors(demo: tiny.TinyEncoder, fresh: list[syn.SyntheticSample]) -> np.ndarray:
    return demo.encode_images([s.image for s in fresh])


def _encode(enc: tiny.TinyEncoder, images: list) -> np.ndarray:
    pre = enc.image_preprocessor()
    return enc.encode_pixels(np.stack([pre(im) for im in images]))


# ---------------------------------------------------------------------------
# the shipped model


def test_demo_loads_through_the_registry(demo: tiny.TinyEncoder) -> None:
    assert isinstance(demo, Encoder)
    assert demo.info.backend == "tiny"
    assert demo.info.model_id == "mmsearch/demo-shapes-v2"
    assert demo.info.spec == "builtin:demo"
    assert demo.dim == demo.info.dim == 128
    assert demo.info.preprocessing["size"] == 64


def test_outputs_are_normalised_float32(demo: tiny.TinyEncoder, fresh_vectors: np.ndarray) -> None:
    txt = demo.encode_text(["a red circle", "一个红色的圆形", "zzz unknown words"])
    for arr, n in ((txt, 3), (fresh_vectors, 100)):
        assert arr.dtype == np.float32 and arr.shape == (n, demo.dim)
        np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)
    assert demo.encode_text([]).shape == (0, demo.dim)
    assert demo.encode_images([]).shape == (0, demo.dim)


def test_unknown_builtin_lists_the_available_ones() -> None:
    with pytest.raises(ModelNotFoundError, match="builtin:demo"):
        mmsearch.load_encoder("builtin:nope")
    assert builtin.available() == ["demo"]


def _single_shape_queries(fresh: list[syn.SyntheticSample]) -> list[tuple[str, str, str]]:
    """(colour, shape) pairs present among the fresh images, as English and Chinese queries."""
    pairs = sorted({(s.attrs["colour"], s.attrs["shape"]) for s in fresh if s.attrs["count"] == 1})
    return [
        (f"a {c} {sh}", f"一个{syn._ZH_COLOUR[c]}的{syn._ZH_SHAPE[sh]}", f"{c}/{sh}")
        for c, sh in pairs
    ]


def _has(s: syn.SyntheticSample, colour: str, shape: str) -> bool:
    objs = {(s.attrs["colour"], s.attrs["shape"])}
    if s.attrs["count"] == 2:
        objs.add((s.attrs["colour2"], s.attrs["shape2"]))
    return (colour, shape) in objs


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_demo_finds_shapes_by_text(
    demo: tiny.TinyEncoder, fresh: list[syn.SyntheticSample], fresh_vectors: np.ndarray, lang: str
) -> None:
    queries = _single_shape_queries(fresh)
    assert len(queries) >= 15
    texts = [q[0] if lang == "en" else q[1] for q in queries]
    sim = demo.encode_text(texts) @ fresh_vectors.T
    positives = np.array([[_has(s, *q[2].split("/")) for s in fresh] for q in queries], dtype=bool)
    recall = recall_at_k(sim, positives, (1, 5))
    chance_at_1 = positives.sum(1).mean() / len(fresh)
    assert recall[1] >= 0.5 and recall[1] > 5 * chance_at_1, recall
    assert recall[5] >= 0.8, recall


ZH_SHAPE = {"circle": "圆形", "square": "正方形", "triangle": "三角形", "star": "星形"}


def test_demo_understands_positions_and_shapes(demo: tiny.TinyEncoder) -> None:
    """Same colour, same drawing noise: only the named position or shape tells them apart."""
    wins = total = 0
    for shape, colour in (
        ("circle", "red"),
        ("square", "blue"),
        ("triangle", "green"),
        ("star", "yellow"),
    ):
        for here, there, text in (
            ("left", "right", "on the left"),
            ("top", "bottom", "at the top"),
        ):
            imgs = _encode(demo, [
                syn.draw({"count": 1, "shape": shape, "colour": colour, "size": "large", "position": p},
                         np.random.default_rng(1))
                for p in (here, there)
            ])  # fmt: skip
            sim = demo.encode_text([f"a {colour} {shape} {text}"]) @ imgs.T
            wins += int(sim[0, 0] > sim[0, 1])
            total += 1
    for a, b in (
        ("circle", "square"),
        ("star", "triangle"),
        ("square", "circle"),
        ("triangle", "star"),
    ):
        imgs = _encode(demo, [
            syn.draw({"count": 1, "shape": s, "colour": "blue", "size": "large", "position": "centre"},
                     np.random.default_rng(2))
            for s in (a, b)
        ])  # fmt: skip
        sim = demo.encode_text([f"a blue {a}", f"一个蓝色的{ZH_SHAPE[a]}"]) @ imgs.T
        wins += int((sim[:, 0] > sim[:, 1]).all())
        total += 1
    assert wins >= total - 1, (wins, total)


def test_demo_binds_colours_to_shapes_and_reads_relations(demo: tiny.TinyEncoder) -> None:
    """A caption prefers its own image over its counterpart: the same two shapes with their
    places or colours traded (chance: 50%). A bag-of-words model cannot do this."""
    twins = syn.generate(80, seed=FRESH_SEED + 1, pair_prob=1.0, counterpart_prob=1.0)
    img = _encode(demo, [s.image for s in twins]).reshape(40, 2, -1)
    for lang in ("en", "zh"):
        texts = [s.caption_en if lang == "en" else s.caption_zh for s in twins]
        txt = demo.encode_text(texts).reshape(40, 2, -1)
        sim = np.einsum("pad,pbd->pab", txt, img)
        acc = np.mean([sim[:, 0, 0] > sim[:, 0, 1], sim[:, 1, 1] > sim[:, 1, 0]])
        assert acc >= 0.8, (lang, acc)
    rng = np.random.default_rng(1)
    pair = {"count": 2, "size": "large", "relation": "left of", "size2": "large"}
    a = syn.draw(
        {**pair, "shape": "circle", "colour": "red", "shape2": "square", "colour2": "blue"}, rng
    )
    b = syn.draw(
        {**pair, "shape": "square", "colour": "blue", "shape2": "circle", "colour2": "red"}, rng
    )
    sim = demo.encode_text(
        ["a red circle left of a blue square", "a blue square right of a red circle",
         "一个红色的圆形在蓝色正方形的左边", "a blue square left of a red circle"]
    ) @ _encode(demo, [a, b]).T  # fmt: skip
    assert (sim[:3, 0] > sim[:3, 1]).all() and sim[3, 1] > sim[3, 0], sim


def test_image_to_image_finds_the_jittered_original(
    demo: tiny.TinyEncoder, fresh: list[syn.SyntheticSample], fresh_vectors: np.ndarray
) -> None:
    rng = np.random.default_rng(0)
    jittered = []
    for s in fresh[:30]:
        arr = np.asarray(s.image, dtype=np.float32)
        arr = np.roll(arr * rng.uniform(0.93, 1.07), shift=(1, -1), axis=(0, 1))
        arr += rng.normal(0, 3.0, size=arr.shape)
        jittered.append(syn.Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))
    sim = _encode(demo, jittered) @ fresh_vectors.T
    top = np.argmax(sim, axis=1)
    assert np.mean(top == np.arange(30)) >= 0.9


def test_encode_images_accepts_paths(
    demo: tiny.TinyEncoder, fresh, fresh_vectors, tmp_path
) -> None:
    path = tmp_path / "x.png"
    fresh[0].image.save(path)
    np.testing.assert_allclose(demo.encode_images([path])[0], fresh_vectors[0], atol=1e-5)


def test_preprocessor_is_picklable_and_resizes(demo: tiny.TinyEncoder) -> None:
    pre = pickle.loads(pickle.dumps(demo.image_preprocessor()))
    big = syn.Image.new("RGB", (200, 120), (200, 10, 10))
    out = pre(big)
    assert out.dtype == np.float32 and out.shape == (3, 64, 64)
    np.testing.assert_allclose(out, demo.image_preprocessor()(big))


# ---------------------------------------------------------------------------
# tokenizer and folder format


def test_tokenizer_words_chinese_and_unknowns() -> None:
    tok = tiny.TinyTokenizer.build(["a red circle", "红色圆形"], context_length=8)
    assert tiny.split_words("A Red-circle, 红色的圆!") == [
        "a",
        "red",
        "circle",
        "红",
        "色",
        "的",
        "圆",
    ]
    ids = tok.encode(["a red circle", "blue 红圆", "a a a a a a a a a a"])
    cls, unk = tok.index[tiny.CLS], tok.index[tiny.UNK]
    assert ids.shape == (3, 8)
    assert ids[0, :4].tolist() == [cls, tok.index["a"], tok.index["red"], tok.index["circle"]]
    assert ids[0, 4:].tolist() == [0, 0, 0, 0]
    assert ids[1, :4].tolist() == [cls, unk, tok.index["红"], tok.index["圆"]]
    assert (ids[2] != 0).all()  # truncated to the context length


@pytest.mark.parametrize("arch", ["gru", "transformer"])
def test_random_model_save_load_round_trip(arch: str, tmp_path) -> None:
    tok = tiny.TinyTokenizer.build(syn.vocabulary_texts(), context_length=24)
    cfg = tiny.TinyConfig(model_id=f"test/{arch}", embed_dim=16, image_size=32, channels=(8, 16),
                          vocab_size=len(tok), text_arch=arch, text_width=16, text_hidden=24,
                          text_heads=2)  # fmt: skip
    torch.manual_seed(0)
    model = tiny.build_model(cfg).eval()
    tiny.save_model(model, tok, tmp_path, dtype="float32")
    enc = mmsearch.load_encoder(str(tmp_path), device="cpu")
    assert enc.info.model_id == f"test/{arch}" and enc.dim == 16
    texts = ["a red circle left of a blue square", "a blue square left of a red circle"]
    with torch.inference_mode():
        want = model.encode_text(torch.from_numpy(tok.encode(texts))).numpy()
    got = enc.encode_text(texts)
    np.testing.assert_array_equal(got, want)
    assert not np.allclose(got[0], got[1])  # word order reaches the embedding


def test_config_without_text_arch_is_a_transformer() -> None:
    cfg = tiny.TinyConfig.from_json({"format_version": 1, "model_id": "old", "text_layers": 2})
    assert cfg.text_arch == "transformer" and cfg.text_layers == 2
    assert tiny.TinyConfig().text_arch == "gru"
    with pytest.raises(ModelNotFoundError, match="newer"):
        tiny.TinyConfig.from_json({"format_version": 99})


def test_missing_folder_and_files(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError):
        tiny.load(str(tmp_path / "nope"), spec="tiny:nope")
    (tmp_path / tiny.CONFIG_FILE).write_text('{"format_version": 1}')
    with pytest.raises(ModelNotFoundError, match="model.safetensors"):
        tiny.load(str(tmp_path), spec="tiny:x")


# ---------------------------------------------------------------------------
# training from scratch


SMALL = tiny.TinyConfig(
    model_id="test/tiny",
    embed_dim=32,
    image_size=32,
    channels=(8, 16, 32),
    text_width=32,
    text_hidden=32,
    text_heads=2,
    context_length=24,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    samples = syn.generate(200, seed=1, pair_prob=0.0, size=32)
    gallery = syn.generate(100, seed=2, pair_prob=0.0, size=32)
    # one thread: tiny ops lose more to thread hand-offs than they gain on a busy CPU
    cfg = TrainConfig(model=SMALL, steps=80, batch_size=64, lr=1e-2, warmup_steps=5, log_every=10,
                      max_shift=1, threads=1, save_dtype="float32")  # fmt: skip
    out = tmp_path_factory.mktemp("tiny-model")
    return train_tiny(cfg, samples, eval_samples=gallery, out_dir=out), out, gallery


def _chance_recall(positives: np.ndarray, k: int) -> float:
    """Expected Recall@k of a random ranking: 1 - C(G - p, k) / C(G, k) per query."""
    g = positives.shape[1]
    return float(
        np.mean([1 - math.comb(g - int(p), k) / math.comb(g, k) for p in positives.sum(1)])
    )


def test_training_lowers_the_loss_and_beats_chance(trained) -> None:
    result, _, gallery = trained
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.9 * losses[0], losses
    codes = np.stack([syn.codes(s.attrs) for s in gallery])
    chance = _chance_recall(
        syn.mention_matches(codes, codes), 10
    )  # full captions: codes == mention
    assert chance < 0.2
    assert result.metrics["en/t2i_R@10"] > 2 * chance, result.metrics
    assert result.metrics["zh/t2i_R@10"] > 2 * chance, result.metrics
    assert result.model.config.vocab_size == len(result.tokenizer)


def test_save_load_round_trip_gives_identical_embeddings(trained) -> None:
    result, folder, gallery = trained
    enc = mmsearch.load_encoder(str(folder), device="cpu")
    assert isinstance(enc, tiny.TinyEncoder) and enc.info.backend == "tiny"
    pre = enc.image_preprocessor()
    pixels = np.stack([pre(s.image) for s in gallery[:8]])
    texts = ["a red circle on the left", "一个蓝色的正方形", "unknown"]
    with torch.inference_mode():
        want_img = result.model.encode_image(torch.from_numpy(pixels)).numpy()
        want_txt = result.model.encode_text(
            torch.from_numpy(result.tokenizer.encode(texts))
        ).numpy()
    np.testing.assert_array_equal(enc.encode_pixels(pixels), want_img)
    np.testing.assert_array_equal(enc.encode_text(texts), want_txt)


def test_fp16_save_is_close(trained, tmp_path) -> None:
    result, _, gallery = trained
    tiny.save_model(result.model, result.tokenizer, tmp_path, dtype="float16")
    enc = tiny.load(str(tmp_path), spec=str(tmp_path), device="cpu")
    ref = tiny.load(str(trained[1]), spec="ref", device="cpu")
    texts = ["a small green star"]
    np.testing.assert_allclose(enc.encode_text(texts), ref.encode_text(texts), atol=5e-3)


def test_recall_at_k_helper() -> None:
    sim = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1], [0.0, 0.0, 1.0], [0.5, 0.4, 0.3]])
    positives = [[2], [0], [2], [2]]
    assert recall_at_k(sim, positives, (1, 2, 3)) == {1: 0.25, 2: 0.75, 3: 1.0}
    mat = np.zeros((4, 3), dtype=bool)
    for q, cols in enumerate(positives):
        mat[q, cols] = True
    assert recall_at_k(sim, mat, (1, 2, 3)) == recall_at_k(sim, positives, (1, 2, 3))
    mat[3, 1] = True  # a second positive ranked higher
    assert recall_at_k(sim, mat, (1, 2)) == {1: 0.25, 2: 1.0}
    with pytest.raises(ValueError):
        recall_at_k(sim, mat[:2], (1,))


def test_batches_keep_counterparts_together() -> None:
    from mmsearch.train.tiny_trainer import _groups, _shuffled

    samples = syn.generate(40, seed=5, pair_prob=1.0, counterpart_prob=1.0)
    groups = _groups(samples)
    assert [g.tolist() for g in groups] == [[i, i + 1] for i in range(0, 40, 2)]
    order = _shuffled(groups, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(40))
    where = {int(idx): p for p, idx in enumerate(order)}
    assert all(where[i + 1] == where[i] + 1 for i in range(0, 40, 2))
    assert order.tolist() != list(range(40))
