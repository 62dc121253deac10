"""Embedding spaces of a library: one encoder, one dimension, one FAISS index per modality.

A library always has the image–text space ``main`` (CLIP, SigLIP, ...): photos,
video frames, whole-video pooled vectors, text chunks, captions, subtitles and
transcripts live there. Two optional spaces join it when the user names a model:
``audio`` (text–audio, CLAP: windows of recordings and of video sound tracks) and
``video`` (text–video clip, X-CLIP), and ``text`` (a sentence-embedding model such as
all-MiniLM-L6-v2 or bge-m3: text–text, for captions, text files, subtitles and
transcripts, which CLIP-family text towers read poorly). Each space records its model's fingerprint and
refuses vectors from another model, and each embeds only the query parts it
understands (an image cannot be searched in the audio space).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.encoders.base import EncoderInfo
from mmsearch.errors import ModelMismatchError, QueryError
from mmsearch.search.query import QueryPart
from mmsearch.store.catalog import Catalog
from mmsearch.types import Vectors, l2_normalize
from mmsearch.vectorstore import VectorStore

MAIN, AUDIO, VIDEO, TEXT = "main", "audio", "video", "text"
SPACE_NAMES: tuple[str, ...] = (MAIN, AUDIO, VIDEO, TEXT)

# Which query parts each space can embed ("item" and "vector" are handled for all).
_EMBEDS: dict[str, frozenset[str]] = {
    MAIN: frozenset({"text", "image", "video"}),
    AUDIO: frozenset({"text", "audio"}),
    VIDEO: frozenset({"text", "video"}),
    TEXT: frozenset({"text"}),
}

# The vector modalities a plain query searches in each space, in order of preference.
PRIMARY_MODALITIES: dict[str, tuple[str, ...]] = {
    MAIN: ("image",),
    AUDIO: ("audio",),
    VIDEO: ("video",),
    TEXT: ("text",),
}

QUERY_CLIP_SECONDS = 120.0
"""The longest query clip (audio or video) that is decoded."""


@dataclass
class Space:
    """One space of an open library, with its encoder loaded on first use."""

    name: str
    row: dict[str, Any]
    vectors: VectorStore
    loader: Callable[[str], Any]
    encoder_obj: Any | None = None
    catalog: Catalog | None = field(default=None, repr=False)

    @property
    def id(self) -> int:
        return int(self.row["id"])

    @property
    def dim(self) -> int:
        return int(self.row["dim"])

    @property
    def spec(self) -> str:
        return str(self.row["spec"])

    def encoder(self) -> Any:
        if self.encoder_obj is None:
            enc = self.loader(self.spec)
            require_same_space(self.row, enc.info, self.name)
            self.encoder_obj = enc
        return self.encoder_obj

    def modalities(self) -> list[str]:
        assert self.catalog is not None
        return self.catalog.vector_modalities(self.id)

    # -- query embedding ---------------------------------------------------------------
    def can_embed(self, part: QueryPart) -> bool:
        if part.kind == "vector":
            return np.asarray(part.value).reshape(-1).shape[0] == self.dim
        if part.kind == "item":
            assert self.catalog is not None
            return self.catalog.item_has_vectors(int(part.value), self.id)
        return part.kind in _EMBEDS[self.name]

    def embed(self, part: QueryPart) -> Vectors:
        """One unit vector for ``part`` in this space."""
        if part.kind == "vector":
            return l2_normalize(np.asarray(part.value, dtype=np.float32).reshape(-1))[0]
        if part.kind == "item":
            assert self.catalog is not None
            vecs = self.catalog.item_vectors(int(part.value), self.id)
            if len(vecs) == 0:
                raise QueryError(f"no item with id {part.value} in the {self.name} space")
            return l2_normalize(vecs.mean(axis=0))[0]
        enc = self.encoder()
        if part.kind == "text":
            return np.asarray(enc.encode_text([str(part.value)])[0], dtype=np.float32)
        if part.kind == "image":
            return np.asarray(enc.encode_images([part.value])[0], dtype=np.float32)
        if part.kind == "audio":
            return np.asarray(enc.encode_audio([_audio_clip(part.value, enc)])[0], np.float32)
        if part.kind == "video":
            frames = _video_frames(part.value)
            if self.name == VIDEO:
                return np.asarray(enc.encode_videos([frames])[0], dtype=np.float32)
            vecs = enc.encode_images(frames)
            return l2_normalize(np.asarray(vecs).mean(axis=0))[0]
        raise QueryError(f"the {self.name} space cannot embed a {part.kind} query")


def require_same_space(row: dict[str, Any], info: EncoderInfo, name: str = MAIN) -> None:
    """Refuse an encoder whose vectors would not be comparable with the stored ones."""
    if info.fingerprint != row["fingerprint"]:
        what = "this library" if name == MAIN else f"this library's {name} space"
        raise ModelMismatchError(
            f"{what} was built with {row['spec']} "
            f"({row['info'].get('model_id')}, {row['dim']}-d, fingerprint {row['fingerprint']}), "
            f"but the model given is {info.spec} ({info.model_id}, {info.dim}-d, fingerprint "
            f"{info.fingerprint}). Vectors of different models cannot be mixed: use the library's "
            "own model (leave the model option out), or index into a new library."
        )


def refuse_other_hub_model(row: dict[str, Any], spec: str, name: str = MAIN) -> None:
    """Refuse, before anything is downloaded, a hub model that cannot be this space's.

    A hub spec (``hf:org/name``, a bare ``org/name``, ``openclip:hf-hub:org/name``) names
    its model id; when that is not the id the space was built with, loading it could only
    end in :class:`ModelMismatchError`. Local folders and ONNX exports (which keep their
    source model's id) are loaded and compared by fingerprint instead.
    """
    hub_id = _hub_model_id(spec)
    if hub_id is None or hub_id == row["info"].get("model_id"):
        return
    what = "this library" if name == MAIN else f"this library's {name} space"
    raise ModelMismatchError(
        f"{what} was built with {row['spec']} ({row['info'].get('model_id')}), but the model "
        f"given is {spec}. Vectors of different models cannot be mixed: use the library's own "
        "model (leave the model option out), or index into a new library."
    )


def _hub_model_id(spec: str) -> str | None:
    import re

    if Path(spec).expanduser().exists():
        return None
    for prefix in ("hf:", "openclip:hf-hub:", "st:", ""):
        rest = spec[len(prefix) :] if spec.startswith(prefix) else None
        if rest is not None and re.fullmatch(r"[\w.-]+/[\w.-]+", rest):
            return rest
    return None


def _audio_clip(value: Any, enc: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return np.asarray(value, dtype=np.float32).reshape(-1)
    from mmsearch.errors import DecodeError
    from mmsearch.media.audio import load_audio

    try:
        return load_audio(
            str(Path(value).expanduser()),
            sample_rate=int(enc.sample_rate),
            max_seconds=QUERY_CLIP_SECONDS,
        )
    except DecodeError as exc:
        raise QueryError(f"cannot use {value} as an audio query: {exc.reason}") from exc


def _video_frames(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    from mmsearch.errors import DecodeError
    from mmsearch.media.video import load_clip_frames

    try:
        frames = load_clip_frames(str(Path(value).expanduser()), fps=1.0, max_frames=64)
    except DecodeError as exc:
        raise QueryError(f"cannot use {value} as a video query: {exc.reason}") from exc
    if not frames:
        raise QueryError(f"no frames could be decoded from {value}")
    return [f.image for f in frames]
