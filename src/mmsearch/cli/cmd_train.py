"""``mmsearch train``: fine-tune a model on caption pairs (or train one from scratch).

A thin door into the training application (``mmsearch.train``, an application on top
of the library): its arguments and its run. The same application runs on its own and
under torchrun::

    python -m mmsearch.train --data pairs.jsonl --base builtin:demo --out my-model
    torchrun --nproc_per_node=2 -m mmsearch.train --data ... --base ... --out ...

``mmsearch train --reranker --out DIR`` trains a cross-attention reranker on top of a tiny
dual encoder instead (``--base``, default builtin:demo; see ``mmsearch.train.reranker``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mmsearch.train.params import add_arguments as add_training_arguments

    add_training_arguments(p)


def run(args: argparse.Namespace) -> int:
    from mmsearch.train.main import run as run_training

    return run_training(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mmsearch train`` with its own parser (``python -m mmsearch.cli.cmd_train``)."""
    from mmsearch.train.main import main as training_main

    return training_main(argv, prog="mmsearch train")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
