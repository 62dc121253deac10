"""Training data: batch plans across processes, WebDataset shards, undecodable images."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmsearch.errors import DecodeError
from mmsearch.eval.datasets import DatasetError, read_pairs
from mmsearch.train import data, shards
from mmsearch.train.config import TrainConfig
from mmsearch.train.trainer import train

from torch_threads import one_torch_thread  # noqa: F401 (autouse: one torch thread)


def test_batch_plan_splits_each_global_batch_over_processes() -> None:
    n, micro, accum, world = 50, 3, 2, 2
    one = data.batch_plan(n, micro * world, accum, 1, 0, seed=4, epoch=1)
    ranks = [data.batch_plan(n, micro, accum, world, r, seed=4, epoch=1) for r in range(world)]
    steps = n // (micro * accum * world)
    assert len(one) == steps * accum and all(len(r) == steps * accum for r in ranks)
    for s in range(steps):
        single = {i for b in one[s * accum : (s + 1) * accum] for i in b}
        split = [i for r in ranks for b in r[s * accum : (s + 1) * accum] for i in b]
        assert len(split) == len(set(split)) == micro * accum * world
        assert set(split) == single
    # another epoch is another order, the same one every time
    assert data.batch_plan(n, 4, 1, 1, 0, 4, 2) != data.batch_plan(n, 4, 1, 1, 0, 4, 1)
    assert data.batch_plan(n, 4, 1, 1, 0, 4, 2) == data.batch_plan(n, 4, 1, 1, 0, 4, 2)


def test_holdout_keeps_all_captions_of_an_image_together(tmp_path: Path) -> None:
    for i in range(10):
        Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(tmp_path / f"{i}.png")
    rows = [{"media": f"{i}.png", "caption": f"image {i} caption {c}"}
            for i in range(10) for c in range(2)]  # fmt: skip
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    pairs = read_pairs(tmp_path / "pairs.jsonl", split="all")
    train_set, val_set = data.holdout(pairs, 0.3, seed=1)
    assert val_set is not None
    assert train_set.n_media == 7 and val_set.n_media == 3
    assert not set(train_set.media) & set(val_set.media)
    assert val_set.n_captions == 6 and all(len(c) == 2 for c in val_set.captions_of())
    assert data.holdout(pairs, 0.0, seed=1) == (pairs, None)


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buf, format="PNG")
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def _shards(folder: Path, n_shards: int = 3, per_shard: int = 12) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    colours = ["red", "green", "blue", "yellow"]
    for s in range(n_shards):
        with tarfile.open(folder / f"shard-{s:03d}.tar", "w") as tar:
            for i in range(per_shard):
                key = f"s{s}-{i:04d}"
                c = (i * 60 % 256, s * 80 % 256, 100)
                _add(tar, f"{key}.png", _png(c))
                caption = f"a {colours[i % 4]} square number {s} {i}"
                if i % 5 == 0:
                    _add(tar, f"{key}.json", json.dumps({"caption": caption}).encode())
                else:
                    _add(tar, f"{key}.txt", caption.encode())
            _add(tar, "nocaption.png", _png((0, 0, 0)))  # a sample without a caption: skipped
    return shards.expand_shards(str(folder) + f"/shard-{{000..{n_shards - 1:03d}}}.tar")


def test_shard_patterns_expand(tmp_path: Path) -> None:
    paths = _shards(tmp_path / "wds")
    assert [Path(s).name for s in paths] == ["shard-000.tar", "shard-001.tar", "shard-002.tar"]
    assert shards.expand_shards(str(tmp_path / "wds")) == paths
    assert shards.expand_shards(str(tmp_path / "wds" / "shard-*.tar")) == paths
    assert shards.is_tar_source(str(tmp_path / "wds")) and shards.is_tar_source(paths[0])
    with pytest.raises(DatasetError):
        shards.expand_shards(str(tmp_path / "wds" / "other-{0..3}.tar"))


def test_tar_readers_share_the_samples_without_overlap(tmp_path: Path) -> None:
    paths = _shards(tmp_path / "wds")
    transform = data.ImageTransform(lambda im: np.asarray(im, dtype=np.float32).transpose(2, 0, 1))
    val_keys = {k for k, _, _ in shards.TarPairs(paths, transform, val_fraction=0.25,
                                               role="val").pairs()}  # fmt: skip
    all_train = shards.TarPairs(paths, transform, val_fraction=0.25)
    train_keys = [k for k, _, _ in all_train.pairs()]
    assert len(train_keys) + len(val_keys) == 36 and not set(train_keys) & val_keys
    assert all_train.count() == len(train_keys)
    # 2 processes (fewer shards than readers would read every shard and stride samples)
    per_rank = [[k for k, _, _ in shards.TarPairs(paths, transform, val_fraction=0.25, world=2,
                                                rank=r).pairs()] for r in range(2)]  # fmt: skip
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == sorted(train_keys)
    samples = list(all_train)
    assert len(samples) == len(train_keys) and samples[0].pixels is not None
    assert {s.caption.split()[1] for s in samples} <= {"red", "green", "blue", "yellow"}


def test_collate_replaces_undecodable_images(tmp_path: Path) -> None:
    good = data.Sample(np.ones((3, 4, 4), np.float32), "a cat", 1, data.caption_id("a cat"))
    bad = data.Sample(None, "a dog", 2, data.caption_id("a dog"))
    collate = data.Collate(lambda texts: {"ids": torch.zeros(len(texts), 3, dtype=torch.long)})
    batch = collate([bad, good])
    assert len(batch) == 2 and batch.pixels.shape == (2, 3, 4, 4)
    assert batch.media_ids.tolist() == [1, 1]  # the stand-in is a positive of its original
    with pytest.raises(DecodeError):
        collate([bad, bad])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    sample = data.decode_sample(str(tmp_path / "broken.png"), "x", 3,
                                data.ImageTransform(lambda im: im), 0, 0)  # fmt: skip
    assert sample.pixels is None


def test_training_from_webdataset_shards(tmp_path: Path) -> None:
    _shards(tmp_path / "wds", n_shards=2, per_shard=40)
    result = train(TrainConfig(data=str(tmp_path / "wds"), base="scratch:tiny",
                               out=str(tmp_path / "out"), epochs=1, batch_size=8, workers=0,
                               val_split=0.2, max_steps=3))  # fmt: skip
    assert result.steps == 3
    assert set(result.metrics) >= {"t2m_R@1", "m2t_R@10"}
    card = result.card
    assert (
        card["data"]["val_media"] > 0
        and card["data"]["train_pairs"] + card["data"]["val_media"] == 80
    )
