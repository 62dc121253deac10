"""Backend "onnx": run an exported image–text model with onnxruntime, without torch.

A model folder (written by :mod:`mmsearch.encoders.onnx_export`) holds
``mmsearch_onnx.json``, ``image.onnx`` and ``text.onnx`` (their weights in
aligned ``.data`` side files that onnxruntime memory-maps; single-file graphs
from older exports load too) and a ``tokenizer.json`` for the `tokenizers`
library. The JSON records the source model's identity,
dimension and image preprocessing unchanged, so an export shares the vector
space (the :attr:`EncoderInfo.fingerprint`) of the model it came from; it
also holds the tokenizer settings (cleaning steps, length, padding) and the
image preprocessing as an :class:`~mmsearch.encoders.preprocess_np.ImageConfig`.

This module imports neither torch nor transformers: a CLI text search with an
ONNX encoder loads onnxruntime, tokenizers and numpy only (ftfy only for text
it would change). Each graph's session is created on first use, so a text
query never loads the image tower, and starts light (cheap to build, see
:func:`make_session`) until the encoder has encoded more than a query's worth.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import string
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch._lazy import require
from mmsearch.encoders.base import (
    EncoderInfo,
    ImageEncoderMixin,
    ImagePreprocessor,
    Pixels,
    batched,
)
from mmsearch.encoders.preprocess_np import ImageConfig, NumpyImagePreprocessor
from mmsearch.errors import MMSearchError, ModelNotFoundError
from mmsearch.types import Vectors, l2_normalize

log = logging.getLogger(__name__)

CONFIG_FILE = "mmsearch_onnx.json"
FORMAT_VERSION = 1
DEFAULT_BATCH_SIZE = 32


def load(
    name: str,
    *,
    spec: str,
    device: str | None = None,
    batch_size: int | None = None,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    **_: Any,
) -> OnnxEncoder:
    """Open an exported model folder (``onnx:/path`` or a folder with ``mmsearch_onnx.json``)."""
    folder = Path(name).expanduser()
    if not (folder / CONFIG_FILE).is_file():
        raise ModelNotFoundError(
            f"{spec!r}: {folder} is not an ONNX export (no {CONFIG_FILE}); "
            "make one with `mmsearch models export-onnx`"
        )
    return OnnxEncoder(
        folder,
        spec=spec,
        device=device,
        batch_size=batch_size,
        providers=providers,
        threads=threads,
    )


# ---- text ----------------------------------------------------------------------------------

_PUNCTUATION = str.maketrans("", "", string.punctuation)


_FTFY_INERT = re.compile(r"[\t\n\x20-\x25\x27-\x7e]*")
"""Text ftfy returns unchanged: printable ASCII, tabs and newlines, no ``&`` (HTML entities)."""


def _ftfy(text: str) -> str:
    if _FTFY_INERT.fullmatch(text):  # most queries: no need to import ftfy (~50 ms)
        return text
    fix: Callable[[str], str] = require("ftfy").fix_text
    return fix(text)


_CLEANERS: dict[str, Callable[[str], str]] = {
    "ftfy": _ftfy,
    "html_unescape": lambda t: html.unescape(html.unescape(t)),
    "nfc": lambda t: unicodedata.normalize("NFC", t),
    "whitespace": lambda t: " ".join(t.split()),
    "strip": str.strip,
    "lower": str.lower,
    "underscore_to_space": lambda t: t.replace("_", " "),
    "strip_punctuation": lambda t: t.translate(_PUNCTUATION),
}
"""Text cleaning steps a tokenizer config may list, applied in order before tokenizing."""

CLEAN_STEPS = tuple(_CLEANERS)


def clean_text(text: str, steps: Sequence[str]) -> str:
    """Apply the named cleaning steps (see :data:`CLEAN_STEPS`) to one string."""
    for step in steps:
        cleaner = _CLEANERS.get(step)
        if cleaner is None:
            raise MMSearchError(f"unknown text cleaning step {step!r}; known: {CLEAN_STEPS}")
        text = cleaner(text)
    return text


@dataclass(frozen=True)
class TextConfig:
    """How the source model tokenizes: the `tokenizers` file plus what its caller did around it."""

    tokenizer_file: str = "tokenizer.json"
    inputs: tuple[str, ...] = ("input_ids",)
    """Graph inputs, in order; ``attention_mask`` and ``token_type_ids`` come from the encoding."""
    max_length: int = 77
    padding: str = "max_length"
    """``max_length`` (always pad to ``max_length``) or ``longest`` (pad to the batch's longest)."""
    pad_id: int = 0
    pad_token: str = ""
    padding_side: str = "right"
    truncation_side: str = "right"
    clean: tuple[str, ...] = ()
    """Cleaning steps applied in Python before the tokenizer (e.g. open_clip's ftfy + lower)."""
    strip_token_id: int | None = None
    """An id replaced by 0 after tokenizing (open_clip's ``strip_sep_token``)."""
    add_special_tokens: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inputs"], d["clean"] = list(self.inputs), list(self.clean)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("inputs", "clean"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


class TextTokenizer:
    """``texts -> {input name: int64 array}`` with a `tokenizers` tokenizer and a :class:`TextConfig`."""

    def __init__(self, tokenizer: Any, config: TextConfig) -> None:
        self.config = config
        tok = tokenizer
        tok.no_padding()
        tok.enable_truncation(max_length=config.max_length, direction=config.truncation_side)
        if config.padding == "max_length":
            length: int | None = config.max_length
        elif config.padding == "longest":
            length = None
        else:
            raise MMSearchError(f"unknown padding strategy {config.padding!r}")
        tok.enable_padding(
            direction=config.padding_side,
            pad_id=config.pad_id,
            pad_token=config.pad_token,
            length=length,
        )
        self.tokenizer = tok

    @classmethod
    def from_folder(cls, folder: Path, config: TextConfig) -> TextTokenizer:
        tokenizers = require("tokenizers")
        path = folder / config.tokenizer_file
        try:
            tok = tokenizers.Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad files
            raise ModelNotFoundError(f"cannot read tokenizer {path}: {exc}") from exc
        return cls(tok, config)

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        cfg = self.config
        cleaned = [clean_text(t, cfg.clean) for t in texts]
        encodings = self.tokenizer.encode_batch(cleaned, add_special_tokens=cfg.add_special_tokens)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        if cfg.strip_token_id is not None:
            ids[ids == cfg.strip_token_id] = 0
        arrays = {
            "input_ids": ids,
            "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids for e in encodings], dtype=np.int64),
        }
        return {name: arrays[name] for name in cfg.inputs}


# ---- sessions -------------------------------------------------------------------------------


def physical_cores() -> int:
    """Physical cores available to this process (hyper-threads counted once)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for cpu in cpus:
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(siblings.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def choose_providers(device: str | None, providers: Sequence[str] | None) -> list[str]:
    """Execution providers: as given, else CUDA first when available (unless ``device='cpu'``)."""
    ort = require("onnxruntime")
    available = set(ort.get_available_providers())
    if providers:
        missing = [p for p in providers if p not in available]
        if missing:
            raise MMSearchError(
                f"onnxruntime providers not available: {missing}; available: {sorted(available)}"
            )
        return list(providers)
    want_cuda = device is None or device.startswith("cuda")
    if want_cuda and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device is not None and device.startswith("cuda"):
        raise MMSearchError(
            "device='cuda' asked for, but this onnxruntime has no CUDAExecutionProvider "
            "(install onnxruntime-gpu)"
        )
    return ["CPUExecutionProvider"]


LIGHT_INPUTS = 16
"""Inputs a graph encodes with its light session before the full one is built (see
:class:`_Graph`)."""


def make_session(
    path: Path, providers: Sequence[str], threads: int | None = None, *, light: bool = False
) -> Any:
    """An InferenceSession with one intra-op thread per core.

    The full session (``light=False``) applies every graph optimisation and pre-packs
    the weights of matrix multiplications: the fastest for many inputs, but building it
    costs more CPU than one query does. A light session applies the basic
    optimisations only, packs nothing (the weights stay memory-mapped, see
    :mod:`~mmsearch.encoders.onnx_weights`) and lets idle threads sleep at once
    instead of spinning: the cheapest for a one-off query.
    """
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    levels = ort.GraphOptimizationLevel
    opts.graph_optimization_level = levels.ORT_ENABLE_BASIC if light else levels.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or physical_cores()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if light:
        opts.add_session_config_entry("session.disable_prepacking", "1")
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelNotFoundError(f"cannot load ONNX graph {path}: {exc}") from exc


def _feed_types(session: Any) -> dict[str, Any]:
    """numpy dtype for each graph input (int32 or int64 ids, float16 or float32 pixels)."""
    kinds = {
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(float)": np.float32,
        "tensor(float16)": np.float16,
    }
    return {i.name: kinds.get(i.type, np.float32) for i in session.get_inputs()}


# ---- encoder --------------------------------------------------------------------------------


@dataclass
class _Graph:
    """One graph of an export, its session built on first use.

    The first :data:`LIGHT_INPUTS` inputs (a query or a few) run in a light session,
    which is several times cheaper to build; an encoder that goes on encoding (an
    ingest, a server) then switches to the full session for throughput.
    """

    path: Path
    session: Any = None
    light: bool = True
    seen: int = 0
    types: dict[str, Any] = field(default_factory=dict)

    def ready(self, providers: Sequence[str], threads: int | None, inputs: int) -> Any:
        """The session to run ``inputs`` more inputs in (threads may share the encoder)."""
        self.seen += inputs
        session = self.session
        if session is None or (self.light and self.seen > LIGHT_INPUTS):
            light = self.seen <= LIGHT_INPUTS
            session = make_session(self.path, providers, threads, light=light)
            self.types = _feed_types(session)
            self.session, self.light = session, light
        return session


def read_config(folder: Path) -> dict[str, Any]:
    """The parsed ``mmsearch_onnx.json`` of an export, checked for a known format version."""
    path = folder / CONFIG_FILE
    try:
        config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot read {path}: {exc}") from exc
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelNotFoundError(
            f"{path} has format version {version!r}; this mmsearch reads up to {FORMAT_VERSION}"
        )
    return config


class OnnxEncoder(ImageEncoderMixin):
    """An exported dual encoder run by onnxruntime, behind the Encoder contract."""

    def __init__(
        self,
        folder: Path,
        *,
        spec: str,
        device: str | None = None,
        batch_size: int | None = None,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        self.folder = folder
        config = read_config(folder)
        self.config = config
        self.providers = choose_providers(device, providers)
        self.threads = threads
        self.default_batch_size = batch_size or DEFAULT_BATCH_SIZE
        try:
            self.text_config = TextConfig.from_dict(config["text"]["tokenizer"])
            self.image_config = ImageConfig.from_dict(config["image"]["preprocess"])
            self._graphs = {
                "text": _Graph(folder / config["text"]["file"]),
                "image": _Graph(folder / config["image"]["file"]),
            }
            model_id, dim = str(config["model_id"]), int(config["dim"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelNotFoundError(f"{folder / CONFIG_FILE} is malformed: {exc!r}") from exc
        self._pre = NumpyImagePreprocessor(self.image_config)
        self._tokenizer: TextTokenizer | None = None
        for graph in self._graphs.values():
            if not graph.path.is_file():
                raise ModelNotFoundError(f"ONNX export {folder} is missing {graph.path.name}")
        source = config.get("source", {})
        self.info = EncoderInfo(
            spec=spec,
            backend="onnx",
            model_id=model_id,
            dim=dim,
            preprocessing=dict(config.get("preprocessing", {})),
            extra={
                "source_backend": source.get("backend"),
                "quantization": config.get("quantization"),
                "providers": self.providers,
            },
        )

    @property
    def dim(self) -> int:
        return self.info.dim

    def _run(self, name: str, feed: dict[str, np.ndarray]) -> Vectors:
        graph = self._graphs[name]
        inputs = len(next(iter(feed.values())))
        session = graph.ready(self.providers, self.threads, inputs)
        typed = {k: np.ascontiguousarray(v, dtype=graph.types.get(k)) for k, v in feed.items()}
        out = session.run(None, typed)[0]
        return l2_normalize(out)

    @property
    def tokenizer(self) -> TextTokenizer:
        if self._tokenizer is None:
            self._tokenizer = TextTokenizer.from_folder(self.folder, self.text_config)
        return self._tokenizer

    def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors:
        out = [
            self._run("text", self.tokenizer(list(chunk)))
            for chunk in batched(list(texts), batch_size or self.default_batch_size)
        ]
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out, axis=0)

    def image_preprocessor(self) -> ImagePreprocessor:
        return self._pre

    def encode_pixels(self, pixels: Pixels) -> Vectors:
        arr = np.asarray(pixels, dtype=np.float32)
        if arr.ndim == 3:
            arr = arr[None]
        name = self.config["image"].get("input", "pixel_values")
        return self._run("image", {name: arr})
