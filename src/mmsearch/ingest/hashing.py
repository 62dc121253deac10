"""Content hashes used to tell changed files from touched or moved ones."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

_CHUNK = 1 << 20
SAMPLED_ABOVE = 64 << 20
"""Files larger than this (long videos, recordings) are hashed by samples."""
_SAMPLES = 8


def content_hash(paths: Iterable[str | None]) -> str:
    """BLAKE2b of the main file followed by its sidecars (caption, metadata).

    A changed caption changes the hash, so the item is re-embedded; a moved
    file with its sidecars keeps its hash, so it is recognised as moved. A file
    above :data:`SAMPLED_ABOVE` is hashed by its size and eight 1 MiB samples
    spread over it (first and last included), so a 20 GB video is not read in
    full just to notice that it was touched or moved.
    """
    h = hashlib.blake2b(digest_size=16)
    for path in paths:
        h.update(b"\x00")
        if path is None:
            continue
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > SAMPLED_ABOVE:
                h.update(b"sampled:%d" % size)
                for i in range(_SAMPLES):
                    fh.seek((size - _CHUNK) * i // (_SAMPLES - 1))
                    h.update(fh.read(_CHUNK))
                continue
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()
