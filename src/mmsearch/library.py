"""Library: one persistent collection on disk, where catalog, indexes and encoder meet.

A library folder holds ``catalog.sqlite`` (items, segments, vectors, journal)
and ``index/`` (FAISS files, a cache of the catalog's vectors). It records the
model it was built with and refuses vectors from another model.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmsearch.encoders.base import Encoder, EncoderInfo
from mmsearch.encoders.registry import DEFAULT_MODEL, load_encoder
from mmsearch.errors import LibraryError, QueryError
from mmsearch.ingest.pipeline import IngestOptions, Ingestor
from mmsearch.ingest.report import IngestReport
from mmsearch.search.engine import SearchEngine
from mmsearch.search.query import Query, QueryPart, SearchMode, parse_query_string
from mmsearch.spaces import AUDIO, MAIN, VIDEO, Space, require_same_space
from mmsearch.store.catalog import Catalog
from mmsearch.store.migrations import SCHEMA_VERSION
from mmsearch.types import Hit, ImageInput
from mmsearch.vectorstore import VectorStore

log = logging.getLogger(__name__)

SPACE = MAIN
CATALOG_FILE = "catalog.sqlite"
ASR_META_KEY = "asr_model"
REEMBED_META_KEY = "reembed_upto"


class Library:
    """Open with :meth:`open`; use :meth:`add`, :meth:`search`, :meth:`remove`, :meth:`info`."""

    def __init__(
        self,
        folder: Path,
        catalog: Catalog,
        spaces: dict[str, Space],
        *,
        readonly: bool,
        recognizer: Any | None = None,
    ) -> None:
        self.folder = folder
        self.catalog = catalog
        self.spaces = spaces
        self.readonly = readonly
        self._recognizer = recognizer
        self.engine = SearchEngine(catalog, spaces)

    @property
    def space(self) -> dict[str, Any]:
        """The image–text space's catalog row (model spec, fingerprint, dim)."""
        return self.spaces[MAIN].row

    @property
    def vectors(self) -> VectorStore:
        return self.spaces[MAIN].vectors

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        model: str | None = None,
        *,
        encoder: Encoder | None = None,
        audio_model: str | None = None,
        audio_encoder: Any | None = None,
        video_model: str | None = None,
        video_encoder: Any | None = None,
        asr_model: str | None = None,
        recognizer: Any | None = None,
        readonly: bool = False,
        create: bool = True,
        memory_budget_bytes: int | None = None,
        **encoder_options: Any,
    ) -> Library:
        """Open (or create) the library at ``path``.

        ``model`` is the image–text model spec; for an existing library it may be left
        out (the recorded model is used) and must otherwise produce the same space.
        ``audio_model`` (CLAP) and ``video_model`` (X-CLIP) add the optional audio–text
        and video–text spaces; ``asr_model`` (Whisper) turns speech into searchable
        transcripts. Each may also be passed loaded (``encoder=``, ``audio_encoder=``,
        ``video_encoder=``, ``recognizer=``). Once a library has a space or a speech
        model, later opens use it without being told again.
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
            opts = encoder_options
            wanted = {
                MAIN: (model, encoder, lambda spec: load_encoder(spec, **opts), True),
                AUDIO: (audio_model, audio_encoder, lambda spec: _load_audio(spec, **opts), False),
                VIDEO: (video_model, video_encoder, lambda spec: _load_video(spec, **opts), False),
            }
            spaces: dict[str, Space] = {}
            for name, (spec, enc, loader, required) in wanted.items():
                space = _open_space(
                    catalog,
                    folder,
                    name,
                    spec,
                    enc,
                    loader,
                    required,
                    readonly,
                    memory_budget_bytes,
                )
                if space is not None:
                    spaces[name] = space
            if asr_model is not None and not readonly:
                catalog.set_meta(ASR_META_KEY, asr_model)
        except BaseException:
            catalog.close()
            raise
        return cls(folder, catalog, spaces, readonly=readonly, recognizer=recognizer)

    def encoder(self) -> Encoder:
        """The library's image–text encoder, loaded on first use."""
        enc: Encoder = self.spaces[MAIN].encoder()
        return enc

    def audio_encoder(self) -> Any | None:
        """The audio–text encoder (CLAP), or None when the library has no audio space."""
        space = self.spaces.get(AUDIO)
        return None if space is None else space.encoder()

    def video_encoder(self) -> Any | None:
        space = self.spaces.get(VIDEO)
        return None if space is None else space.encoder()

    def recognizer(self) -> Any | None:
        """The speech recogniser (Whisper), or None when the library transcribes nothing."""
        if self._recognizer is None:
            spec = self.catalog.get_meta(ASR_META_KEY)
            if spec:
                from mmsearch.encoders.av_registry import load_recognizer

                self._recognizer = load_recognizer(spec)
        return self._recognizer

    def close(self) -> None:
        if not self.readonly:
            for space in self.spaces.values():
                space.vectors.save()
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
        options: IngestOptions | None = None,
    ) -> IngestReport:
        """Index files and folders; re-adding is incremental. Returns counts and failures.

        ``options`` sets everything at once (video frame rate, audio windows, ...);
        the other keywords are shortcuts for its common fields.
        """
        roots = [os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths]
        opt = options or IngestOptions(batch_size=batch_size, workers=workers)
        if options is None:
            opt.metadata = dict(metadata or {})
            opt.progress = progress
        with self._writing():
            ingestor = Ingestor(
                self.catalog,
                self.spaces,
                opt,
                recognizer=self.recognizer,
            )
            return ingestor.run(roots)

    def reembed(
        self,
        model: str | None = None,
        *,
        encoder: Encoder | None = None,
        options: IngestOptions | None = None,
        **encoder_options: Any,
    ) -> IngestReport:
        """Embed every item again with another image–text model (a fine-tuned one, say).

        The space switches to the new model at once (its old vectors are dropped in the
        same transaction), then each item is re-embedded and committed as usual. An
        interrupted run is resumed by calling this again with the same model: items
        already re-embedded are not redone.
        """
        with self._writing():
            main = self.spaces[MAIN]
            pending = int(self.catalog.get_meta(REEMBED_META_KEY) or 0)
            if encoder is None:
                encoder = load_encoder(model or main.spec, **encoder_options)
            resuming = pending and encoder.info.fingerprint == main.row["fingerprint"]
            if not resuming:
                pending = self.catalog.max_item_id()
                self.catalog.set_meta(REEMBED_META_KEY, str(pending))
                info = encoder.info
                self.catalog.replace_space_model(
                    MAIN, info.spec, info.fingerprint, info.dim, info.to_dict()
                )
            # The engine shares this dict, so it searches the new space from here on.
            self.spaces[MAIN] = _reopened(self.catalog, self.folder, main, encoder)
            paths = [item.path for item in self.catalog.iter_items() if item.id <= pending]
            opt = options or IngestOptions()
            opt.redo_upto = pending
            report = Ingestor(self.catalog, self.spaces, opt, recognizer=self.recognizer).run(paths)
            if not report.interrupted:
                self.catalog.set_meta(REEMBED_META_KEY, "0")
            return report

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
            for space in self.spaces.values():
                space.vectors.save()
        return n

    # -- reading -----------------------------------------------------------------------
    def search(
        self,
        query: str | Query | Sequence[QueryPart] | None = None,
        *,
        image: ImageInput | None = None,
        audio: Any = None,
        video: Any = None,
        like: int | None = None,
        vector: Any = None,
        k: int = 10,
        filters: dict[str, Any] | None = None,
        modality: str | None = None,
        min_score: float | None = None,
        mode: SearchMode = "vector",
    ) -> list[Hit]:
        """Search by text (weighted syntax allowed), image, audio or video clip, item id,
        vector, or parts.

        ``filters`` keys: ``modality`` (which vectors: image, text, video, audio),
        ``type`` (which items), ``path_prefix``, ``date_from``, ``date_to`` and any user
        metadata field (scalar = equality, ``{"gte": a, "lte": b}`` = range). With no
        modality filter, each space's primary vectors are searched: photos and video
        frames, sound windows, video clips. ``mode`` is ``vector``, ``lexical`` (full
        text over captions, text, subtitles and transcripts) or ``hybrid``.
        """
        if isinstance(query, Query):
            return self.engine.search(query)
        parts: list[QueryPart] = []
        if isinstance(query, str):
            parts += parse_query_string(query)
        elif query is not None:
            parts += list(query)
        for kind, value in (("image", image), ("audio", audio), ("video", video)):
            if value is not None:
                parts.append(QueryPart(kind, value))  # type: ignore[arg-type]
        if like is not None:
            parts.append(QueryPart("item", int(like)))
        if vector is not None:
            parts.append(QueryPart("vector", vector))
        flt = dict(filters or {})
        if modality is not None:
            flt["modality"] = modality
        if not parts:
            raise QueryError(
                "nothing to search with: give text, image=, audio=, video=, like= or vector="
            )
        return self.engine.search(Query(parts, k=k, filters=flt, min_score=min_score, mode=mode))

    def thumbnail(self, segment_id: int) -> bytes | None:
        """The stored JPEG keyframe of a segment (video moments), if any."""
        return self.catalog.thumbnail(segment_id)

    def info(self) -> dict[str, Any]:
        main = self.spaces[MAIN]
        out: dict[str, Any] = {
            "path": str(self.folder),
            "schema_version": SCHEMA_VERSION,
            "model": main.spec,
            "model_id": main.row["info"].get("model_id"),
            "fingerprint": main.row["fingerprint"],
            "dim": main.dim,
            **self.catalog.counts(),
            "indexes": _indexes(main),
        }
        extra = {}
        for name, space in self.spaces.items():
            if name != MAIN:
                extra[name] = {
                    "model": space.spec,
                    "model_id": space.row["info"].get("model_id"),
                    "fingerprint": space.row["fingerprint"],
                    "dim": space.dim,
                    "indexes": _indexes(space),
                }
        if extra:
            out["spaces"] = extra
        asr = self.catalog.get_meta(ASR_META_KEY)
        if asr:
            out["asr_model"] = asr
        return out

    def failures(self, limit: int | None = None) -> list[dict[str, Any]]:
        return [f.__dict__ for f in self.catalog.failures(limit)]


def _indexes(space: Space) -> dict[str, Any]:
    out = {}
    for modality in space.modalities():
        index = space.vectors.get(modality)
        out[modality] = {"kind": index.spec.kind, "params": index.spec.params, "size": len(index)}
    return out


def _open_space(
    catalog: Catalog,
    folder: Path,
    name: str,
    spec: str | None,
    encoder: Any | None,
    loader: Callable[[str], Any],
    required: bool,
    readonly: bool,
    memory_budget_bytes: int | None,
) -> Space | None:
    """Open (creating when asked) one space; None for an optional space not in use."""
    row = catalog.get_space(name)
    if row is None:
        if encoder is None and spec is None and not required:
            return None
        if readonly:
            raise LibraryError(f"the library has no {name} space and was opened read-only")
        if encoder is None:
            encoder = loader(spec or DEFAULT_MODEL)
        _create_space(catalog, name, encoder.info)
        row = catalog.get_space(name)
        assert row is not None
    elif encoder is None and spec is not None and spec != row["spec"]:
        encoder = loader(spec)
    if encoder is not None:
        require_same_space(row, encoder.info, name)
    vectors = VectorStore(
        catalog,
        folder / "index",
        int(row["dim"]),
        int(row["id"]),
        memory_budget_bytes=memory_budget_bytes,
        mmap=readonly,
        readonly=readonly,
    )
    return Space(name, row, vectors, loader, encoder, catalog)


def _reopened(catalog: Catalog, folder: Path, old: Space, encoder: Any) -> Space:
    """``old`` after its model changed: fresh row, fresh vector store of the new dimension."""
    row = catalog.get_space(old.name)
    assert row is not None
    vectors = VectorStore(
        catalog,
        folder / "index",
        int(row["dim"]),
        int(row["id"]),
        memory_budget_bytes=old.vectors.memory_budget_bytes,
    )
    return Space(old.name, row, vectors, old.loader, encoder, catalog)


def _create_space(catalog: Catalog, name: str, info: EncoderInfo) -> None:
    catalog.create_space(name, info.spec, info.fingerprint, info.dim, info.to_dict())


def _load_audio(spec: str, **options: Any) -> Any:
    from mmsearch.encoders.av_registry import load_audio_encoder

    return load_audio_encoder(spec, **_torch_options(options))


def _load_video(spec: str, **options: Any) -> Any:
    from mmsearch.encoders.av_registry import load_video_encoder

    return load_video_encoder(spec, **_torch_options(options))


def _torch_options(options: dict[str, Any]) -> dict[str, Any]:
    """The encoder options that make sense for every torch backend (device)."""
    return {k: v for k, v in options.items() if k in ("device",)}
