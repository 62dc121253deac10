"""Thumbnails for the result grid: photos scaled on the fly (cached), video keyframes stored.

A photo's thumbnail is made from the original the first time it is asked for,
through the same guarded decoder as indexing, and kept in a small in-memory
LRU cache keyed by the file's identity (item, size, mtime, length), so an
edited file gets a fresh one. Sizes snap to a few steps so a client cannot fill
the cache with one entry per pixel width.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

SIZES = (128, 256, 512)
DEFAULT_SIZE = 256


def snap_size(size: int | None) -> int:
    """The smallest step at least ``size`` (the largest for anything bigger)."""
    if size is None:
        return DEFAULT_SIZE
    return next((s for s in SIZES if s >= size), SIZES[-1])


class ThumbnailCache:
    """A byte-bounded LRU cache of JPEG thumbnails, safe to share between threads."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_make(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        data = make()  # outside the lock: decoding a photo takes a while
        with self._lock:
            if key not in self._data and len(data) <= self.max_bytes:
                self._data[key] = data
                self._size += len(data)
                while self._size > self.max_bytes:
                    _, old = self._data.popitem(last=False)
                    self._size -= len(old)
        return data

    def __len__(self) -> int:
        return len(self._data)
