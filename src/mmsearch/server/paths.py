"""The server's path rule: a file is read or served only if its resolved path lies under
an allowed root and it is still the file that was indexed.

- Adding server-side paths (:func:`allowed_path`): the path is resolved (``..`` and
  every symlink) before it is compared with the ``--allow-root`` folders, and the
  ingest job is confined to them (``IngestOptions.within``): links found inside
  that lead out are skipped, sidecars and subtitles included.
- Serving an item (:func:`open_indexed`): the stored path is opened without following
  a final symlink (``O_NOFOLLOW``), and the file actually opened must be a regular
  file under an allowed root (the ``--allow-root`` folders, the upload folder, the
  folders indexed into the library), with the device, inode, size and modification
  time recorded when it was indexed. A file swapped for a link to a secret, or for
  another file, is refused (404); so is one edited since, until it is indexed again.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from mmsearch.errors import QueryError
from mmsearch.pathargs import is_within
from mmsearch.server.errors import Forbidden, NotFound
from mmsearch.store.rows import ItemRow


def allowed_path(raw: str, roots: Sequence[Path]) -> str:
    """``raw`` resolved, if it lies under one of ``roots``; raises otherwise."""
    if not roots:
        raise Forbidden(
            "adding server-side paths is off: start the server with --allow-root DIR "
            "(or upload the files)"
        )
    if "\x00" in raw or not raw.strip():
        raise QueryError("not a path")
    if not os.path.isabs(raw):
        raise QueryError(f"give an absolute path on the server, not {raw!r}")
    real = os.path.realpath(raw)
    if not any(is_within(real, root) for root in roots):
        raise Forbidden(f"{raw} is outside the folders this server may index")
    if not os.path.exists(real):
        raise NotFound(f"{raw} does not exist on the server")
    return real


@contextlib.contextmanager
def open_indexed(item: ItemRow, roots: Sequence[str]) -> Iterator[tuple[int, os.stat_result]]:
    """Open ``item``'s file for reading if the path rule allows it: ``(fd, stat)``.

    The descriptor is closed when the block ends. Raises :class:`NotFound` (never says
    why beyond "not available", so a probe learns nothing about the file system).
    """
    refused = NotFound(f"the file of item {item.id} is not available")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(item.path, flags)
    except OSError as exc:
        raise refused from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _same_file(item, st):
            raise refused
        real = _opened_path(fd, item.path)
        if real is None or not any(is_within(real, r) for r in roots):
            raise refused
        os.set_blocking(fd, True)
        yield fd, st
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def serving_roots(extra: Sequence[str | Path], indexed: Sequence[str]) -> list[str]:
    """The folders files may be served from: the server's own and those indexed (resolved)."""
    return sorted({os.path.realpath(os.fspath(r)) for r in (*extra, *indexed)})


def _same_file(item: ItemRow, st: os.stat_result) -> bool:
    """Whether ``st`` is the file indexed, unchanged since: the device and inode recorded
    (since schema v3), the same size, and no newer modification time. (An inode number
    can be reused by a new file at once, so the inode alone is not proof.)"""
    if item.dev is not None and (st.st_dev, st.st_ino) != (item.dev, item.ino):
        return False
    if item.size is not None and st.st_size != item.size:
        return False
    return item.mtime is None or st.st_mtime <= item.mtime


def _opened_path(fd: int, path: str) -> str | None:
    """The resolved path of the file open at ``fd`` (Linux: ``/proc/self/fd``)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        real = os.path.realpath(path)  # other systems: resolve, then check it is that file
        try:
            same = os.path.samestat(os.stat(real), os.fstat(fd))
        except OSError:
            return None
        return real if same else None
