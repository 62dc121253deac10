"""The training loop: learning for real, resume, early stopping, accumulation, exported folders.

Data are generated captioned shapes (mmsearch.datasets.synthetic) written as a JSONL of
pairs, as a user would give them; models are trained from scratch (``scratch:tiny``)
or start from tiny random-weight transformers / open_clip folders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mmsearch.datasets.synthetic import write_dataset
from mmsearch.encoders.registry import load_encoder
from mmsearch.eval.datasets import read_pairs
from mmsearch.eval.metrics import evaluate_pairs
from mmsearch.train.config import TrainConfig
from mmsearch.train.data import Batch
from mmsearch.train.distributed import DistEnv
from mmsearch.train.loop import Run
from mmsearch.train.result import TrainResult
from mmsearch.train.trainer import train

from tiny_models import make_tiny_hf_clip, make_tiny_openclip
from torch_threads import one_torch_thread  # noqa: F401 (autouse: one torch thread)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("train")


@pytest.fixture(scope="module")
def pairs(root: Path) -> dict[str, Path]:
    return {
        "train": write_dataset(root / "train", 400, 1, lang="en"),
        "heldout": write_dataset(root / "heldout", 100, 2, lang="en"),
        "small": write_dataset(root / "small", 96, 3, lang="en"),
    }


@pytest.fixture(scope="module")
def hf_clip(root: Path) -> str:
    return make_tiny_hf_clip(root / "models", "clip")


@pytest.fixture(scope="module")
def learnt(root: Path, pairs: dict[str, Path]) -> TrainResult:
    """scratch:tiny trained on 400 pairs; validated on 100 pairs of another seed."""
    config = TrainConfig(
        data=str(pairs["train"]), val_data=str(pairs["heldout"]), base="scratch:tiny",
        out=str(root / "learnt"), epochs=7, batch_size=50, workers=0, threads=1,
    )  # fmt: skip
    return train(config)


def _weights(folder: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(folder / name))


def test_scratch_model_learns_far_beyond_chance(
    learnt: TrainResult, pairs: dict[str, Path]
) -> None:
    chance_r5 = 5 / 100
    assert learnt.metrics["t2m_R@5"] >= 5 * chance_r5
    assert learnt.metrics["m2t_R@5"] >= 5 * chance_r5
    # the exported folder, loaded as any model, scores the same held-out pairs
    enc = load_encoder(str(learnt.out))
    held = read_pairs(pairs["heldout"], split="all")
    m = evaluate_pairs(enc.encode_text(held.captions), enc.encode_images(held.media),
                       held.caption_media)  # fmt: skip
    assert m["t2m_R@5"] >= 5 * chance_r5
    assert m["t2m_R@1"] == pytest.approx(learnt.metrics["t2m_R@1"], abs=0.03)
    card = json.loads((learnt.out / "mmsearch_card.json").read_text())
    assert card["base"]["spec"] == "scratch:tiny" and card["method"] == "full"
    assert card["validation"]["t2m_R@5"] == learnt.metrics["t2m_R@5"]
    assert card["epochs_run"] == 7 and len(card["history"]) == 7
    assert "text → image" in (learnt.out / "README.md").read_text()


def test_exported_model_indexes_and_searches(learnt: TrainResult, pairs: dict[str, Path],
                                             tmp_path: Path) -> None:  # fmt: skip
    from mmsearch.library import Library

    held = read_pairs(pairs["heldout"], split="all")
    with Library.open(tmp_path / "lib", model=str(learnt.out)) as lib:
        report = lib.add([pairs["heldout"].parent / "images"], workers=0)
        assert report.to_dict()["added"] == 100
        found = 0
        for caption, m in list(zip(held.captions, held.caption_media, strict=True))[:20]:
            hits = lib.search(caption, k=10)
            assert hits
            found += any(Path(h.path).name == Path(held.media[m]).name for h in hits)
    assert found >= 5 * 20 * 10 / 100 / 2  # at least 2.5x chance for R@10 over 20 queries


def _small_config(root: Path, pairs: dict[str, Path], out: str, **kw: Any) -> TrainConfig:
    base = dict(data=str(pairs["small"]), base="scratch:tiny", out=str(root / out), epochs=3,
                batch_size=16, workers=0, val_split=0.25, threads=1)  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_resume_gives_the_same_model_as_an_uninterrupted_run(
    root: Path, pairs: dict[str, Path]
) -> None:
    whole = train(_small_config(root, pairs, "whole"))

    class Crash(Exception):
        pass

    def crash_after_two(record: dict[str, Any]) -> None:
        if record["epoch"] == 2:
            raise Crash

    with pytest.raises(Crash):
        train(_small_config(root, pairs, "resumed"), on_epoch_end=crash_after_two)
    resumed = train(_small_config(root, pairs, "resumed", resume=True))
    assert resumed.epochs == whole.epochs == 3 and resumed.steps == whole.steps
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in whole.history])
    a, b = _weights(whole.out, "model.safetensors"), _weights(resumed.out, "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_early_stopping_stops_when_validation_stalls(root: Path, pairs: dict[str, Path],
                                                     hf_clip: str) -> None:  # fmt: skip
    # lr 0: the weights (and so the validation score) never change
    result = train(_small_config(root, pairs, "stall", base=hf_clip, lr=0.0, epochs=6, patience=2))
    assert result.stopped_early and result.epochs == 3
    assert [h.get("stopped_early", False) for h in result.history] == [False, False, True]
    assert result.card["best_epoch"] == 1 and result.card["stopped_early"]


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    out = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def _halves(batch: Batch) -> list[Batch]:
    n = len(batch) // 2
    return [
        Batch(
            batch.pixels[s],
            {k: v[s] for k, v in batch.text.items()},
            batch.media_ids[s],
            batch.caption_ids[s],
        )  # fmt: skip
        for s in (slice(0, n), slice(n, None))
    ]


def test_accumulation_gradient_equals_one_big_batch(root: Path, pairs: dict[str, Path],
                                                    hf_clip: str) -> None:  # fmt: skip
    config = _small_config(root, pairs, "acc", base=hf_clip, val_split=0.0, batch_size=16)
    run = Run(config, DistEnv(), None)
    run.model.train()
    big = next(run._epoch_loader(0))
    assert len(big) == 16
    loss_big = run._direct(big)
    g_big = _grads(run.model)
    loss_acc = run._cached(_halves(big))
    g_acc = _grads(run.model)
    assert loss_acc == pytest.approx(loss_big, rel=1e-6)
    assert g_big.keys() == g_acc.keys() and "net.logit_scale" in g_big
    for k in g_big:
        torch.testing.assert_close(g_acc[k], g_big[k], atol=1e-5, rtol=1e-4, msg=k)
    # summing per-micro-batch losses (fewer negatives) is a different gradient
    for half in _halves(big):
        run._direct(half)
    g_naive = _grads(run.model)
    assert not torch.allclose(g_big["net.logit_scale"], g_naive["net.logit_scale"] / 2, rtol=1e-3)


def test_accumulated_run_follows_the_big_batch_run(root: Path, pairs: dict[str, Path],
                                                   hf_clip: str) -> None:  # fmt: skip
    common = dict(base=hf_clip, val_split=0.0, max_steps=3, lr=1e-3, epochs=1)
    big = train(_small_config(root, pairs, "big", batch_size=16, accum=1, **common))
    acc = train(_small_config(root, pairs, "acc", batch_size=8, accum=2, **common))
    assert acc.steps == big.steps == 3
    assert acc.history[0]["loss"] == pytest.approx(big.history[0]["loss"], rel=1e-4)
    assert acc.card["batch"]["contrastive_batch"] == 16


def test_lit_leaves_the_image_tower_bit_identical(root: Path, pairs: dict[str, Path],
                                                  hf_clip: str) -> None:  # fmt: skip
    result = train(_small_config(root, pairs, "lit", base=hf_clip, method="lit", lr=1e-3,
                                 max_steps=3, val_split=0.0))  # fmt: skip
    base = _weights(Path(hf_clip), "model.safetensors")
    tuned = _weights(result.out, "model.safetensors")
    image = [k for k in base if k.startswith(("vision_model.", "visual_projection."))]
    text = [k for k in base if k.startswith(("text_model.", "text_projection."))]
    assert image and text
    assert all(torch.equal(base[k], tuned[k]) for k in image)
    assert any(not torch.equal(base[k], tuned[k]) for k in text)


@pytest.mark.parametrize("kind", ["hf", "openclip"])
def test_lora_export_loads_and_differs_from_the_base(root: Path, pairs: dict[str, Path],
                                                     hf_clip: str, kind: str) -> None:  # fmt: skip
    base = hf_clip if kind == "hf" else make_tiny_openclip(root / "models")
    result = train(_small_config(root, pairs, f"lora-{kind}", base=base, method="lora", lr=5e-3,
                                 max_steps=3, val_split=0.0, loss="siglip"))  # fmt: skip
    files = {p.name for p in result.out.iterdir()}
    assert ("config.json" if kind == "hf" else "open_clip_config.json") in files
    weights = next(result.out.glob("*.safetensors"))
    assert not any("lora" in k for k in load_file(str(weights)))
    before, after = load_encoder(base), load_encoder(str(result.out))
    assert after.info.backend == before.info.backend
    assert after.info.fingerprint != before.info.fingerprint
    texts = ["a red circle", "a big blue square above a star"]
    v0, v1 = before.encode_text(texts), after.encode_text(texts)
    assert v0.shape == v1.shape and float(np.abs(v0 - v1).max()) > 1e-4
    img = next((pairs["small"].parent / "images").iterdir())
    assert float(np.abs(before.encode_images([img]) - after.encode_images([img])).max()) > 1e-4
    card = json.loads((result.out / "mmsearch_card.json").read_text())
    assert card["method"] == "lora" and card["loss"] == "siglip"
    assert card["params"]["trainable"] < card["params"]["total"] / 2
