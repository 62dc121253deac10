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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch.encoders.base import Encoder, EncoderInfo
from mmsearch.encoders.registry import DEFAULT_MODEL, load_encoder
from mmsearch.errors import LibraryError, QueryError
from mmsearch.ingest.report import IngestReport, storage_problem
from mmsearch.pathargs import PathArgs, Target, absolute, as_paths, as_targets
from mmsearch.search.engine import SearchEngine
from mmsearch.search.feedback import feedback_parts
from mmsearch.search.query import (
    RERANK_TOP,
    Fusion,
    Query,
    QueryPart,
    SearchMode,
    parse_query_string,
)
from mmsearch.search.recommend import recommend
from mmsearch.search.rerank.base import Reranker
from mmsearch.search.rerank.registry import load_reranker
from mmsearch.spaces import (
    AUDIO,
    MAIN,
    TEXT,
    VIDEO,
    Space,
    refuse_other_hub_model,
    require_same_space,
)
from mmsearch.store.catalog import Catalog
from mmsearch.store.migrations import SCHEMA_VERSION
from mmsearch.store.queries import existing_item_ids
from mmsearch.store.scope import Scope
from mmsearch.types import Hits, ImageInput
from mmsearch.vectorstore import VectorStore

if TYPE_CHECKING:  # pragma: no cover - imported where used: a search needs no ingest code
    from mmsearch.ingest.pipeline import IngestOptions, Ingestor

log = logging.getLogger(__name__)

SPACE = MAIN
CATALOG_FILE = "catalog.sqlite"
OPEN_LOCK = "open.lock"
"""Held while a library is created or its schema migrated (racing first runs wait)."""
REMOVED_REASON = "removed from the library (index it by name to add it again)"

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
        self._rerankers: dict[str, Reranker] = {}

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
        text_model: str | None = None,
        text_encoder: Any | None = None,
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
        ``audio_model`` (CLAP), ``video_model`` (X-CLIP) and ``text_model`` (a
        sentence-embedding model, ``st:...``) add the optional audio–text, video–text and
        text–text spaces; ``asr_model`` (Whisper) turns speech into searchable
        transcripts. Each may also be passed loaded (``encoder=``, ``audio_encoder=``,
        ``video_encoder=``, ``text_encoder=``, ``recognizer=``). Once a library has a space or a speech
        model, later opens use it without being told again.
        """
        folder = Path(os.path.expanduser(os.fspath(path))).absolute()
        exists = (folder / CATALOG_FILE).is_file()
        if not exists and (readonly or not create):
            raise LibraryError(f"no library at {folder} (create one with `mmsearch index`)")
        opts = encoder_options
        if not exists and encoder is None:
            # A library is made only with a model that loads: nothing is left behind when
            # the first model cannot be had (no hub, a typo).
            encoder = load_encoder(model or DEFAULT_MODEL, **opts)
        if encoder is not None and getattr(encoder, "text_only", False):
            raise LibraryError(
                f"{encoder.info.spec} is a text-only sentence-embedding model: give it as "
                "the text model (--text-model / text_model=), with an image–text model"
            )
        made = [] if exists else _make_folder(folder)
        try:
            with _open_lock(folder, readonly):
                catalog = Catalog.open(folder / CATALOG_FILE, readonly=readonly)
                try:
                    spaces = _open_spaces(
                        catalog,
                        folder,
                        {
                            MAIN: (model, encoder, lambda spec: load_encoder(spec, **opts), True),
                            AUDIO: (
                                audio_model,
                                audio_encoder,
                                lambda spec: _load_audio(spec, **opts),
                                False,
                            ),
                            VIDEO: (
                                video_model,
                                video_encoder,
                                lambda spec: _load_video(spec, **opts),
                                False,
                            ),
                            TEXT: (
                                text_model,
                                text_encoder,
                                lambda spec: _load_text(spec, **opts),
                                False,
                            ),
                        },
                        readonly,
                        memory_budget_bytes,
                    )
                    if asr_model is not None and not readonly:
                        if catalog.get_meta(ASR_META_KEY) != asr_model:
                            catalog.clear_all_failures()  # audio it could not read may work now
                        catalog.set_meta(ASR_META_KEY, asr_model)
                except BaseException:
                    catalog.close()
                    raise
        except BaseException:
            _unmake(made)
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
        try:
            if not self.readonly:
                for space in self.spaces.values():
                    space.vectors.save()
        except Exception as exc:
            why = storage_problem(exc)
            if why is None:
                raise
            # The catalog holds every vector; the index files are rebuilt from it later.
            log.info("index files not saved (%s); they are rebuilt next time", why)
        finally:
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
        try:
            lock = open(self.folder / "write.lock", "w")  # noqa: SIM115 (held across the yield)
        except OSError as exc:
            raise LibraryError(
                f"cannot write to the library at {self.folder}: {exc.strerror}"
            ) from exc
        with lock:
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
        paths: PathArgs,
        *,
        metadata: dict[str, Any] | None = None,
        progress: bool = False,
        workers: int | None = None,
        batch_size: int = 64,
        options: IngestOptions | None = None,
    ) -> IngestReport:
        """Index files and folders (one path or several); re-adding is incremental.

        Returns counts, failures and skips. ``options`` sets everything at once (video
        frame rate, audio windows, ...); the other keywords are shortcuts for its common
        fields. A path removed from the library earlier is indexed again only when it is
        named here itself. A re-embedding left unfinished is finished first.
        """
        from mmsearch.ingest.pipeline import IngestOptions

        roots = [absolute(p) for p in as_paths(paths)]
        opt = replace(options) if options else IngestOptions(batch_size=batch_size, workers=workers)
        if options is None:
            opt.metadata = dict(metadata or {})
            opt.progress = progress
        with self._writing():
            if self.reembed_pending():
                self._reembed(self.encoder(), opt)
            scope = Scope(self.catalog)
            scope.lift(roots)
            scope.add_roots(os.path.realpath(r) for r in roots if os.path.exists(r))
            return self._ingestor(opt).run(roots)

    def _ingestor(self, opt: IngestOptions) -> Ingestor:
        from mmsearch.ingest.pipeline import Ingestor

        return Ingestor(self.catalog, self.spaces, opt, recognizer=self.recognizer)

    def exclude(self, patterns: Iterable[str]) -> None:
        """Keep files matching gitignore-style ``patterns`` (relative to each indexed folder)
        out of this and later runs; items already indexed leave at the next run."""
        with self._writing():
            Scope(self.catalog).exclude_patterns(patterns)

    def unexclude(self, patterns: Iterable[str]) -> int:
        """Forget exclusion patterns given earlier; returns how many were known."""
        with self._writing():
            return Scope(self.catalog).remove_patterns(patterns)

    def exclusions(self) -> dict[str, Any]:
        scope = Scope(self.catalog)
        return {"patterns": scope.patterns(), "paths": scope.excluded_paths()}

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
        interrupted run is resumed by calling this again with the same model, or by the
        next :meth:`add`: items already re-embedded are not redone.
        """
        from mmsearch.ingest.pipeline import IngestOptions

        with self._writing():
            main = self.spaces[MAIN]
            if encoder is None:
                encoder = load_encoder(model or main.spec, **encoder_options)
            resuming = (
                self.reembed_pending() and encoder.info.fingerprint == main.row["fingerprint"]
            )
            if not resuming:
                self.catalog.set_meta(REEMBED_META_KEY, str(self.catalog.max_item_id()))
                info = encoder.info
                self.catalog.replace_space_model(
                    MAIN, info.spec, info.fingerprint, info.dim, info.to_dict()
                )
                self.catalog.clear_all_failures()  # the new model may read what the old could not
            return self._reembed(encoder, replace(options) if options else IngestOptions())

    def _reembed(self, encoder: Encoder, opt: IngestOptions) -> IngestReport:
        """Re-embed the items left from before the model changed (the write lock is held)."""
        pending = int(self.catalog.get_meta(REEMBED_META_KEY) or 0)
        main = self.spaces[MAIN]
        # The engine shares this dict, so it searches the new space from here on.
        self.spaces[MAIN] = _reopened(self.catalog, self.folder, main, encoder)
        paths = [item.path for item in self.catalog.iter_items() if item.id <= pending]
        report = self._ingestor(replace(opt, redo_upto=pending)).run(paths)
        if not report.interrupted and report.error is None:
            self.catalog.set_meta(REEMBED_META_KEY, "0")
        report.reembed_pending = self.reembed_pending()
        return report

    def reembed_text(
        self,
        model: str | None = None,
        *,
        encoder: Any | None = None,
        options: IngestOptions | None = None,
    ) -> IngestReport:
        """Switch the text space to another sentence-embedding model and embed every text
        segment again (from the catalog: no file is read). An interrupted run is finished
        by the next :meth:`add`."""
        from mmsearch.ingest.pipeline import IngestOptions

        with self._writing():
            space = self.spaces.get(TEXT)
            if space is None:
                raise LibraryError("the library has no text space (index with --text-model)")
            enc = encoder or _load_text(model or space.spec)
            if enc.info.fingerprint != space.row["fingerprint"]:
                i = enc.info
                self.catalog.replace_space_model(TEXT, i.spec, i.fingerprint, i.dim, i.to_dict())
            self.spaces[TEXT] = _reopened(self.catalog, self.folder, space, enc)
            self.engine = SearchEngine(self.catalog, self.spaces)
            return self._ingestor(replace(options) if options else IngestOptions()).run([])

    def reembed_pending(self) -> int:
        """How many items still wait to be re-embedded with the library's new model."""
        upto = int(self.catalog.get_meta(REEMBED_META_KEY) or 0)
        return self.catalog.count_items_upto(upto) if upto else 0

    def match_targets(self, targets: Target | Iterable[Target]) -> list[tuple[Target, list[int]]]:
        """Each target (an item id, a file or a folder) with the ids of the items it names."""
        out: list[tuple[Target, list[int]]] = []
        for t in as_targets(targets):
            if isinstance(t, int) and not isinstance(t, bool):
                out.append((t, sorted(existing_item_ids(self.catalog, [t]))))
            else:
                under = absolute(t)  # type: ignore[arg-type]
                out.append((t, [item.id for item in self.catalog.iter_items(under=under)]))
        return out

    def remove(self, targets: Target | Iterable[Target], *, forget: bool = False) -> int:
        """Remove items by id, file path, or every item under a folder. Returns the count.

        By default what is removed stays out of later runs (a removed file does not come
        back when its folder is indexed again; naming it in :meth:`add` brings it back).
        ``forget=True`` only drops the items: the next index of their folder adds them again.
        """
        matched = self.match_targets(targets)
        ids = sorted({i for _, found in matched for i in found})
        with self._writing():
            if not forget:
                items = self.catalog.items(ids)
                keep_out = {absolute(t) for t, found in matched if found and not isinstance(t, int)}
                keep_out |= {
                    items[i].path
                    for t, found in matched
                    if isinstance(t, int)
                    for i in found
                    if i in items
                }
                Scope(self.catalog).exclude_paths(sorted(keep_out), REMOVED_REASON)
            n = self.catalog.delete_items(ids)
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
        like: int | Sequence[int] | None = None,
        unlike: int | Sequence[int] | None = None,
        vector: Any = None,
        k: int = 10,
        filters: dict[str, Any] | None = None,
        modality: str | None = None,
        min_score: float | None = None,
        mode: SearchMode = "hybrid",
        fusion: Fusion = "calibrated",
        weights: dict[str, float] | None = None,
        rerank: str | Reranker | Sequence[str | Reranker] | None = None,
        rerank_top: int = RERANK_TOP,
        dedupe: bool = False,
        exclude: Iterable[int] = (),
    ) -> Hits:
        """Search by text (weighted syntax allowed), image, audio or video clip, item ids,
        vector, or parts; every index that can answer contributes evidence.

        ``filters`` keys: ``modality`` (which vectors: image, text, video, audio),
        ``type`` (which items), ``path_prefix``, ``date_from``, ``date_to`` and any user
        metadata field (scalar = equality, ``{"gte": a, "lte": b}`` = range).

        Scores are on one calibrated scale (0–1: how sure it is that the match is not
        chance, see ``search/calibrate.py``) in every mode; ``min_score`` cuts there, and
        ``Hits.best_below`` keeps the best hit it dropped. ``mode`` is ``hybrid`` (vectors
        and full text), ``vector`` or ``lexical``; ``fusion`` is ``calibrated`` or ``rrf``;
        ``weights`` weigh sources (``main/image``, ``text/text``, ``lexical``, ...).

        ``like`` / ``unlike``: item ids the user marked relevant or not. Alone, ``like`` is
        "more like these"; with other parts they refine the query (Rocchio, per space).
        ``rerank``: reranker specs or objects that re-score the top ``rerank_top``
        candidates with cross-attention. ``dedupe`` folds near-duplicate hits into one
        (``Hit.similar``). ``exclude``: item ids never returned.
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
        if vector is not None:
            parts.append(QueryPart("vector", vector))
        parts += feedback_parts(bool(parts), _ids(like), _ids(unlike))
        flt = dict(filters or {})
        if modality is not None:
            flt["modality"] = modality
        if not parts:
            raise QueryError(
                "nothing to search with: give text, image=, audio=, video=, like= or vector="
            )
        q = Query(
            parts,
            k=k,
            filters=flt,
            min_score=min_score,
            mode=mode,
            fusion=fusion,
            weights=dict(weights or {}),
            rerank=self.rerankers(rerank),
            rerank_top=rerank_top,
            dedupe=dedupe,
            exclude=frozenset(_ids(exclude) + _ids(unlike)),
        )
        return self.engine.search(q)

    def recommend(
        self,
        positive: int | Sequence[int],
        *,
        negative: int | Sequence[int] = (),
        exclude: Iterable[int] = (),
        k: int = 10,
        diversity: float = 0.0,
        recency: float | None = None,
        filters: dict[str, Any] | None = None,
        min_score: float | None = None,
    ) -> Hits:
        """ "More like these": items near ``positive`` (a history, oldest first) and away
        from ``negative``, never one of them nor one of ``exclude``.

        ``diversity`` (0–1) trades relevance for variety by maximal marginal relevance;
        ``recency`` (0–1) weighs each older positive that much less than the next
        (``None``: all alike).
        """
        return recommend(
            self.engine,
            _ids(positive),
            negative=_ids(negative),
            exclude=_ids(exclude),
            k=k,
            diversity=diversity,
            recency=recency,
            filters=dict(filters or {}),
            min_score=min_score,
        )

    def rerankers(self, specs: str | Reranker | Sequence[str | Reranker] | None) -> list[Reranker]:
        """Rerankers for ``specs`` (loaded once per library and kept)."""
        if specs is None:
            return []
        items = [specs] if isinstance(specs, (str, Reranker)) else list(specs)
        out: list[Reranker] = []
        for spec in items:
            if isinstance(spec, str):
                if spec not in self._rerankers:
                    self._rerankers[spec] = load_reranker(spec)
                out.append(self._rerankers[spec])
            else:
                out.append(spec)
        return out

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
        pending = self.reembed_pending()
        if pending:
            out["reembed_pending"] = (
                f"{pending} item(s) still to re-embed with {main.spec}: they are not searchable "
                "until then; `mmsearch index` (any path, or --reembed) finishes it"
            )
        scope = Scope(self.catalog)
        out["roots"] = scope.roots()
        out["excluded"] = {"patterns": scope.patterns(), "paths": len(scope.excluded_paths())}
        return out

    def failures(self, limit: int | None = None) -> list[dict[str, Any]]:
        return [f.__dict__ for f in self.catalog.failures(limit)]


def _ids(value: int | Iterable[int] | None) -> list[int]:
    """One id or many (``None``: none), as a list of ints."""
    if value is None:
        return []
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    return [int(v) for v in value]


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
        if readonly and name == MAIN:
            raise LibraryError(
                f"the library at {folder} was never finished (no model recorded: its first "
                "`mmsearch index` failed before anything was added); delete the folder, or run "
                "`mmsearch index` on it again"
            )
        if readonly:
            raise LibraryError(f"the library has no {name} space and was opened read-only")
        if encoder is None:
            encoder = loader(spec or DEFAULT_MODEL)
        _create_space(catalog, name, encoder.info)
        if name != MAIN:
            catalog.clear_all_failures()  # files refused for want of this model: retry them
        row = catalog.get_space(name)
        assert row is not None
    elif encoder is None and spec is not None and spec != row["spec"]:
        refuse_other_hub_model(row, spec, name)  # before any download
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


def _open_spaces(
    catalog: Catalog,
    folder: Path,
    wanted: dict[str, tuple[str | None, Any | None, Callable[[str], Any], bool]],
    readonly: bool,
    memory_budget_bytes: int | None,
) -> dict[str, Space]:
    spaces: dict[str, Space] = {}
    for name, (spec, enc, loader, required) in wanted.items():
        space = _open_space(
            catalog, folder, name, spec, enc, loader, required, readonly, memory_budget_bytes
        )
        if space is not None:
            spaces[name] = space
    return spaces


def _make_folder(folder: Path) -> list[Path]:
    """Create a new library's folders; returns what was made (to undo on failure)."""
    made: list[Path] = []
    try:
        for d in (*reversed(folder.parents), folder, folder / "index"):
            if not d.exists():
                d.mkdir()
                made.append(d)
    except OSError as exc:
        _unmake(made)
        raise LibraryError(f"cannot create a library at {folder}: {exc.strerror or exc}") from exc
    return made


def _unmake(made: list[Path]) -> None:
    """Undo :func:`_make_folder` after a failed first open: remove what it made."""
    ours = (CATALOG_FILE, "write.lock", OPEN_LOCK)
    for d in reversed(made):
        for f in d.iterdir():
            if f.is_file() and f.name.startswith(ours):
                f.unlink(missing_ok=True)
        try:
            d.rmdir()
        except OSError:
            return  # not empty: something else lives there now; leave it


@contextmanager
def _open_lock(folder: Path, readonly: bool) -> Iterator[None]:
    """Serialise creating and migrating a library (two first runs may race)."""
    if readonly:
        yield
        return
    try:
        lock = open(folder / OPEN_LOCK, "w")  # noqa: SIM115 (held across the yield)
    except OSError as exc:
        raise LibraryError(f"cannot write to the library at {folder}: {exc.strerror}") from exc
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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


def _load_text(spec: str, **options: Any) -> Any:
    """A sentence-embedding model (the ``text`` space): any spec the registry resolves to
    an encoder with ``encode_text`` (``st:`` sentence-transformers, a local folder)."""
    return load_encoder(spec, **_torch_options(options))


def _load_video(spec: str, **options: Any) -> Any:
    from mmsearch.encoders.av_registry import load_video_encoder

    return load_video_encoder(spec, **_torch_options(options))


def _torch_options(options: dict[str, Any]) -> dict[str, Any]:
    """The encoder options that make sense for every torch backend (device)."""
    return {k: v for k, v in options.items() if k in ("device",)}
