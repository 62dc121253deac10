"""Reproduce the demo model shipped as ``builtin:demo`` (src/mmsearch/assets/demo-model).

Generates captioned shape images with a fixed seed, trains the tiny CLIP-style
model on 2 CPU threads, prints the training time and the Recall@1/5/10 of
text→image and image→text search on a held-out gallery of freshly generated
images (another seed), for English and for Chinese queries, and writes the
model folder.

    python scripts/train_demo_model.py                 # writes build/demo-model
    python scripts/train_demo_model.py --install       # and copies it into the package
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

from mmsearch.datasets.synthetic import generate
from mmsearch.encoders.tiny import TinyConfig
from mmsearch.train.tiny_trainer import TrainConfig, counterpart_accuracy, evaluate, train_tiny

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "src" / "mmsearch" / "assets" / "demo-model"

TRAIN_SEED = 20240601
GALLERY_SEED = 777
MODEL_ID = "mmsearch/demo-shapes-v2"  # v1: transformer text tower, read bags of words


def _print_metrics(metrics: dict[str, float]) -> None:
    for lang in ("en", "zh"):
        for task in ("t2i", "i2t"):
            vals = "  ".join(
                f"R@{k} {100 * metrics[f'{lang}/{task}_R@{k}']:5.1f}" for k in (1, 5, 10)
            )
            print(f"  {lang} {task}: {vals}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "build" / "demo-model")
    p.add_argument("--n-train", type=int, default=30000)
    p.add_argument("--n-gallery", type=int, default=1000)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--split",
        choices=["all", "train"],
        default="all",
        help="'train' leaves the held-out colour×shape combinations out of training",
    )
    p.add_argument(
        "--counterparts",
        type=float,
        default=1.0,
        help="share of two-shape training images that come with a hard-negative twin",
    )
    p.add_argument("--install", action="store_true", help=f"copy the result to {PACKAGE_DIR}")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)

    t0 = time.perf_counter()
    train = generate(
        args.n_train, TRAIN_SEED, lang="both", split=args.split, counterpart_prob=args.counterparts
    )
    gallery = generate(args.n_gallery, GALLERY_SEED, lang="both")
    twins = generate(400, GALLERY_SEED + 1, pair_prob=1.0, counterpart_prob=1.0)
    gen_s = time.perf_counter() - t0
    print(f"generated {len(train)} training + {len(gallery)} gallery images in {gen_s:.1f}s")

    config = TrainConfig(
        model=TinyConfig(model_id=MODEL_ID),
        seed=0,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        threads=args.threads,
    )
    result = train_tiny(config, train, eval_samples=gallery, out_dir=args.out)
    print(f"trained {args.steps} steps in {result.seconds:.1f}s (+{gen_s:.1f}s data generation)")
    print(f"held-out gallery of {len(gallery)} images (seed {GALLERY_SEED}):")
    _print_metrics(result.metrics)
    for lang in ("en", "zh"):
        acc = counterpart_accuracy(result.model, result.tokenizer, twins, lang)
        print(f"  {lang} caption prefers its image over its swapped twin: {100 * acc:.1f}%")
    if args.split == "train":
        held = generate(args.n_gallery, GALLERY_SEED, lang="both", split="heldout")
        print(f"gallery of {len(held)} images with colour×shape combinations never trained on:")
        _print_metrics(evaluate(result.model, result.tokenizer, held))
    for f in sorted(args.out.iterdir()):
        print(f"  {f.name}: {f.stat().st_size / 1e6:.2f} MB")
    if args.install:
        PACKAGE_DIR.mkdir(parents=True, exist_ok=True)
        for f in args.out.iterdir():
            shutil.copy2(f, PACKAGE_DIR / f.name)
        print(f"installed into {PACKAGE_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
