"""Content hashes used to tell changed files from touched or moved ones."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

_CHUNK = 1 << 20


def content_hash(paths: Iterable[str | None]) -> str:
    """BLAKE2b of the main file followed by its sidecars (caption, metadata).

    A changed caption changes the hash, so the item is re-embedded; a moved
    file with its sidecars keeps its hash, so it is recognised as moved.
    """
    h = hashlib.blake2b(digest_size=16)
    for path in paths:
        h.update(b"\x00")
        if path is None:
            continue
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()
