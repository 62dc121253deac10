"""The training application's arguments: the parser and the ``TrainConfig`` they make.

Shared by ``python -m mmsearch.train`` (torchrun's entry) and ``mmsearch train``, which
adds these arguments to its own subcommand. Importing this module does not import torch.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmsearch.train.config import LOSSES, METHODS, TrainConfig, TrainingError

if TYPE_CHECKING:  # pragma: no cover
    from mmsearch.train.reranker import RerankerTrainConfig

DESCRIPTION = """\
Fine-tune an image-text model on caption pairs (or train a small one from scratch),
or train a cross-attention reranker on top of one (--reranker).

    python -m mmsearch.train --data pairs.jsonl --base builtin:demo --out my-model
    torchrun --nproc_per_node=2 -m mmsearch.train --data ... --base ... --out ...
    python -m mmsearch.train --reranker --base builtin:demo --out my-reranker --steps 600
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    """The application's own parser (``prog`` names it in usage and errors)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return parser


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the training arguments to ``p`` (a parser or a subcommand's parser)."""
    p.add_argument("--data", default=None,
                   help="pairs file (JSONL {\"media\", \"caption\"}, CSV, Karpathy/COCO JSON) or "
                   "WebDataset shards (a .tar, a folder of them, shard-{000..009}.tar)")  # fmt: skip
    p.add_argument("--base", default=None,
                   help="model to start from: hf:ID, openclip:ARCH/TAG, builtin:demo, a folder; "
                   "or scratch:tiny / scratch:small for a new small model; with --reranker: "
                   "the dual encoder it sits on (default builtin:demo)")  # fmt: skip
    p.add_argument("--out", required=True, help="output model folder (use it as --model DIR)")
    p.add_argument("--method", choices=list(METHODS), default="full",
                   help="what to train: " + "; ".join(f"{k}: {v}" for k, v in METHODS.items()))  # fmt: skip
    p.add_argument("--loss", choices=list(LOSSES), default="clip",
                   help="; ".join(f"{k}: {v}" for k, v in LOSSES.items()))  # fmt: skip
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64, help="pairs per step and process")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 2e-3 from scratch, 1e-5 full/lit, 1e-4 others)")  # fmt: skip
    p.add_argument("--accum", type=int, default=1,
                   help="micro-batches per step; the loss sees batch-size x accum pairs")  # fmt: skip
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default: 5%%)")
    p.add_argument("--val-split", type=float, default=0.1,
                   help="share of media items held out for validation (0: none)")  # fmt: skip
    p.add_argument("--val-data", default=None, help="separate validation pairs file")
    p.add_argument("--split", dest="data_split", default=None,
                   help="split to train on in files with splits (default: train)")  # fmt: skip
    p.add_argument("--root", dest="data_root", default=None,
                   help="folder media paths are relative to (default: the pairs file's folder)")  # fmt: skip
    p.add_argument("--patience", type=int, default=None,
                   help="stop after N epochs without better validation recall")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if present)")
    p.add_argument("--workers", type=int, default=2, help="image decoding processes (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--adapter-rank", type=int, default=16)
    p.add_argument("--max-steps", "--steps", type=int, default=None,
                   help="stop after N optimizer steps (--reranker: train N steps, default 600)")  # fmt: skip
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (1 is often fastest on cores other jobs use)")  # fmt: skip
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random image shifts (default: on from scratch only)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the model card as JSON")
    p.add_argument("--reranker", action="store_true",
                   help="train a cross-attention reranker (mmsearch search --rerank trained:OUT) "
                   "on top of the tiny dual encoder --base, on generated shapes with hard "
                   "negatives (swapped relations, colours, sizes); no --data")  # fmt: skip
    p.add_argument("--scenes", type=int, default=None,
                   help="with --reranker: generated two-shape scenes to train on (default 1000)")  # fmt: skip


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` that parsed arguments describe."""
    if not args.data or not args.base:
        raise TrainingError("--data and --base are required (or --reranker, which needs neither)")
    return TrainConfig(
        data=args.data,
        base=args.base,
        out=args.out,
        method=args.method,
        loss=args.loss,
        epochs=args.epochs,
        batch_size=args.batch_size,
        accum=args.accum,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup,
        val_split=args.val_split,
        val_data=args.val_data,
        data_split=args.data_split,
        data_root=args.data_root,
        patience=args.patience,
        resume=args.resume,
        device=args.device,
        workers=args.workers,
        seed=args.seed,
        lora_rank=args.lora_rank,
        adapter_rank=args.adapter_rank,
        max_steps=args.max_steps,
        threads=args.threads,
        amp=not args.no_amp,
        augment=args.augment,
    )


def reranker_config_from_args(args: argparse.Namespace) -> RerankerTrainConfig:
    """The reranker's ``RerankerTrainConfig`` that parsed arguments (with ``--reranker``) describe."""
    from mmsearch.train.reranker import RerankerTrainConfig

    if args.data:
        raise TrainingError("--reranker trains on generated shapes; --data does not apply")
    if args.resume:
        raise TrainingError("--reranker has no --resume: a run takes a few minutes")
    given = {"steps": args.max_steps, "scenes": args.scenes, "lr": args.lr, "seed": args.seed,
             "threads": args.threads}  # fmt: skip
    return RerankerTrainConfig(
        out=args.out,
        dual_encoder=args.base or "builtin:demo",
        **{k: v for k, v in given.items() if v is not None},
    )
