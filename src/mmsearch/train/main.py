"""The training application: arguments -> ``train`` -> a short report (or the card as JSON).

Training is an application on top of the library, as ``open_clip_train`` is on
``open_clip``: this module and ``__main__`` are its entry (``python -m mmsearch.train``,
which is what torchrun runs), and ``mmsearch train`` reuses ``run``. Nothing under
``mmsearch.train`` imports ``mmsearch.cli``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from mmsearch.errors import MMSearchError
from mmsearch.train.params import build_parser, config_from_args, reranker_config_from_args
from mmsearch.train.result import TrainResult
from mmsearch.train.trainer import train


def run(args: argparse.Namespace) -> int:
    """Train as the parsed arguments say and print the result (on the main process only)."""
    logger = logging.getLogger("mmsearch.train")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)  # training progress is the point of this command
    if args.reranker:
        return run_reranker(args)
    result = train(config_from_args(args))
    if not result.card:  # a non-main process of a multi-process run
        return 0
    if args.json:
        json.dump(result.card, sys.stdout, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(report(result))
    return 0


def run_reranker(args: argparse.Namespace) -> int:
    """``--reranker``: train the cross-attention reranker; print where it is (or its card)."""
    from mmsearch.train.reranker import train_reranker

    result = train_reranker(reranker_config_from_args(args))
    if args.json:
        print(json.dumps({**result.card, "out": str(result.out)}, ensure_ascii=False, indent=2))
        return 0
    first, last = result.history[0], result.history[-1]
    print(f"trained a reranker in {result.seconds:.0f}s: {last['step']:.0f} steps, "
          f"matching loss {first['loss']:.3f} (step {first['step']:.0f}) -> {last['loss']:.3f}")  # fmt: skip
    print(f"reranker: {result.out}  (use --rerank trained:{result.out})")
    return 0


def report(result: TrainResult) -> str:
    """A few lines: time, epochs and steps, best validation recall, where the model is."""
    lines = [f"trained in {result.seconds:.0f}s: {result.epochs} epochs, {result.steps} steps"
             + (" (stopped early)" if result.stopped_early else "")]  # fmt: skip
    if result.metrics:
        ks = result.card.get("ks", [1, 5, 10])
        for d, name in (("t2m", "text→image"), ("m2t", "image→text")):
            vals = "  ".join(f"R@{k} {100 * result.metrics[f'{d}_R@{k}']:5.1f}" for k in ks)
            lines.append(f"  validation {name}: {vals}  (epoch {result.card.get('best_epoch')})")
    lines.append(f"model: {result.out}  (use --model {result.out})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m mmsearch.train") -> int:
    """Parse ``argv``, train, report; errors are one line on stderr and exit status 2."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except MMSearchError as exc:
        print(f"mmsearch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmsearch: interrupted (--resume continues from the last epoch's checkpoint)",
              file=sys.stderr)  # fmt: skip
        return 130
