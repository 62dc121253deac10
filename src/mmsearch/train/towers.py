"""Which trainable view a model spec gets: ``load_towers`` and its table of backends.

``load_towers(base)`` loads the base model through the encoder registry and wraps it in
the :class:`~mmsearch.train.towers_base.Towers` of its backend (``towers_hf``,
``towers_openclip``, ``towers_tiny``), picked from ``_BACKENDS`` by the encoder's
backend name as the encoder registry does; ``scratch:SIZE`` builds a new small model.
The backend modules build on ``towers_base`` and never import this module.
"""

from __future__ import annotations

import importlib
import logging

from mmsearch.train.config import SCRATCH_PREFIX, TrainingError
from mmsearch.train.towers_base import Towers

log = logging.getLogger(__name__)


_BACKENDS: dict[str, str] = {
    "hf": "mmsearch.train.towers_hf:from_encoder",
    "openclip": "mmsearch.train.towers_openclip:from_encoder",
    "tiny": "mmsearch.train.towers_tiny:from_encoder",
}
"""Encoder backend -> ``module:function`` building its :class:`Towers` from a loaded encoder."""


def load_towers(base: str, *, captions: list[str] | None = None, loss: str = "clip") -> Towers:
    """The towers of model spec ``base`` on the CPU in float32, or a new model for ``scratch:SIZE``.

    ``captions`` (the training captions) build the vocabulary of a scratch model and
    extend a word-level one (see ``TinyTowers.extend_vocabulary``).
    """
    if base.startswith(SCRATCH_PREFIX):
        from mmsearch.train import towers_tiny

        return towers_tiny.scratch(base[len(SCRATCH_PREFIX) :], captions or [], loss=loss)
    from mmsearch.encoders.registry import load_encoder

    encoder = load_encoder(base, device="cpu")
    backend = encoder.info.backend
    if backend not in _BACKENDS:
        raise TrainingError(
            f"{base!r} is a {backend!r} model, which has no trainable weights here; "
            f"train from its torch source ({', '.join(sorted(_BACKENDS))} backends)"
        )
    module_name, func = _BACKENDS[backend].split(":")
    towers: Towers = getattr(importlib.import_module(module_name), func)(encoder)
    towers.model.float()
    added = towers.extend_vocabulary(captions or [])
    if added:
        log.info("added %d words of the training captions to the vocabulary", added)
    return towers
