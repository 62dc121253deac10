"""Keeps one FAISS index per (space, modality) in step with the catalog.

The catalog journals every vector add/remove (``index_log``) in the same
transaction as the rows. An index is saved as ``<space>-<modality>.<seq>.index``
(a manifest naming its data files, committed atomically by ``FaissIndex.save``),
where ``seq`` is the last journal entry it contains. Opening loads the newest
readable index and replays the journal after its ``seq``, so a process killed
mid-ingest loses nothing that was committed. Each saved file carries a random token
that the catalog records once the file is written: a file the catalog does not name
(left from a deleted catalog, or newer than a catalog that lost its last commits) is
never trusted, and a file whose checksum fails is discarded; either way the index is
rebuilt from the catalog's vectors, with a warning. When the planner's choice of index
kind changes (the collection grew past the exact-search threshold), the index is
rebuilt from stored vectors; HNSW tombstones are compacted when they pile up.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from mmsearch.index.faiss_index import FaissIndex
from mmsearch.index.planner import choose_spec, needs_rebuild
from mmsearch.store.catalog import Catalog
from mmsearch.types import Ids, Vectors

log = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^(?P<space>\d+)-(?P<modality>[a-z]+)\.(?P<seq>\d+)\.index$")
TOMBSTONE_COMPACT_RATIO = 0.25


@dataclass
class _Entry:
    index: FaissIndex
    seq: int
    dirty: bool = False


@dataclass
class VectorStore:
    """The FAISS indexes of one library folder."""

    catalog: Catalog
    folder: Path
    dim: int
    space_id: int
    memory_budget_bytes: int | None = None
    exact_threshold: int = 50_000
    mmap: bool = False
    readonly: bool = False
    _open: dict[str, _Entry] = field(default_factory=dict)

    # -- loading and catching up -------------------------------------------------------
    def get(self, modality: str) -> FaissIndex:
        """The index for ``modality``, loaded and caught up with the catalog."""
        entry = self._open.get(modality)
        if entry is None:
            entry = self._open[modality] = self._load(modality)
        self._catch_up(entry, modality)
        return entry.index

    def _saved(self, modality: str) -> list[tuple[int, Path]]:
        """Saved indexes of ``modality``, newest first."""
        found = []
        for p in self.folder.glob(f"{self.space_id}-{modality}.*.index"):
            m = _FILE_RE.match(p.name)
            if m:
                found.append((int(m["seq"]), p))
        return sorted(found, reverse=True)

    def _newest_seq(self, modality: str) -> int:
        saved = self._saved(modality)
        return saved[0][0] if saved else -1

    def _token_key(self, modality: str) -> str:
        return f"index_file:{self.space_id}-{modality}"

    def _load(self, modality: str) -> _Entry:
        expected = self.catalog.get_meta(self._token_key(modality))
        for seq, path in self._saved(modality):
            try:
                index = FaissIndex.load(path, mmap=self.mmap)
            except Exception as exc:  # a damaged file: fall back to an older one or rebuild
                log.warning("ignoring index %s (%s); rebuilding it from the catalog", path, exc)
                continue
            if expected is None or index.token != expected:
                log.warning(
                    "ignoring index %s: the catalog did not write it (a catalog deleted or "
                    "restored since?); rebuilding it from the catalog",
                    path,
                )
                continue
            if index.dim == self.dim:
                return _Entry(index, seq)
        return self._build(modality)

    def _build(self, modality: str) -> _Entry:
        seq = self.catalog.last_seq()
        n = self.catalog.count_vectors(self.space_id, modality)
        spec = choose_spec(
            n,
            self.dim,
            memory_budget_bytes=self.memory_budget_bytes,
            exact_threshold=self.exact_threshold,
        )
        ids, vecs = self._all_vectors(modality)
        log.info("building %s index for %s (%d vectors)", spec.kind, modality, len(ids))
        return _Entry(FaissIndex.build(spec, ids, vecs), seq, dirty=True)

    def _all_vectors(self, modality: str) -> tuple[Ids, Vectors]:
        id_parts: list[Ids] = []
        vec_parts: list[Vectors] = []
        for ids, vecs in self.catalog.iter_vectors(self.space_id, modality):
            id_parts.append(ids)
            vec_parts.append(vecs)
        if not id_parts:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(id_parts), np.concatenate(vec_parts)

    def _catch_up(self, entry: _Entry, modality: str) -> None:
        last = self.catalog.last_seq()
        if last <= entry.seq:
            return
        # Another process may have checkpointed past us and trimmed the journal we would
        # replay: then start again from its file and replay what follows it. (An index
        # with changes of its own is this process's: it is the writer, nobody trims past it.)
        if not entry.dirty and self._newest_seq(modality) > entry.seq:
            fresh = self._load(modality)
            entry.index, entry.seq, entry.dirty = fresh.index, fresh.seq, fresh.dirty
        removed, added = self.catalog.changes_since(self.space_id, modality, entry.seq)
        if len(removed):
            entry.index.remove(removed)
        if len(added):
            entry.index.add(added, self.catalog.vectors(added.tolist(), self.dim))
        entry.seq = last
        entry.dirty = entry.dirty or bool(len(removed) or len(added))

    # -- writing -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Catch every open index up with the catalog (after commits)."""
        for modality, entry in self._open.items():
            self._catch_up(entry, modality)

    def save(self) -> None:
        """Write every changed index atomically, then drop older files and absorbed journal."""
        if self.readonly:
            return
        for modality in self.catalog.vector_modalities(self.space_id):
            self.get(modality)
        self.refresh()
        for modality, entry in self._open.items():
            self._maintain(modality, entry)
            if not entry.dirty and self._saved(modality):
                continue
            self.folder.mkdir(parents=True, exist_ok=True)
            token = secrets.token_hex(8)
            entry.index.save(
                self.folder / f"{self.space_id}-{modality}.{entry.seq}.index", token=token
            )
            # The catalog names the file it trusts only once the file is whole; a reader in
            # between still loads the older file, which the catalog names until now.
            self.catalog.set_meta(self._token_key(modality), token)
            entry.dirty = False
            for seq, old in self._saved(modality):
                if seq != entry.seq:
                    _delete_saved(old)
        if self._open:
            self.catalog.trim_log(min(e.seq for e in self._open.values()), self.space_id)

    def _maintain(self, modality: str, entry: _Entry) -> None:
        """Rebuild when the planner would now choose another kind; compact tombstones."""
        if needs_rebuild(
            entry.index.spec,
            len(entry.index),
            self.dim,
            self.memory_budget_bytes,
            exact_threshold=self.exact_threshold,
        ):
            fresh = self._build(modality)
            entry.index, entry.seq, entry.dirty = fresh.index, fresh.seq, True
        elif entry.index.tombstone_ratio > TOMBSTONE_COMPACT_RATIO:
            entry.index.compact()
            entry.dirty = True

    # -- searching ---------------------------------------------------------------------
    def search(
        self, modality: str, queries: Vectors, k: int, allowed: Ids | None = None
    ) -> tuple[NDArray[np.float32], Ids]:
        return self.get(modality).search(queries, k, allowed=allowed)

    def size(self, modality: str) -> int:
        return len(self.get(modality))


def _delete_saved(manifest: Path) -> None:
    """Delete a saved index: its manifest and the data files named after it."""
    for f in manifest.parent.glob(manifest.name + ".*"):
        f.unlink(missing_ok=True)
    manifest.unlink(missing_ok=True)
