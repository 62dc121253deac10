"""Keep the model libraries quiet on the command line unless ``-v`` is given.

transformers, huggingface_hub, open_clip and torch print "Loading weights" bars,
hub notices and deprecation warnings on every model load; a user running
``mmsearch search`` wants the results only. The libraries read their verbosity
and progress settings from the environment when first imported, so
:func:`quiet_model_libraries` sets those before any model import (and adjusts
the ones already imported), filters their log records and warnings, and puts
everything back when the command ends (``main`` is called from tests too).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

NOISY_PACKAGES = (
    "transformers",
    "huggingface_hub",
    "open_clip",
    "timm",
    "torch",
    "torchvision",
    "tokenizers",
    "accelerate",
    "peft",
    "onnxruntime",
)
QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
"""Read by the libraries at import time; a value the user set already is kept."""


class _DropModelLibraryRecords(logging.Filter):
    """Drop records below ERROR logged by a model library (some log on the root logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        top = record.name.split(".", 1)[0]
        if top in NOISY_PACKAGES:
            return False
        path = record.pathname.replace(os.sep, "/")
        return not any(f"/{pkg}/" in path for pkg in NOISY_PACKAGES)


@contextmanager
def quiet_model_libraries(enabled: bool = True) -> Iterator[None]:
    """While active, model libraries print neither progress bars nor notices, only errors."""
    if not enabled:
        yield
        return
    saved_env = {k: os.environ.get(k) for k in QUIET_ENV}
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    saved_levels = {pkg: logging.getLogger(pkg).level for pkg in NOISY_PACKAGES}
    for pkg in NOISY_PACKAGES:
        logging.getLogger(pkg).setLevel(logging.ERROR)
    drop = _DropModelLibraryRecords()
    handlers = list(logging.getLogger().handlers)
    for h in handlers:
        h.addFilter(drop)
    undo = _quiet_imported()
    try:
        with warnings.catch_warnings():
            pattern = "|".join(NOISY_PACKAGES)
            warnings.filterwarnings("ignore", module=rf"({pattern})(\.|$)")
            yield
    finally:
        undo()
        for h in handlers:
            h.removeFilter(drop)
        for pkg, level in saved_levels.items():
            logging.getLogger(pkg).setLevel(level)
        for key, old in saved_env.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _quiet_imported() -> Callable[[], None]:
    """Quiet the libraries imported before this point (their env settings were read then)."""
    undos: list[Callable[[], None]] = []
    if "transformers" in sys.modules:
        from transformers.utils import logging as tf_logging

        level, bars = tf_logging.get_verbosity(), tf_logging.is_progress_bar_enabled()
        tf_logging.set_verbosity_error()
        tf_logging.disable_progress_bar()
        undos.append(lambda: tf_logging.set_verbosity(level))
        if bars:
            undos.append(tf_logging.enable_progress_bar)
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import utils as hub_utils
        from huggingface_hub.utils import logging as hub_logging

        hub_level = hub_logging.get_verbosity()
        hub_bars = not hub_utils.are_progress_bars_disabled()
        hub_logging.set_verbosity_error()
        hub_utils.disable_progress_bars()
        undos.append(lambda: hub_logging.set_verbosity(hub_level))
        if hub_bars:
            undos.append(hub_utils.enable_progress_bars)

    def undo() -> None:
        for fn in reversed(undos):
            fn()

    return undo
