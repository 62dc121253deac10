"""Path arguments: one path or several, never a string taken apart character by character.

``Library.add("/photos")`` means one folder, not the folders "/", "p", "h", ... that
iterating over the string would give.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeAlias

PathArg: TypeAlias = "str | os.PathLike[str]"
PathArgs: TypeAlias = "PathArg | Iterable[PathArg]"

Target: TypeAlias = "str | os.PathLike[str] | int"
"""What removing takes: an item id, a file or a folder."""


def as_paths(paths: PathArgs) -> list[PathArg]:
    """``paths`` as a list: a single ``str``, ``bytes`` or ``PathLike`` is one path."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        return [paths]  # type: ignore[list-item]
    return list(paths)


def as_targets(targets: Target | Iterable[Target]) -> list[Target]:
    """``targets`` as a list: a single path or item id is one target."""
    if isinstance(targets, (str, bytes, os.PathLike, int)):
        return [targets]  # type: ignore[list-item]
    return list(targets)


def absolute(path: PathArg) -> str:
    """The absolute form of a user's path (``~`` expanded, symlinks kept)."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def is_within(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``root`` or inside it (compare resolved paths)."""
    p, r = os.fspath(path), os.fspath(root).rstrip(os.sep) or os.sep
    return p == r or p.startswith(r if r.endswith(os.sep) else r + os.sep)


def resolves_within(path: str | os.PathLike[str], roots: Iterable[str]) -> bool:
    """Whether ``path``, with every symlink resolved, lies under one of ``roots``."""
    real = os.path.realpath(path)
    return any(is_within(real, root) for root in roots)
