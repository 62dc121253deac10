"""Search requests: the JSON body, and how its parts become library query parts.

Text is always literal text here: unlike the command line, a term that happens
to name a file on the server is never opened. How to search (mode, fusion, source
weights, cut-off, feedback, near-duplicates, rerankers) is :class:`SearchOptions`,
shared by the JSON body and the upload form. Media parts (an image, a video or
audio clip) arrive as base64 or as an upload, are written to a private
temporary folder and checked (type from the bytes, pixel and duration limits)
before any decoder sees them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mmsearch.errors import DecodeError, QueryError
from mmsearch.search.query import RERANK_TOP, QueryPart
from mmsearch.server.checks import (
    MAX_WEIGHT,
    InvalidInput,
    check_filters,
    check_ids,
    check_item_id,
    check_text,
    check_weights,
)
from mmsearch.server.rerankers import MAX_NAMES
from mmsearch.server.uploads import UploadRejected, check_media

Mode = Literal["vector", "lexical", "hybrid"]
FusionName = Literal["calibrated", "rrf"]
VectorModality = Literal["image", "text", "video", "audio", "any", "all"]
MAX_RERANK_TOP = 200
"""Candidates a reranker may be asked to re-score (each is a model call)."""
MAX_RERANK_NAME = 200
Weight = Annotated[
    float,
    Field(
        ge=-MAX_WEIGHT,
        le=MAX_WEIGHT,
        allow_inf_nan=False,
        description="negative weights steer away from this part",
    ),
]
MinScore = Annotated[
    float | None,
    Field(
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="drop hits scoring below this (0–1, the calibrated scale); when that "
        "leaves nothing, the answer's note names the best hit dropped",
    ),
]
_DATA_URL = re.compile(r"^data:[\w/+.-]*;base64,", re.I)


class PartIn(BaseModel):
    """One weighted query part."""

    kind: Literal["text", "image", "video", "audio", "vector", "item"]
    value: str | int | list[float] = Field(
        description="text; base64 (or a data: URL) for image/video/audio; "
        "numbers for vector; an item id for item"
    )
    weight: Weight = 1.0

    @model_validator(mode="after")
    def _value_fits_kind(self) -> PartIn:
        if self.kind == "item" and isinstance(self.value, int):
            check_item_id(self.value)
        elif self.kind == "text" and isinstance(self.value, str):
            check_text(self.value, "a text part")
        return self


class SearchOptions(BaseModel):
    """How to search, whatever the query is made of (shared by the JSON and form routes)."""

    model_config = ConfigDict(extra="forbid")

    like: list[int] = Field(
        default_factory=list,
        description="item ids marked relevant (an id or a list): with a query they refine "
        'it (relevance feedback), alone they are the query ("more like these")',
    )
    unlike: list[int] = Field(
        default_factory=list,
        description="item ids marked not relevant: the query moves away from them and they "
        "are not returned",
    )
    exclude: list[int] = Field(default_factory=list, description="item ids never returned")
    k: int = Field(10, ge=1, le=1000, description="number of hits")
    mode: Mode = Field(
        "hybrid",
        description="hybrid (every index that can answer, and full text), vector "
        "(embeddings only) or lexical (full text only)",
    )
    fusion: FusionName = Field(
        "calibrated",
        description="calibrated (each source's scores on one 0–1 scale, evidence added) or "
        "rrf (reciprocal rank, for comparison)",
    )
    weights: dict[str, float] = Field(
        default_factory=dict,
        description='weight of each source, e.g. {"main/image": 1, "text/text": 2, '
        '"lexical": 0.5} (sources not named weigh 1; 0 leaves one out)',
    )
    modality: VectorModality | None = Field(
        None,
        description="which vectors: image, text, video, audio or any (default: every "
        "index that can answer the query)",
    )
    filters: dict[str, Any] = Field(
        default_factory=dict,
        description="type (item kind or list), path_prefix, date_from, date_to (ISO dates), "
        'or any metadata field: a value, or a range {"gte": a, "lte": b}',
    )
    min_score: MinScore = None
    dedupe: bool = Field(
        False,
        description="fold near-duplicates (one picture resized, one frame in two videos) "
        "into one hit, listed in its similar",
    )
    rerank: bool | str | list[str] | None = Field(
        None,
        description="re-score the top candidates with cross-attention: true = every "
        "reranker this server was started with (--reranker), or the name of one of them",
    )
    rerank_top: int = Field(
        RERANK_TOP, ge=1, le=MAX_RERANK_TOP, description="candidates the rerankers re-score"
    )

    @field_validator("like", "unlike", "exclude", mode="before")
    @classmethod
    def _valid_ids(cls, value: Any) -> list[int]:
        return check_ids(value)

    @field_validator("weights", mode="before")
    @classmethod
    def _valid_weights(cls, value: Any) -> dict[str, float]:
        return check_weights(value)

    @field_validator("filters")
    @classmethod
    def _valid_filters(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_filters(value)

    @field_validator("rerank", mode="before")
    @classmethod
    def _valid_rerank(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("give true, false, a reranker's name or a list of names")
        if len(names) > MAX_NAMES:
            raise ValueError(f"name at most {MAX_NAMES} rerankers")
        for name in names:
            if not name.strip() or len(name) > MAX_RERANK_NAME:
                raise ValueError(f"a reranker name is 1 to {MAX_RERANK_NAME} characters")
            check_text(name, "a reranker name")
        return value


class SearchRequest(SearchOptions):
    """A search. Give at least one of text, image, embedding, like or parts."""

    text: str | None = Field(None, description="text query (any language the model reads)")
    image: str | None = Field(None, description="query image as base64 or a data: URL")
    embedding: list[float] | None = Field(None, description="a query vector of the model's size")
    parts: list[PartIn] = Field(default_factory=list, description="weighted parts, combined")

    @field_validator("text")
    @classmethod
    def _valid_text(cls, value: str | None) -> str | None:
        return None if value is None else check_text(value)


@dataclass
class MediaLimits:
    max_bytes: int
    max_pixels: int
    max_clip_s: float


def json_field(raw: str | None, what: str) -> Any:
    """The value of a form field holding JSON (``{}`` when empty or absent).

    Text that is not JSON (or nests too deep to parse) is :class:`InvalidInput` naming
    ``what``; the caller checks the value's shape.
    """
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} must be a JSON object: {exc.msg}") from exc
    except RecursionError as exc:
        raise InvalidInput(f"{what} is nested too deeply") from exc


def form_filters(raw: str | None) -> dict[str, Any]:
    """Filters sent as a JSON form field, checked as the JSON body's are."""
    value = json_field(raw, "filters")
    try:
        return check_filters(value)
    except ValueError as exc:
        raise InvalidInput(f"filters: {exc}") from exc


def form_options(raw: str | None, **fields: Any) -> SearchOptions:
    """Search options of a form: the JSON ``options`` field with ``fields`` (the form's own
    fields) over it, checked as the JSON body's are (422 naming what is wrong)."""
    extra = json_field(raw, "options")
    if not isinstance(extra, dict):
        raise InvalidInput("options must be a JSON object")
    clash = sorted(set(extra) & set(fields))
    if clash:
        raise InvalidInput(f"options: send {clash[0]} as its own form field")
    try:
        return SearchOptions.model_validate({**extra, **fields})
    except ValidationError as exc:
        errors = [{**e, "loc": ("options", *e.get("loc", ()))} for e in exc.errors()]
        raise RequestValidationError(errors) from exc


def decode_base64(value: str, limit: int, what: str = "image") -> bytes:
    text = _DATA_URL.sub("", value.strip(), count=1)
    text = "".join(text.split())
    if len(text) * 3 // 4 > limit:
        raise UploadRejected(413, f"query {what} too large (over {limit / 1048576:.1f} MiB)")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise QueryError(f"the query {what} is not valid base64") from exc


class PartBuilder:
    """Turns request parts into :class:`QueryPart` s, keeping media files in ``tmp``."""

    def __init__(self, tmp: Path, limits: MediaLimits) -> None:
        self.tmp = tmp
        self.limits = limits
        self._n = 0

    def media_file(self, data: bytes, name: str | None = None) -> Path:
        self._n += 1
        path = self.tmp / f"query-{self._n}{Path(name).suffix if name else ''}"
        path.write_bytes(data)
        return path

    def media_part(self, path: Path, weight: float = 1.0, name: str | None = None) -> QueryPart:
        """A query part for a media file, of the kind its bytes show."""
        kind = check_media(
            path,
            max_pixels=self.limits.max_pixels,
            max_duration_s=self.limits.max_clip_s,
            display_name=name or "query file",
        )
        if kind == "image":
            from mmsearch.media.image import open_image_rgb

            try:
                return QueryPart(
                    "image", open_image_rgb(path, max_pixels=self.limits.max_pixels), weight
                )
            except DecodeError as exc:
                raise UploadRejected(422, f"{name or 'query image'}: {exc.reason}") from exc
        if kind in ("video", "audio"):
            return QueryPart(kind, str(path), weight)  # type: ignore[arg-type]
        raise UploadRejected(415, f"{name or 'query file'}: a {kind} file cannot be a query")

    def part(self, p: PartIn) -> QueryPart:
        if p.kind == "text":
            return QueryPart("text", str(p.value), p.weight)
        if p.kind == "item":
            if not isinstance(p.value, int):
                raise QueryError("an item part needs an integer item id")
            return QueryPart("item", p.value, p.weight)
        if p.kind == "vector":
            if not isinstance(p.value, list):
                raise QueryError("a vector part needs a list of numbers")
            return QueryPart("vector", _vector(p.value), p.weight)
        if not isinstance(p.value, str):
            raise QueryError(f"an {p.kind} part needs base64 data")
        data = decode_base64(p.value, self.limits.max_bytes, p.kind)
        return self.media_part(self.media_file(data), p.weight)

    def parts(self, req: SearchRequest) -> list[QueryPart]:
        out: list[QueryPart] = []
        if req.text is not None and req.text.strip():
            out.append(QueryPart("text", req.text.strip()))
        if req.image:
            data = decode_base64(req.image, self.limits.max_bytes)
            out.append(self.media_part(self.media_file(data), name="query image"))
        if req.embedding is not None:
            out.append(QueryPart("vector", _vector(req.embedding)))
        out += [self.part(p) for p in req.parts]
        if not out and not req.like:
            raise QueryError("nothing to search with: give text, image, embedding, like or parts")
        return out


def _vector(values: list[float]) -> Any:
    import numpy as np

    vec = np.asarray(values, dtype=np.float32)
    if vec.ndim != 1 or vec.size == 0 or not np.all(np.isfinite(vec)):
        raise QueryError("a query vector must be a non-empty list of finite numbers")
    return vec


def query_kind(parts: list[QueryPart]) -> str:
    """A label for metrics: the part kind, or ``mixed``."""
    kinds = {p.kind for p in parts}
    return next(iter(kinds)) if len(kinds) == 1 else "mixed"
