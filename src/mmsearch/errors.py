"""Typed exceptions raised by library code. Only the CLI and server turn them into messages."""

from __future__ import annotations


class MMSearchError(Exception):
    """Base class for every error mmsearch raises on purpose."""


class MissingDependencyError(MMSearchError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed. Install it with: pip install 'mmsearch[{extra}]'"
        )
        self.package = package
        self.extra = extra


class ModelNotFoundError(MMSearchError):
    """A model spec could not be resolved or downloaded (e.g. the model hub is unreachable)."""


class UnknownBackendError(MMSearchError):
    """A model spec names a backend prefix that is not registered."""


class ModelMismatchError(MMSearchError):
    """A library was built with another model than the one being used to add or search."""


class DecodeError(MMSearchError):
    """A media file could not be decoded; ``reason`` is short and user-facing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedMediaError(DecodeError):
    """The file is of a type mmsearch does not index."""


class QueryError(MMSearchError):
    """A query could not be parsed or has nothing to search with."""


class LibraryError(MMSearchError):
    """A library folder is missing, locked, corrupt or of a newer schema."""
