"""Gitignore-style rules that keep files out of a walk: ``.mmsearchignore`` files and
``index --exclude`` patterns (the ``pathspec`` package implements git's matching).

Rules are layered: a folder's ``.mmsearchignore`` applies to that folder and
everything below it, and a deeper layer's verdict (exclude, or re-include with
``!pattern``) wins over a shallower one's, as nested ``.gitignore`` files do.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

IGNORE_FILE = ".mmsearchignore"
MAX_IGNORE_BYTES = 256_000


@dataclass(frozen=True)
class IgnoreRules:
    """Layers of (base folder, compiled spec, where the rules came from), outermost first."""

    layers: tuple[tuple[str, Any, str], ...] = ()

    def with_patterns(self, base: str, patterns: Sequence[str], source: str) -> IgnoreRules:
        if not patterns:
            return self
        import pathspec

        spec = pathspec.GitIgnoreSpec.from_lines(list(patterns))
        return IgnoreRules((*self.layers, (base, spec, source)))

    def with_file(self, folder: str) -> IgnoreRules:
        """These rules plus ``folder``'s ``.mmsearchignore``, if it has a readable one."""
        path = os.path.join(folder, IGNORE_FILE)
        try:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_IGNORE_BYTES)
        except FileNotFoundError:
            return self
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
            return self
        lines = raw.decode("utf-8", "replace").splitlines()
        return self.with_patterns(folder, lines, IGNORE_FILE)

    def reason(self, path: str, is_dir: bool) -> str | None:
        """Why ``path`` is excluded, or None when no rule keeps it out."""
        for base, spec, source in reversed(self.layers):
            rel = os.path.relpath(path, base)
            if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
                continue
            rel = rel.replace(os.sep, "/") + ("/" if is_dir else "")
            verdict = spec.check_file(rel).include
            if verdict is not None:
                return f"excluded by {source}" if verdict else None
        return None
