"""Backend "st": sentence-embedding models (sentence-transformers) for the ``text`` space.

A spec is ``st:<hub id>`` (``st:sentence-transformers/all-MiniLM-L6-v2``, ``st:BAAI/bge-m3``,
``st:intfloat/multilingual-e5-base``; a bare name such as ``st:all-MiniLM-L6-v2`` means
``sentence-transformers/<name>``, as in sentence-transformers itself), ``st:<folder>``, or
a folder holding ``modules.json`` / ``config_sentence_transformers.json`` (what
``SentenceTransformer.save`` writes; the registry recognises it). Hub repositories are
fetched through :mod:`mmsearch.encoders.hub` (one weight format, no ONNX/OpenVINO copies;
the offline cache and its one-line error), then ``SentenceTransformer`` loads the folder
with the model's own modules (transformer, pooling, dense, normalise).

Queries and documents. Retrieval models are often trained with a prefix on each side (E5:
``"query: "`` / ``"passage: "``; BGE v1.5: an instruction before queries). The prefixes are
the model's own ``prompts`` (``config_sentence_transformers.json``): ``query`` for queries,
the first non-empty of ``document``, ``passage``, ``corpus`` for documents, the names
``SentenceTransformer.encode_query`` / ``encode_document`` use, and both are passed
explicitly (sentence-transformers 6 fills an unset ``document`` prompt with ``""`` and
would then drop a model's ``passage`` prompt). Checkpoints published without prompts whose
cards demand prefixes (the E5 family) get their cards' prefixes from :data:`CARD_PROMPTS`,
keyed by hub id. :meth:`SentenceEncoder.encode_text` is the query side (what a search
embeds); :meth:`SentenceEncoder.encode_documents` the document side (what ingest embeds).
The prompts are part of the fingerprint: they change every vector.

Long documents. A text longer than the model's context (``max_tokens``, its
``max_seq_length``) would be truncated silently; :meth:`SentenceEncoder.encode_documents`
instead cuts it into overlapping windows that fit (``media.text.chunk_text``), embeds each
and returns the renormalised mean, as the CLAP encoder does for long clips.

Identity: a hub id, the card of a model mmsearch trained, or the hub cache layout name the
model; any other folder is its name plus a digest of its configuration and weights
(``config.json``'s ``_name_or_path`` names the base transformer, which many different
sentence models share, so it cannot tell them apart).

On CUDA the model runs in float16; outputs are always L2-normalised float32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch._lazy import require
from mmsearch.encoders import hub
from mmsearch.encoders.base import EncoderInfo, ImagePreprocessor, Pixels, pick_device
from mmsearch.errors import ModelMismatchError, ModelNotFoundError
from mmsearch.types import ImageInput, Vectors, l2_normalize

log = logging.getLogger(__name__)

BACKEND = "st"
DEFAULT_BATCH_SIZE = 32
DEFAULT_ORG = "sentence-transformers"
"""Organisation of a bare model name (``all-MiniLM-L6-v2``), as sentence-transformers resolves it."""
FALLBACK_MAX_TOKENS = 512
"""Context assumed when a model states none."""
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")
WINDOW_OVERLAP = 8
"""Consecutive windows of a long document share 1/8 of their characters."""
WINDOW_SLACK = 0.9
"""Windows aim at 90% of the context: characters per token vary along a text."""
LONG_DOCUMENTS = "overlapping windows that fit the context; mean of window vectors"
ST_FOLDER_FILES = ("modules.json", "config_sentence_transformers.json")
"""Files that mark a folder as a sentence-transformers model."""
_WEIGHTS = (("model", "safetensors"), ("pytorch_model", "bin"))
_MODULE_DIR = re.compile(r"^\d+_[^/]+$")
_CONFIG_FILES = (
    "modules.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "config.json",
)


@dataclass(frozen=True)
class Prompts:
    """The prefixes put before queries and documents, and where they came from."""

    query: str = ""
    document: str = ""
    source: str = "none"
    """``model`` (its config_sentence_transformers.json), ``card`` (:data:`CARD_PROMPTS`)
    or ``none``."""


_E5 = Prompts("query: ", "passage: ", "card")
_BGE_EN = Prompts("Represent this sentence for searching relevant passages: ", "", "card")

CARD_PROMPTS: dict[str, Prompts] = {
    "intfloat/multilingual-e5-small": _E5,
    "intfloat/multilingual-e5-base": _E5,
    "intfloat/multilingual-e5-large": _E5,
    "intfloat/e5-small-v2": _E5,
    "intfloat/e5-base-v2": _E5,
    "intfloat/e5-large-v2": _E5,
    "BAAI/bge-small-en-v1.5": _BGE_EN,
    "BAAI/bge-base-en-v1.5": _BGE_EN,
    "BAAI/bge-large-en-v1.5": _BGE_EN,
}
"""Prefixes from the model cards of checkpoints whose configs carry no prompts (by hub id)."""


def load(
    name: str,
    *,
    spec: str,
    device: str | None = None,
    batch_size: int | None = None,
    model_id: str | None = None,
    **_: Any,
) -> SentenceEncoder:
    """Load a sentence-transformers model from a local folder or a hub id."""
    folder, ident = resolve_folder(name, spec=spec, model_id=model_id)
    return SentenceEncoder(folder, spec=spec, model_id=ident, device=device, batch_size=batch_size)


def is_st_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a model saved by sentence-transformers."""
    return any((folder / f).is_file() for f in ST_FOLDER_FILES)


def resolve_folder(name: str, *, spec: str, model_id: str | None = None) -> tuple[Path, str]:
    """The local folder ``name`` names (a folder, or a hub id fetched or found in the
    cache) and the model's identity (``model_id`` overrides it)."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (is_st_folder(folder) or (folder / "config.json").is_file()):
            raise ModelNotFoundError(
                f"{folder} is not a sentence-transformers model folder: expected modules.json "
                "or config_sentence_transformers.json (or a transformers config.json)"
            )
        return folder, model_id or folder_model_id(folder)
    repo = name if "/" in name else f"{DEFAULT_ORG}/{name}"
    if hub.is_hub_id(repo):
        return hub.fetch_repo(repo, select_files, spec=spec), model_id or repo
    raise ModelNotFoundError(
        f"{spec!r} is neither a sentence-transformers model folder nor a hub id "
        "(org/name, or a name of the sentence-transformers organisation)"
    )


def select_files(files: Sequence[str]) -> list[str]:
    """From a hub repository's file list, what ``SentenceTransformer`` needs: the top-level
    configs, tokenizer and weights (one format), and the module folders (``1_Pooling/``,
    ``2_Dense/``, ...); never the ONNX or OpenVINO copies."""
    by_dir: dict[str, list[str]] = {}
    for f in files:
        folder, _, base = f.rpartition("/")
        if folder == "" or _MODULE_DIR.match(folder):
            by_dir.setdefault(folder, []).append(base)
    top = by_dir.get("", [])
    if "modules.json" not in top and "config.json" not in top:
        raise ModelNotFoundError(
            "the repository has neither modules.json nor config.json "
            "(not a sentence-transformers or transformers model)"
        )
    out: list[str] = []
    for folder, names in sorted(by_dir.items()):
        prefix = f"{folder}/" if folder else ""
        out += [prefix + n for n in _pick_files(names)]
    if not any(n.endswith((".safetensors", ".bin")) for n in out):
        raise ModelNotFoundError("the repository has no PyTorch weights (model.safetensors)")
    return out


def _pick_files(names: list[str]) -> list[str]:
    """Configs, tokenizer files and one weight format among the files of one folder."""
    aux = [n for n in names if n.endswith((".json", ".txt", ".model", ".tiktoken"))]
    for stem, ext in _WEIGHTS:
        weights = [n for n in names if re.fullmatch(rf"{stem}(-\d+-of-\d+)?\.{ext}", n)]
        if weights:
            index = f"{stem}.{ext}.index.json"
            aux = [n for n in aux if not n.endswith(".index.json") or n == index]
            return aux + weights
    return [n for n in aux if not n.endswith(".index.json")]


def folder_model_id(folder: Path) -> str:
    """A stable identity for a local folder (see the module docstring)."""
    known = hub.card_model_id(folder) or hub.hub_id_from_folder(folder)
    if known:
        return known
    return f"{folder.resolve().name}@{folder_digest(folder)}"


def folder_digest(folder: Path, head_bytes: int = 1 << 20) -> str:
    """A short digest of a model folder: its configs, and each weight file's size and first
    MiB (cheap for a large model, and different for any two trained weights)."""
    h = hashlib.sha256()
    for name in _CONFIG_FILES:
        path = folder / name
        if path.is_file():
            h.update(name.encode() + b"\0" + path.read_bytes())
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".safetensors", ".bin") and path.is_file():
            h.update(str(path.relative_to(folder)).encode() + b"\0")
            h.update(str(path.stat().st_size).encode())
            with open(path, "rb") as fh:
                h.update(fh.read(head_bytes))
    return h.hexdigest()[:12]


def resolve_prompts(folder: Path, model_id: str) -> Prompts:
    """The query and document prefixes of a model (see the module docstring)."""
    try:
        config = json.loads((folder / "config_sentence_transformers.json").read_text())
    except (OSError, ValueError):
        config = {}
    saved = config.get("prompts") if isinstance(config, dict) else None
    saved = {k: v for k, v in (saved or {}).items() if isinstance(v, str) and v}
    if saved:
        document = next((saved[n] for n in DOCUMENT_PROMPT_NAMES if n in saved), "")
        return Prompts(saved.get("query", ""), document, "model")
    return CARD_PROMPTS.get(model_id, Prompts())


class SentenceEncoder:
    """A sentence-transformers model: text in, unit float32 vectors out (queries through
    :meth:`encode_text`, segment text through :meth:`encode_documents`)."""

    text_only = True
    """It embeds no pictures: it can be a library's text space, never its image–text space."""

    def __init__(
        self,
        folder: Path,
        *,
        spec: str,
        model_id: str,
        device: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        st = require("sentence_transformers")  # names the "text" extra when missing
        self.device, dtype = pick_device(device)
        try:
            model = st.SentenceTransformer(str(folder), device=self.device, local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelNotFoundError(f"cannot load model {spec!r} from {folder}: {exc}") from exc
        self.model = model.to(dtype=dtype).eval()
        self.default_batch_size = batch_size or DEFAULT_BATCH_SIZE
        self.prompts = resolve_prompts(folder, model_id)
        self.max_tokens = int(getattr(model, "max_seq_length", None) or FALLBACK_MAX_TOKENS)
        self._doc_budget = max(8, self.max_tokens - 2 - self._count([self.prompts.document])[0])
        dim = int(self._encode(["a"], "query", 1).shape[1])
        self.info = EncoderInfo(
            spec=spec,
            backend=BACKEND,
            model_id=model_id,
            dim=dim,
            preprocessing={
                "prompts": {"query": self.prompts.query, "document": self.prompts.document},
                "long_documents": LONG_DOCUMENTS,
            },
            extra={
                "prompt_source": self.prompts.source,
                "max_tokens": self.max_tokens,
                "modules": [type(m).__name__ for m in model],
            },
        )

    @property
    def dim(self) -> int:
        return self.info.dim

    @property
    def max_chars(self) -> int:
        """Characters a chunk may hold and still fit the context, for text of at least one
        character per token (the common case: English averages about four); longer
        documents are cut into windows by :meth:`encode_documents` in any case."""
        return self._doc_budget

    # -- the two sides ---------------------------------------------------------------------
    def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors:
        """Queries (the ``query`` prompt), one unit row each."""
        return self._encode(list(texts), "query", batch_size)

    def encode_documents(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors:
        """Segment text (the document prompt), one unit row each; a text longer than the
        context is the renormalised mean of overlapping windows that fit."""
        pieces: list[str] = []
        owners: list[int] = []
        for i, (text, n) in enumerate(zip(texts, self._count(list(texts)), strict=True)):
            for piece in [text] if n <= self._doc_budget else self.windows(text):
                pieces.append(piece)
                owners.append(i)
        vecs = self._encode(pieces, "document", batch_size)
        if len(pieces) == len(texts):
            return vecs
        pooled = np.zeros((len(texts), self.dim), dtype=np.float64)
        np.add.at(pooled, np.asarray(owners), vecs)
        return l2_normalize(pooled)

    def windows(self, text: str) -> list[str]:
        """``text`` itself when it fits the context, else overlapping windows that do."""
        n = self._count([text])[0]
        if n <= self._doc_budget:
            return [text]
        from mmsearch.media.text import chunk_text

        size = max(16, int(len(text) * self._doc_budget / n * WINDOW_SLACK))
        chunks = chunk_text(text, max_chars=size, overlap_chars=size // WINDOW_OVERLAP)
        return [c.text for c in chunks] or [text]

    def _encode(self, texts: list[str], side: str, batch_size: int | None) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if side == "query":
            run, prompt = self.model.encode_query, self.prompts.query
        else:
            run, prompt = self.model.encode_document, self.prompts.document
        vecs = run(
            texts,
            prompt=prompt,
            batch_size=batch_size or self.default_batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return l2_normalize(np.asarray(vecs, dtype=np.float32))

    def _count(self, texts: list[str]) -> list[int]:
        """Tokens of each text without special tokens (0 for each when the model's
        tokenizer cannot count: then the model truncates, as sentence-transformers does)."""
        tokenizer = getattr(self.model, "tokenizer", None)
        try:
            ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]  # type: ignore[misc]
        except (TypeError, ValueError, KeyError) as exc:
            log.debug("cannot count tokens with %r: %s", tokenizer, exc)
            return [0] * len(texts)
        return [len(x) for x in ids]

    # -- no images: a text-only model cannot be a library's image–text model -----------
    def image_preprocessor(self) -> ImagePreprocessor:
        raise self._no_images()

    def encode_pixels(self, pixels: Pixels) -> Vectors:
        raise self._no_images()

    def encode_images(self, images: Sequence[ImageInput], batch_size: int | None = None) -> Vectors:
        raise self._no_images()

    def _no_images(self) -> ModelMismatchError:
        return ModelMismatchError(
            f"{self.info.spec} is a text-only sentence-embedding model: it cannot embed "
            "pictures, so it cannot be a library's image–text model; give it as --text-model"
        )
