"""Training on a CUDA GPU: every method and loss with mixed precision, and the time of a step.

    python benchmarks/bench_train_cuda.py [--out DIR]

Checks what the CPU test suite cannot: autocast (bf16, or fp16 with a gradient scaler),
the feature-cache accumulation with CUDA random state, LoRA/LiT/adapters on the GPU,
and that a model trained on the GPU exports a folder that loads and encodes on the CPU.
Then times full fine-tuning steps of a CLIP ViT-B/32 (random weights) with and
without mixed precision. Prints one Markdown section (for benchmarks/results/train-synthetic.md).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from mmsearch.datasets.synthetic import write_dataset  # noqa: E402
from mmsearch.encoders.registry import load_encoder  # noqa: E402
from mmsearch.train.config import TrainConfig  # noqa: E402
from mmsearch.train.trainer import train  # noqa: E402

from tiny_models import make_tiny_hf_clip  # noqa: E402

CASES = [  # method, loss, accum
    ("full", "clip", 1),
    ("full", "siglip", 2),
    ("lit", "clip", 2),
    ("proj", "siglip", 1),
    ("adapter", "clip", 2),
    ("lora", "siglip", 2),
]


class StepLosses(logging.Handler):
    """Collects the loss of every logged training step (``log_every=1``)."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = re.search(r" step \d+/\d+ loss ([0-9.]+)", record.getMessage())
        if m:
            self.losses.append(float(m.group(1)))

    def __enter__(self) -> list[float]:
        logging.getLogger("mmsearch.train").addHandler(self)
        return self.losses

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("mmsearch.train").removeHandler(self)


def check_methods(root: Path, pairs: Path) -> list[str]:
    lines = ["| base | method | loss | accum | steps | loss, first 3 → last 3 steps | s | exported folder on CPU |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    bases = {"hf CLIP (tiny, random)": make_tiny_hf_clip(root / "models", "clip"),
             "scratch:small": "scratch:small"}  # fmt: skip
    for label, base in bases.items():
        for method, loss, accum in CASES:
            if base.startswith("scratch") and method != "full":
                continue
            out = root / f"{method}-{loss}-{accum}-{label[:4]}"
            t = time.perf_counter()
            with StepLosses() as losses:
                res = train(TrainConfig(data=str(pairs), base=base, out=str(out), method=method,  # type: ignore[arg-type]
                                        loss=loss, accum=accum, batch_size=16, epochs=4,  # type: ignore[arg-type]
                                        max_steps=12, lr=2e-3, device="cuda", workers=4,
                                        val_split=0.1, log_every=1))  # fmt: skip
            secs = time.perf_counter() - t
            assert all(math.isfinite(x) for x in losses), losses
            enc = load_encoder(str(out), device="cpu")
            vec = enc.encode_text(["a red circle on the left"])
            ok = vec.shape[0] == 1 and bool(np.isfinite(vec).all())
            lines.append(f"| {label} | {method} | {loss} | {accum} | {res.steps} | "
                         f"{np.mean(losses[:3]):.3f} → {np.mean(losses[-3:]):.3f} | {secs:.1f} | "
                         f"{'loads, encodes' if ok else 'FAILED'} |")  # fmt: skip
    return lines


def vitb32_folder(root: Path) -> str:
    """A CLIP ViT-B/32 of random weights (speed does not depend on weight values)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from tiny_models import _clip_tokenizer

    tok = _clip_tokenizer()
    text = {"vocab_size": len(tok), "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}  # fmt: skip
    folder = root / "vit-b-32"
    CLIPModel(CLIPConfig(text_config=text)).save_pretrained(folder)
    CLIPProcessor(CLIPImageProcessor(), tok).save_pretrained(folder)
    return str(folder)


def time_steps(root: Path, batch: int = 256, steps: int = 20) -> list[str]:
    """Optimizer steps of a ViT-B/32 CLIP (full fine-tuning, CLIP loss), bf16 autocast vs fp32."""
    from mmsearch.train import methods
    from mmsearch.train.loop import contrastive_loss
    from mmsearch.train.towers import load_towers

    folder = vitb32_folder(root)
    lines = ["| precision | batch | s per step | pairs/s | peak GPU memory GiB |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for amp in (torch.bfloat16, None):
        towers = load_towers(folder)
        model = methods.build(towers, "full", "clip", methods.MethodOptions()).cuda().train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        pixels = torch.randn(batch, 3, 224, 224, device="cuda")
        text = {k: v.cuda() for k, v in towers.tokenizer()(["a photo of a dog"] * batch).items()}
        ids = torch.arange(batch, device="cuda")
        torch.cuda.reset_peak_memory_stats()
        for i in range(steps + 5):
            if i == 5:
                torch.cuda.synchronize()
                t = time.perf_counter()
            ctx = torch.autocast("cuda", dtype=amp) if amp else contextlib.nullcontext()
            with ctx:
                img, txt, scale, bias = model(pixels, text)
            loss = contrastive_loss("clip", img, txt, scale, bias, ids, ids)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        per = (time.perf_counter() - t) / steps
        mem = torch.cuda.max_memory_allocated() / 2**30
        name = "autocast bf16" if amp else "fp32"
        lines.append(f"| {name} | {batch} | {per:.3f} | {batch / per:.0f} | {mem:.1f} |")
        del model, opt
        torch.cuda.empty_cache()
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("mmsearch.train").setLevel(logging.INFO)
    assert torch.cuda.is_available(), "needs a CUDA GPU"
    root = args.out or Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    small = write_dataset(root / "small", 400, 5, lang="both")
    print(f"data in {time.perf_counter() - t0:.0f} s")
    gpu = torch.cuda.get_device_name()
    text = [f"### On a GPU: {gpu}", "", "`python benchmarks/bench_train_cuda.py`, torch "
            f"{torch.__version__}.", "", "Every method and loss for 12 steps of 16 pairs (4 "
            "epochs of 360 pairs) on CUDA with mixed precision; the exported folder is loaded on "
            "the CPU.", "",
            *check_methods(root, small), "", "Full fine-tuning steps of a CLIP ViT-B/32 (random weights, "
            "224 px, CLIP loss, AdamW), bf16 autocast against fp32:", "", *time_steps(root), ""]  # fmt: skip
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
