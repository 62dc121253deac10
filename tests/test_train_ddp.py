"""Two CPU processes (gloo) train exactly like one process on the same global batch.

(a) The loss over features gathered from both processes equals the one-process loss on
the full batch, and the gradients reaching each process's own features are those of
the full-batch loss (times the world size, which DDP's gradient average divides out).
(b) ``torchrun --nproc_per_node=2 -m mmsearch.train`` gives the same weights as
one process with twice the batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from mmsearch.datasets.synthetic import write_dataset
from mmsearch.train.config import TrainConfig
from mmsearch.train.distributed import DistEnv, gather, gather_with_grad
from mmsearch.train.loop import contrastive_loss
from mmsearch.train.trainer import train

from tiny_models import make_tiny_hf_clip
from torch_threads import one_torch_thread  # noqa: F401 (autouse: one torch thread)

WORLD = 2
N, D = 8, 6


def _features(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    img = torch.nn.functional.normalize(torch.randn(N, D, generator=g, dtype=torch.float64), dim=1)
    txt = torch.nn.functional.normalize(torch.randn(N, D, generator=g, dtype=torch.float64), dim=1)
    media = torch.tensor([0, 1, 2, 3, 4, 1, 6, 7])  # pairs 1 and 5 show the same image
    captions = torch.arange(100, 100 + N)
    return img, txt, media, captions


def _losses(img: torch.Tensor, txt: torch.Tensor, media: torch.Tensor, caps: torch.Tensor,
            scale: torch.Tensor, bias: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
    return {
        "clip": contrastive_loss("clip", img, txt, scale, None, media, caps),
        "siglip": contrastive_loss("siglip", img, txt, scale, bias, media, caps),
    }


def _loss_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        env = DistEnv(rank=rank, world=WORLD)
        img, txt, media, caps = _features()
        part = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
        results = {}
        for kind in ("clip", "siglip"):
            my_img = img[part].clone().requires_grad_(True)
            my_txt = txt[part].clone().requires_grad_(True)
            scale = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
            bias = torch.tensor(-3.0, dtype=torch.float64, requires_grad=True)
            all_img, all_txt = gather_with_grad(my_img, env), gather_with_grad(my_txt, env)
            all_media, all_caps = gather(media[part], env), gather(caps[part], env)
            loss = _losses(all_img, all_txt, all_media, all_caps, scale, bias)[kind]
            loss.backward()
            assert my_img.grad is not None and my_txt.grad is not None and scale.grad is not None
            results[kind] = {
                "loss": float(loss),
                "img_grad": my_img.grad.tolist(),
                "txt_grad": my_txt.grad.tolist(),
                "scale_grad": float(scale.grad),
            }
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


def test_gathered_loss_and_gradients_match_one_process(tmp_path: Path) -> None:
    mp.spawn(_loss_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    img, txt, media, caps = _features()
    img.requires_grad_(True)
    txt.requires_grad_(True)
    for kind in ("clip", "siglip"):
        img.grad = txt.grad = None
        scale = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
        bias = torch.tensor(-3.0, dtype=torch.float64, requires_grad=True)
        loss = _losses(img, txt, media, caps, scale, bias)[kind]
        loss.backward()
        assert img.grad is not None and txt.grad is not None and scale.grad is not None
        for rank in range(WORLD):
            got = json.loads((tmp_path / f"rank{rank}.json").read_text())[kind]
            part = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
            assert got["loss"] == pytest.approx(float(loss.detach()), abs=1e-12)
            # each process holds world x the true gradient; DDP's average divides it out
            torch.testing.assert_close(torch.tensor(got["img_grad"], dtype=torch.float64) / WORLD,
                                       img.grad[part])  # fmt: skip
            torch.testing.assert_close(torch.tensor(got["txt_grad"], dtype=torch.float64) / WORLD,
                                       txt.grad[part])  # fmt: skip
            assert got["scale_grad"] == pytest.approx(float(scale.grad), abs=1e-12)


def test_torchrun_two_processes_train_like_one(tmp_path: Path) -> None:
    pairs = write_dataset(tmp_path / "data", 48, 5, lang="en")
    base = make_tiny_hf_clip(tmp_path / "models", "clip")
    common = ["--data", str(pairs), "--base", base, "--epochs", "1", "--max-steps", "2",
              "--val-split", "0", "--workers", "0", "--device", "cpu", "--lr", "1e-3"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "mmsearch.train", *common, "--batch-size", "8", "--out",
         str(tmp_path / "two")],  # fmt: skip
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = train(TrainConfig(data=str(pairs), base=base, out=str(tmp_path / "one"), epochs=1,
                            max_steps=2, val_split=0.0, workers=0, device="cpu", lr=1e-3,
                            batch_size=16))  # fmt: skip
    card = json.loads((tmp_path / "two" / "mmsearch_card.json").read_text())
    assert card["batch"] == {"per_process": 8, "accum": 1, "processes": 2, "contrastive_batch": 16}
    assert card["steps"] == one.steps == 2
    two_w = load_file(str(tmp_path / "two" / "model.safetensors"))
    one_w = load_file(str(one.out / "model.safetensors"))
    base_w = load_file(str(Path(base) / "model.safetensors"))
    moved = torch.cat([(one_w[k] - base_w[k]).abs().flatten() for k in one_w]).mean()
    assert float(moved) > 1e-4  # two Adam steps of 1e-3 moved the weights
    for k in one_w:
        torch.testing.assert_close(two_w[k], one_w[k], atol=1e-4, rtol=1e-3, msg=k)
