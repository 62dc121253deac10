"""What the torch backends share: loading, device placement, inference and numpy output.

* :func:`load_pretrained` loads a transformers checkpoint (model + processor) onto
  the device and dtype :func:`~mmsearch.encoders.base.pick_device` picks (CUDA and
  float16 when present, else CPU float32), in eval mode, with one
  :class:`~mmsearch.errors.ModelNotFoundError` for a folder it cannot read.
* :func:`run_features` calls a feature method in inference mode and returns
  L2-normalised float32 rows; :func:`encode_in_batches` runs it chunk by chunk.
* :func:`skip_weight_init` builds a model without random initialisation when every
  weight is loaded right after.
* :class:`TorchEncoderMixin` holds those for an encoder with ``model``,
  ``device`` and ``dtype``; :class:`TransformersTextMixin` adds the loading,
  ``encode_text`` and :class:`EncoderInfo` that the transformers dual encoders
  (hf, clap, xclip) share.

Torch itself is imported only when a function runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from mmsearch._lazy import require
from mmsearch.encoders.base import EncoderInfo, batched, pick_device
from mmsearch.errors import ModelNotFoundError
from mmsearch.types import Vectors, l2_normalize

if TYPE_CHECKING:  # pragma: no cover
    import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Pretrained:
    """A loaded checkpoint: its model (on ``device`` in ``dtype``, eval mode) and processor."""

    model: Any
    processor: Any
    device: str
    dtype: Any


def load_pretrained(
    folder: Path, *, spec: str, model_class: str, processor_class: str, device: str | None
) -> Pretrained:
    """Load ``transformers.<model_class>`` and ``<processor_class>`` from ``folder``."""
    transformers = require("transformers")
    device, dtype = pick_device(device)
    try:
        model = getattr(transformers, model_class).from_pretrained(folder)
        processor = getattr(transformers, processor_class).from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot load model {spec!r} from {folder}: {exc}") from exc
    return Pretrained(model.to(device=device, dtype=dtype).eval(), processor, device, dtype)


@contextmanager
def skip_weight_init() -> Iterator[None]:
    """Make ``torch.nn.init``'s in-place initialisers no-ops while a model is built.

    Only for a model whose every parameter is then loaded from a checkpoint with a
    strict ``load_state_dict``: random initialisation of a ViT-B/32 costs about 0.6 s
    of CPU for values that are overwritten at once. The functions are patched for
    the whole process while the block runs (build models one at a time).
    """
    init = require("torch").nn.init
    names = [n for n in vars(init) if n.endswith("_") and not n.startswith("_")]
    saved = {n: getattr(init, n) for n in names}

    def keep(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        return tensor

    try:
        for name in names:
            setattr(init, name, keep)
        yield
    finally:
        for name, fn in saved.items():
            setattr(init, name, fn)


def to_device(inputs: Mapping[str, Any], device: str, dtype: Any) -> dict[str, torch.Tensor]:
    """Tensors moved to ``device``; floating ones also cast to ``dtype`` (ids and masks keep theirs)."""
    moved = {}
    for key, value in dict(inputs).items():
        value = value.to(device)
        moved[key] = value.to(dtype) if value.is_floating_point() else value
    return moved


def features_to_numpy(feats: Any) -> Vectors:
    """Features (a tensor, or an output whose ``pooler_output`` holds them) -> unit float32 rows."""
    torch = require("torch")
    tensor = feats if torch.is_tensor(feats) else feats.pooler_output
    return l2_normalize(tensor.float().cpu().numpy())


def run_features(get: Callable[..., Any], *args: Any, **kwargs: Any) -> Vectors:
    """``get(*args, **kwargs)`` (a ``get_*_features`` or ``encode_*`` method) in inference mode."""
    torch = require("torch")
    with torch.inference_mode():
        feats = get(*args, **kwargs)
    return features_to_numpy(feats)


def encode_in_batches(
    items: Sequence[T], size: int, encode: Callable[[list[T]], Vectors], dim: int
) -> Vectors:
    """``encode`` over consecutive chunks of at most ``size`` items, rows stacked; (0, dim) if none."""
    parts = [encode(list(chunk)) for chunk in batched(list(items), size)]
    if parts:
        return np.concatenate(parts, axis=0)
    return np.zeros((0, dim), dtype=np.float32)


def as_batch(x: Any, item_ndim: int) -> NDArray[np.float32]:
    """``x`` as float32 with a leading batch axis: one item (``item_ndim`` dimensions) gets one."""
    arr = np.asarray(x, dtype=np.float32)
    return arr[None] if arr.ndim == item_ndim else arr


class TorchEncoderMixin:
    """An encoder holding a torch ``model`` on ``device`` in ``dtype``, described by ``info``."""

    model: Any
    device: str
    dtype: Any
    default_batch_size: int
    info: EncoderInfo

    @property
    def dim(self) -> int:
        return self.info.dim

    def _features(self, get: Callable[..., Any], inputs: Mapping[str, Any]) -> Vectors:
        """``get(**inputs)`` with the inputs on the model's device and dtype: unit float32 rows."""
        return run_features(get, **to_device(inputs, self.device, self.dtype))

    def _batches(
        self, items: Sequence[T], size: int, encode: Callable[[list[T]], Vectors]
    ) -> Vectors:
        # ``info`` is not set yet while ``__init__`` measures the dimension on one text.
        info = getattr(self, "info", None)
        return encode_in_batches(items, size, encode, info.dim if info else 0)


class TransformersTextMixin(TorchEncoderMixin):
    """``encode_text`` and ``EncoderInfo`` of a transformers dual encoder (backend ``hf``).

    ``text_processor`` is the checkpoint's tokenizer (or a processor that takes
    ``text=``); texts are padded by ``text_padding`` (to the longest text of a
    batch unless the family says otherwise) and cut at ``max_length``.
    """

    text_processor: Any
    text_padding: str = "longest"
    max_length: int

    def _load(
        self, model_class: str, processor_class: str, folder: Path, *, spec: str, device: str | None
    ) -> Any:
        """Load the checkpoint into ``model`` (on ``device`` in ``dtype``); return its processor."""
        loaded = load_pretrained(
            folder,
            spec=spec,
            model_class=model_class,
            processor_class=processor_class,
            device=device,
        )
        self.model, self.device, self.dtype = loaded.model, loaded.device, loaded.dtype
        return loaded.processor

    def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors:
        return self._batches(texts, batch_size or self.default_batch_size, self._encode_text_chunk)

    def _encode_text_chunk(self, texts: list[str]) -> Vectors:
        inputs = self.text_processor(
            text=texts,
            padding=self.text_padding,
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        )
        return self._features(self.model.get_text_features, inputs)

    def _describe(
        self,
        *,
        spec: str,
        model_id: str,
        preprocessing: dict[str, Any],
        model_type: str,
        **extra: Any,
    ) -> EncoderInfo:
        """The encoder's ``EncoderInfo``: its dimension measured on one text; ``extra`` after
        ``model_type``, then the text padding and length."""
        return EncoderInfo(
            spec=spec,
            backend="hf",
            model_id=model_id,
            dim=int(self.encode_text(["a"]).shape[1]),
            preprocessing=preprocessing,
            extra={
                "model_type": model_type,
                **extra,
                "text_padding": self.text_padding,
                "text_max_length": self.max_length,
            },
        )
