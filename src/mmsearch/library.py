"""Library: one persistent collection on disk, where catalog, indexes and encoder meet.

A library folder holds ``catalog.sqlite`` (items, segments, vectors, journal)
and ``index/`` (FAISS files, a cache of the catalog's vectors). It records the
model it was built with and refuses vectors from another model.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmsearch.encoders.base import Encoder, EncoderInfo
from mmsearch.encoders.registry import DEFAULT_MODEL, load_encoder
from mmsearch.errors import LibraryError, ModelMismatchError, QueryError
from mmsearch.ingest.pipeline import IngestOptions, Ingestor
from mmsearch.ingest.report import IngestReport
from mmsearch.search.engine import SearchEngine
from mmsearch.search.query import Query, QueryPart, parse_query_string
from mmsearch.store.catalog import Catalog
from mmsearch.store.migrations import SCHEMA_VERSION
from mmsearch.types import Hit, ImageInput
from mmsearch.vectorstore import VectorStore

log = logging.getLogger(__name__)

SPACE = "main"
CATALOG_FILE = "catalog.sqlite"


class Library:
    """Open with :meth:`open`; use :meth:`add`, :meth:`search`, :meth:`remove`, :meth:`info`."""

    def __init__(
        self,
        folder: Path,
        catalog: Catalog,
        space: dict[str, Any],
        *,
        encoder: Encoder | None,
        encoder_options: dict[str, Any],
        readonly: bool,
        memory_budget_bytes: int | None,
    ) -> None:
        self.folder = folder
        self.catalog = catalog
        self.space = space
        self.readonly = readonly
        self._encoder = encoder
        self._encoder_options = encoder_options
        self.vectors = VectorStore(
            catalog,
            folder / "index",
            int(space["dim"]),
            int(space["id"]),
            memory_budget_bytes=memory_budget_bytes,
            mmap=readonly,
            readonly=readonly,
        )
        self.engine = SearchEngine(catalog, self.vectors, int(space["id"]), self.encoder)

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        model: str | None = None,
        *,
        encoder: Encoder | None = None,
        readonly: bool = False,
        create: bool = True,
        memory_budget_bytes: int | None = None,
        **encoder_options: Any,
    ) -> Library:
        """Open (or create) the library at ``path``.

        ``model`` is a model spec; for an existing library it may be left out (the
        recorded model is used) and must otherwise produce the same space.
        ``encoder`` passes an already loaded encoder instead of a spec.
        """
        folder = Path(os.path.expanduser(os.fspath(path))).absolute()
        exists = (folder / CATALOG_FILE).is_file()
        if not exists and (readonly or not create):
            raise LibraryError(f"no library at {folder} (create one with `mmsearch index`)")
        if not exists:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "index").mkdir(exist_ok=True)
        catalog = Catalog.open(folder / CATALOG_FILE, readonly=readonly)
        try:
            space = catalog.get_space(SPACE)
            if space is None:
                encoder = encoder or load_encoder(model or DEFAULT_MODEL, **encoder_options)
                _create_space(catalog, encoder.info)
                space = catalog.get_space(SPACE)
                assert space is not None
            else:
                encoder = _check_model(space, model, encoder, encoder_options)
        except BaseException:
            catalog.close()
            raise
        return cls(
            folder,
            catalog,
            space,
            encoder=encoder,
            encoder_options=encoder_options,
            readonly=readonly,
            memory_budget_bytes=memory_budget_bytes,
        )

    def encoder(self) -> Encoder:
        """The library's encoder, loaded on first use."""
        if self._encoder is None:
            self._encoder = load_encoder(self.space["spec"], **self._encoder_options)
            _require_same_space(self.space, self._encoder.info)
        return self._encoder

    def close(self) -> None:
        if not self.readonly:
            self.vectors.save()
        self.catalog.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[None]:
        if self.readonly:
            raise LibraryError("library was opened read-only")
        with open(self.folder / "write.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise LibraryError(f"another process is writing to {self.folder}") from exc
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        metadata: dict[str, Any] | None = None,
        progress: bool = False,
        workers: int | None = None,
        batch_size: int = 64,
    ) -> IngestReport:
        """Index files and folders; re-adding is incremental. Returns counts and failures."""
        roots = [os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths]
        options = IngestOptions(
            batch_size=batch_size, workers=workers, metadata=dict(metadata or {}), progress=progress
        )
        with self._writing():
            ingestor = Ingestor(
                self.catalog, self.vectors, self.encoder(), int(self.space["id"]), options
            )
            return ingestor.run(roots)

    def remove(self, targets: Iterable[str | os.PathLike[str] | int]) -> int:
        """Remove items by id, file path, or every item under a folder. Returns the count."""
        ids: set[int] = set()
        for t in targets:
            if isinstance(t, int):
                ids.add(t)
                continue
            path = os.path.abspath(os.path.expanduser(os.fspath(t)))
            ids.update(item.id for item in self.catalog.iter_items(under=path))
        with self._writing():
            n = self.catalog.delete_items(sorted(ids))
            self.vectors.save()
        return n

    # -- reading -----------------------------------------------------------------------
    def search(
        self,
        query: str | Query | Sequence[QueryPart] | None = None,
        *,
        image: ImageInput | None = None,
        like: int | None = None,
        vector: Any = None,
        k: int = 10,
        filters: dict[str, Any] | None = None,
        modality: str | None = None,
        min_score: float | None = None,
    ) -> list[Hit]:
        """Search by text (weighted syntax allowed), image, item id, vector, or parts.

        ``filters`` keys: ``modality``, ``path_prefix``, ``date_from``, ``date_to``
        and any user metadata field (scalar = equality, ``{"gte": a, "lte": b}`` = range).
        With no modality filter, image items are searched when the library has any.
        """
        if isinstance(query, Query):
            return self.engine.search(query)
        parts: list[QueryPart] = []
        if isinstance(query, str):
            parts += parse_query_string(query)
        elif query is not None:
            parts += list(query)
        if image is not None:
            parts.append(QueryPart("image", image))
        if like is not None:
            parts.append(QueryPart("item", int(like)))
        if vector is not None:
            parts.append(QueryPart("vector", vector))
        flt = dict(filters or {})
        if modality is not None:
            flt["modality"] = modality
        if not parts:
            raise QueryError("nothing to search with: give text, image=, like= or vector=")
        return self.engine.search(Query(parts, k=k, filters=flt, min_score=min_score))

    def info(self) -> dict[str, Any]:
        indexes = {}
        for modality in self.catalog.vector_modalities(int(self.space["id"])):
            index = self.vectors.get(modality)
            indexes[modality] = {
                "kind": index.spec.kind,
                "params": index.spec.params,
                "size": len(index),
            }
        return {
            "path": str(self.folder),
            "schema_version": SCHEMA_VERSION,
            "model": self.space["spec"],
            "model_id": self.space["info"].get("model_id"),
            "fingerprint": self.space["fingerprint"],
            "dim": self.space["dim"],
            **self.catalog.counts(),
            "indexes": indexes,
        }

    def failures(self, limit: int | None = None) -> list[dict[str, Any]]:
        return [f.__dict__ for f in self.catalog.failures(limit)]


def _create_space(catalog: Catalog, info: EncoderInfo) -> None:
    catalog.create_space(SPACE, info.spec, info.fingerprint, info.dim, info.to_dict())


def _check_model(
    space: dict[str, Any], model: str | None, encoder: Encoder | None, options: dict[str, Any]
) -> Encoder | None:
    """Return the encoder to use (None = load lazily from the recorded spec)."""
    if encoder is None and (model is None or model == space["spec"]):
        return None
    if encoder is None:
        assert model is not None
        encoder = load_encoder(model, **options)
    _require_same_space(space, encoder.info)
    return encoder


def _require_same_space(space: dict[str, Any], info: EncoderInfo) -> None:
    if info.fingerprint != space["fingerprint"]:
        raise ModelMismatchError(
            f"this library was built with {space['spec']} "
            f"({space['info'].get('model_id')}, {space['dim']}-d, fingerprint {space['fingerprint']}), "
            f"but the model given is {info.spec} ({info.model_id}, {info.dim}-d, fingerprint "
            f"{info.fingerprint}). Vectors of different models cannot be mixed: use the library's "
            "own model (leave --model out), or index into a new library."
        )
