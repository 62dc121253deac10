"""Decide, per discovered file, whether it is new, changed, touched, moved or unchanged.

Cheap checks first (size + mtime of the file and its sidecars), the content
hash only when those differ. A file that failed before and has not changed is
not retried (its failure stays recorded) unless the run asks for it; failures are
forgotten when the library's models change (the cause may be gone).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Literal

from mmsearch.ingest.hashing import content_hash
from mmsearch.media.discover import Discovered
from mmsearch.store.catalog import Catalog

Action = Literal["embed", "unchanged", "touched", "moved", "failed_before"]


@dataclass(frozen=True)
class Planned:
    file: Discovered
    action: Action
    stat_mtime: float
    content_hash: str | None = None
    item_id: int | None = None
    """For ``embed``: the item it replaces; for ``touched``/``moved``: the item to update."""


def combined_mtime(d: Discovered) -> float:
    """The newest mtime among the file and its sidecars."""
    mtimes = [d.mtime]
    for side in sidecars(d):
        if side is not None:
            with contextlib.suppress(OSError):
                mtimes.append(os.stat(side).st_mtime)
    return max(mtimes)


def sidecars(d: Discovered) -> list[str | None]:
    """The files whose content is part of an item: caption, metadata, subtitles."""
    return [d.caption_path, d.meta_path, *getattr(d, "subtitle_paths", ())]


def plan_file(
    catalog: Catalog,
    d: Discovered,
    claimed: set[int],
    *,
    redo_upto: int = 0,
    retry_failed: bool = False,
) -> Planned:
    """Plan one file. ``claimed`` holds ids of items already matched in this run; items
    with ids up to ``redo_upto`` are embedded again even when unchanged (re-embedding
    a library with a new model: re-embedded items get new, higher ids). A recorded
    failure of an unchanged file is not retried unless ``retry_failed``."""
    mtime = combined_mtime(d)
    existing = catalog.item_by_path(d.path)
    if existing is not None and existing.id <= redo_upto:
        return Planned(d, "embed", mtime, content_hash([d.path, *sidecars(d)]), existing.id)
    if existing is not None and existing.size == d.size and existing.mtime == mtime:
        return Planned(d, "unchanged", mtime, existing.content_hash, existing.id)
    if existing is None and not retry_failed:
        failed = catalog.failure_stat(d.path)
        if failed is not None and failed == (d.size, mtime):
            return Planned(d, "failed_before", mtime)
    digest = content_hash([d.path, *sidecars(d)])
    if existing is not None:
        if existing.content_hash == digest:
            return Planned(d, "touched", mtime, digest, existing.id)
        return Planned(d, "embed", mtime, digest, existing.id)
    for candidate in catalog.items_by_hash(digest):
        if candidate.id not in claimed and not os.path.lexists(candidate.path):
            return Planned(d, "moved", mtime, digest, candidate.id)
    return Planned(d, "embed", mtime, digest, None)
