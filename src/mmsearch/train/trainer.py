"""Contrastive training of an image–text model on caption pairs: the loop.

``train(config)`` reads the pairs, loads the base model (or builds one from scratch),
applies the method (``methods``), and runs epochs of AdamW steps with a warm-up and
cosine learning-rate schedule. After each epoch it scores retrieval on the validation
pairs, keeps the best weights, stops early after ``patience`` epochs without
improvement, and writes a checkpoint that ``resume=True`` continues from. At the end
the best weights are exported as a model folder with a card (``export``).

Details that matter:

* **Gradient accumulation** (``accum > 1``) caches features instead of summing
  per-micro-batch losses, which for a contrastive loss would shrink the pool of
  negatives to one micro-batch. Each step: (1) embed every micro-batch without
  gradients, (2) compute the loss over all of them and its gradient with respect to
  the features, (3) embed each micro-batch again with gradients (same random state)
  and back-propagate those feature gradients. The gradient is then that of one batch
  of ``batch_size * accum`` pairs (up to batch-norm statistics, which stay per
  micro-batch), for the memory of one micro-batch and one extra forward pass.
* **Several processes** (``torchrun``): DistributedDataParallel over the trained
  module; features are gathered with gradients from every process
  (``distributed.gather_with_grad``), so the loss is over the global batch.
* **Mixed precision** on CUDA: bf16 autocast when the GPU has it, else fp16 with a
  gradient scaler; the loss itself is computed in float32.

Run it as an application (the arguments of ``mmsearch train``)::

    python -m mmsearch.train --data ... --base ... --out ...
    torchrun --nproc_per_node=N -m mmsearch.train --data ... --base ... --out ...

(``python -m mmsearch.train.trainer`` still runs the same entry point.)
"""

from __future__ import annotations

import os

from mmsearch.train.config import TrainConfig
from mmsearch.train.result import EpochCallback, TrainResult


def train(config: TrainConfig, *, on_epoch_end: EpochCallback | None = None) -> TrainResult:
    """Train as ``config`` says; return the result (on every process of a multi-process run).

    ``on_epoch_end`` is called on every process after each epoch's checkpoint with that
    epoch's record (loss, validation metrics, score).
    """
    config.validate()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from mmsearch.train import distributed

    threads = torch.get_num_threads()
    env = distributed.setup(config.device)
    try:
        from mmsearch.train.loop import Run

        return Run(config, env, on_epoch_end).fit()
    finally:
        distributed.teardown(env)
        torch.set_num_threads(threads)


if __name__ == "__main__":  # pragma: no cover
    # The application is the package's __main__; run it rather than import it, so that
    # this module (which it imports for ``train``) does not import it back.
    import runpy

    runpy.run_module("mmsearch.train", run_name="__main__", alter_sys=True)
