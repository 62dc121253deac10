"""Backend "hf": dual-encoder image–text models from transformers.

Supported families, keyed by the checkpoint's ``config.model_type``:

============  =================================================  =====================
model_type    family (example checkpoint)                        text padding / length
============  =================================================  =====================
clip          CLIP (openai/clip-vit-base-patch32)                longest / 77
siglip        SigLIP and fixed-resolution SigLIP 2               max_length / 64
              (google/siglip-base-patch16-224,
              google/siglip2-base-patch16-256)
siglip2       SigLIP 2 NaFlex (google/siglip2-base-patch16-naflex)  max_length / 64
chinese_clip  Chinese-CLIP (OFA-Sys/chinese-clip-vit-base-patch16)  longest / 52
altclip       AltCLIP (BAAI/AltCLIP)                             longest / 77
align         ALIGN (kakaobrain/align-base)                      max_length / 64
============  =================================================  =====================

Dispatch is data: ``FAMILIES`` maps ``model_type`` to a :class:`Family` record
(text padding and length, whether images become NaFlex patches). The model,
tokenizer and image processor are always the checkpoint's own, loaded with
``AutoModel`` / ``AutoProcessor``, and features come from the model's own
``get_text_features`` / ``get_image_features``. SigLIP pools the last token
and was trained on text padded to 64 tokens, so its text is padded to
``max_length`` exactly as its model cards show; CLIP-style models pool at the
end-of-text token (or CLS), so padding to the longest text is enough. The text
length is capped by the checkpoint's position table.

Images: ``image_preprocessor()`` returns a picklable callable that runs the
checkpoint's own image processor on one RGB image and returns its
``(C, H, W)`` float32 ``pixel_values``. For NaFlex checkpoints an image is a
variable grid of patches; the callable then returns one ``(1, P, D + 3)``
array (P patches of D values, then the patch mask and the grid's height and
width) that ``encode_pixels`` unpacks into ``pixel_values``,
``pixel_attention_mask`` and ``spatial_shapes``. NaFlex models cannot be
exported to ONNX by mmsearch; the fixed-resolution SigLIP 2 checkpoints can.

On CUDA the model runs in float16; outputs are always L2-normalised float32.
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mmsearch._lazy import require
from mmsearch.encoders import hub
from mmsearch.encoders.base import ImageEncoderMixin, ImagePreprocessor, Pixels
from mmsearch.encoders.torch_util import TransformersTextMixin
from mmsearch.errors import ModelNotFoundError
from mmsearch.types import Vectors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Family:
    """How one transformers model family is driven; looked up by ``config.model_type``."""

    name: str
    padding: Literal["longest", "max_length"]
    max_length: int
    position_offset: int = 0
    """Position slots the text tower cannot use for tokens (RoBERTa starts at pad_id + 1)."""
    naflex: bool = False
    """The image processor emits variable patch grids (pixel_attention_mask, spatial_shapes)."""


FAMILIES: dict[str, Family] = {
    "clip": Family("CLIP", "longest", 77),
    "siglip": Family("SigLIP / SigLIP 2", "max_length", 64),
    "siglip2": Family("SigLIP 2 NaFlex", "max_length", 64, naflex=True),
    "chinese_clip": Family("Chinese-CLIP", "longest", 52),
    "altclip": Family("AltCLIP", "longest", 77, position_offset=2),
    "align": Family("ALIGN", "max_length", 64),
}

DEFAULT_BATCH_SIZE = 32

# Image-processor settings that decide the pixels; recorded in EncoderInfo.preprocessing.
_PRE_KEYS = (
    "do_convert_rgb",
    "do_resize",
    "size",
    "resample",
    "do_center_crop",
    "crop_size",
    "do_rescale",
    "rescale_factor",
    "rescale_offset",
    "do_normalize",
    "image_mean",
    "image_std",
    "include_top",
    "do_pad",
    "patch_size",
    "max_num_patches",
)


def load(
    name: str,
    *,
    spec: str,
    device: str | None = None,
    batch_size: int | None = None,
    model_id: str | None = None,
    **_: Any,
) -> HFEncoder:
    """Load a transformers checkpoint from a local folder or a hub id (``org/name``)."""
    folder, ident = resolve_folder(name, spec=spec, model_id=model_id)
    return HFEncoder(folder, spec=spec, model_id=ident, device=device, batch_size=batch_size)


def resolve_folder(name: str, *, spec: str, model_id: str | None = None) -> tuple[Path, str]:
    """A local folder holding the transformers checkpoint ``name`` names, and its identity.

    ``name`` is a folder or a hub id (fetched into the cache, or found there when
    offline). ``model_id`` overrides the recorded identity (e.g. for a copied
    folder whose name differs from the hub id it came from).
    """
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder, model_id or folder_model_id(folder)
    if hub.is_hub_id(name):
        return hub.fetch_repo(name, select_files, spec=spec), model_id or name
    raise ModelNotFoundError(
        f"{spec!r} is neither a model folder nor a hub id of the form org/name"
    )


def select_files(files: Sequence[str]) -> list[str]:
    """From a hub repository's file list, the files a transformers load needs (one weight format)."""
    top = [f for f in files if "/" not in f]
    if "config.json" not in top:
        hint = (
            "; it is an open_clip model: use openclip:hf-hub:<repo>"
            if "open_clip_config.json" in top
            else ""
        )
        raise ModelNotFoundError(
            f"the repository has no config.json (not a transformers model){hint}"
        )
    for stem, ext in (("model", "safetensors"), ("pytorch_model", "bin")):
        weights = [f for f in top if re.fullmatch(rf"{stem}(-\d+-of-\d+)?\.{ext}", f)]
        if weights:
            aux = [
                f
                for f in top
                if f.endswith((".json", ".txt", ".model", ".tiktoken"))
                and not (f.endswith(".index.json") and not f.startswith(f"{stem}.{ext}"))
            ]
            return aux + weights
    raise ModelNotFoundError("the repository has no PyTorch weights (model.safetensors)")


def folder_model_id(folder: Path) -> str:
    """A stable identity for a local folder: the card of a model mmsearch trained, its
    hub id when known, else the folder name."""
    trained = hub.card_model_id(folder)
    if trained:
        return trained
    from_cache = hub.hub_id_from_folder(folder)
    if from_cache:
        return from_cache
    try:
        name = json.loads((folder / "config.json").read_text()).get("_name_or_path", "")
    except (OSError, ValueError):
        name = ""
    if isinstance(name, str) and hub.is_hub_id(name):
        return name
    return folder.resolve().name


class HFImagePreprocessor:
    """Picklable: RGB ``PIL.Image`` -> the pixels the checkpoint's own image processor makes."""

    def __init__(self, image_processor: Any, images_kwargs: dict[str, Any], naflex: bool) -> None:
        self.image_processor = image_processor
        self.images_kwargs = dict(images_kwargs)
        self.naflex = naflex

    def __call__(self, image: Any) -> Pixels:
        out = self.image_processor(images=[image], return_tensors="np", **self.images_kwargs)
        if self.naflex:
            return pack_naflex(out)[0]
        return np.asarray(out["pixel_values"][0], dtype=np.float32)


def pack_naflex(out: Any) -> Pixels:
    """NaFlex processor output -> one (N, 1, P, D + 3) float32 array (patches | mask | h, w)."""
    patches = np.asarray(out["pixel_values"], dtype=np.float32)
    n, p, _ = patches.shape
    mask = np.asarray(out["pixel_attention_mask"], dtype=np.float32).reshape(n, p, 1)
    shapes = np.asarray(out["spatial_shapes"], dtype=np.float32).reshape(n, 1, 2)
    packed = np.concatenate([patches, mask, np.broadcast_to(shapes, (n, p, 2))], axis=2)
    return packed[:, None].astype(np.float32, copy=False)


def unpack_naflex(pixels: Pixels) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_naflex` for a batch: the model's three image inputs."""
    arr = pixels.reshape(pixels.shape[0], pixels.shape[-2], pixels.shape[-1])
    return {
        "pixel_values": arr[:, :, :-3],
        "pixel_attention_mask": arr[:, :, -3].round().astype(np.int64),
        "spatial_shapes": arr[:, 0, -2:].round().astype(np.int64),
    }


class HFEncoder(TransformersTextMixin, ImageEncoderMixin):
    """A transformers dual encoder behind the :class:`~mmsearch.encoders.base.Encoder` contract."""

    def __init__(
        self,
        folder: Path,
        *,
        spec: str,
        model_id: str,
        device: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.torch = require("torch")
        transformers = require("transformers")
        try:
            config = transformers.AutoConfig.from_pretrained(folder)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotFoundError(
                f"cannot read a transformers config in {folder}: {exc}"
            ) from exc
        family = FAMILIES.get(config.model_type)
        if family is None:
            raise ModelNotFoundError(
                f"{spec!r} is a {config.model_type!r} model; the hf backend supports "
                f"{', '.join(sorted(FAMILIES))}"
            )
        self.family = family
        self.processor = self._load("AutoModel", "AutoProcessor", folder, spec=spec, device=device)
        self.text_processor = self.processor
        self.text_padding = family.padding
        self.max_length = _text_max_length(family, config)
        self.default_batch_size = batch_size or DEFAULT_BATCH_SIZE
        self._pre = HFImagePreprocessor(
            self.processor.image_processor, _class_images_kwargs(self.processor), family.naflex
        )
        self.info = self._describe(
            spec=spec,
            model_id=model_id,
            preprocessing=image_preprocessing(self._pre),
            model_type=config.model_type,
        )

    def image_preprocessor(self) -> ImagePreprocessor:
        return self._pre

    def encode_pixels(self, pixels: Pixels) -> Vectors:
        arr = np.asarray(pixels, dtype=np.float32)
        if arr.ndim == 3 and not self.family.naflex:
            arr = arr[None]
        inputs = unpack_naflex(arr) if self.family.naflex else {"pixel_values": arr}
        tensors = {k: self.torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}
        return self._features(self.model.get_image_features, tensors)


def _text_max_length(family: Family, config: Any) -> int:
    text_cfg = getattr(config, "text_config", config)
    positions = getattr(text_cfg, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        return min(family.max_length, positions - family.position_offset)
    return family.max_length


def _class_images_kwargs(processor: Any) -> dict[str, Any]:
    """Image defaults a processor class imposes over its image processor (e.g. SigLIP 2 NaFlex)."""
    kwargs = getattr(type(processor), "images_kwargs", None)
    return dict(kwargs) if isinstance(kwargs, dict) else {}


def image_preprocessing(pre: HFImagePreprocessor) -> dict[str, Any]:
    """The image processor's pixel-deciding settings, as plain JSON values."""
    settings = {**pre.image_processor.to_dict(), **pre.images_kwargs}
    record: dict[str, Any] = {"processor": _processor_kind(settings, pre.image_processor)}
    for key in _PRE_KEYS:
        if key in settings and settings[key] is not None:
            value = settings[key]
            record[key] = _resample_name(value) if key == "resample" else _plain(value)
    return record


def _processor_kind(settings: dict[str, Any], image_processor: Any) -> str:
    kind = str(settings.get("image_processor_type") or type(image_processor).__name__)
    return re.sub(r"(Fast|Pil)$", "", kind)


def _plain(value: Any) -> Any:
    """Enums -> lower-case names, tuples -> lists, dicts recursively; JSON-stable."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.name.lower()
    return value


def _resample_name(value: Any) -> Any:
    """PIL resampling filters by name, whether stored as an enum or a plain int."""
    if isinstance(value, int) and not isinstance(value, bool | enum.Enum):
        from PIL import Image

        try:
            return Image.Resampling(value).name.lower()
        except ValueError:
            return value
    return _plain(value)
