"""Backend "openclip": models of the open_clip library.

Spec forms (after the ``openclip:`` prefix):

* ``ARCH/TAG`` — a built-in architecture and one of its pretrained tags, e.g.
  ``ViT-B-32/laion2b_s34b_b79k`` (``open_clip.list_pretrained()`` lists them);
* ``hf-hub:org/repo`` — a hub repository holding ``open_clip_config.json`` and
  open_clip weights;
* a local folder holding ``open_clip_config.json`` and weights (what a hub
  repository holds; the registry detects such folders by that file).

Weights come through :mod:`mmsearch.encoders.hub` (progress bar on first use,
the cache afterwards, one clear error without a hub), and the model is then
built by open_clip's own ``create_model`` from local files. Text towers that
are transformers models (e.g. ``xlm-roberta-base-ViT-B-32``) name a hub
model for their config and tokenizer; those are fetched the same way.

Preprocessing is open_clip's own eval transform, rebuilt in each process from
the model's preprocess config (:class:`OpenClipImagePreprocessor` pickles as
that config); the tokenizer is open_clip's for the model.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch._lazy import require
from mmsearch.encoders import hub
from mmsearch.encoders.base import (
    EncoderInfo,
    ImageEncoderMixin,
    ImagePreprocessor,
    Pixels,
    pick_device,
)
from mmsearch.encoders.torch_util import (
    TorchEncoderMixin,
    as_batch,
    run_features,
    skip_weight_init,
)
from mmsearch.errors import ModelNotFoundError
from mmsearch.types import Vectors

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32
CONFIG_FILE = "open_clip_config.json"
# open_clip's own preference order for the weights of a folder or hub repository.
WEIGHT_FILES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
)
_HF_TEXT_CONFIG_FILES = ("config.json", *TOKENIZER_FILES)
_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode", "fill_color")


def load(
    name: str,
    *,
    spec: str,
    device: str | None = None,
    batch_size: int | None = None,
    model_id: str | None = None,
    **_: Any,
) -> OpenClipEncoder:
    """Load an open_clip model from ``ARCH/TAG``, ``hf-hub:org/repo`` or a local folder."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        ident = (
            model_id
            or hub.card_model_id(folder)
            or hub.hub_id_from_folder(folder)
            or folder.resolve().name
        )
        return OpenClipEncoder.from_folder(
            folder, spec=spec, model_id=ident, device=device, batch_size=batch_size
        )
    if name.startswith("hf-hub:"):
        repo_id = name.removeprefix("hf-hub:")
        folder = hub.fetch_repo(repo_id, select_files, spec=spec)
        return OpenClipEncoder.from_folder(
            folder, spec=spec, model_id=model_id or repo_id, device=device, batch_size=batch_size
        )
    arch, sep, tag = name.partition("/")
    if not (sep and arch and tag):
        raise ModelNotFoundError(
            f"{spec!r}: expected openclip:ARCH/TAG (e.g. openclip:ViT-B-32/laion2b_s34b_b79k), "
            "openclip:hf-hub:org/repo or a folder holding open_clip_config.json"
        )
    return OpenClipEncoder.from_tag(
        arch, tag, spec=spec, model_id=model_id, device=device, batch_size=batch_size
    )


def select_files(files: Sequence[str]) -> list[str]:
    """From a hub repository's file list, the files an open_clip load needs."""
    if CONFIG_FILE not in files:
        hint = "; it is a transformers model: use hf:<repo>" if "config.json" in files else ""
        raise ModelNotFoundError(
            f"the repository has no {CONFIG_FILE} (not an open_clip model){hint}"
        )
    weights = next((w for w in WEIGHT_FILES if w in files), None)
    if weights is None:
        raise ModelNotFoundError(f"the repository has no open_clip weights ({WEIGHT_FILES[0]})")
    return [CONFIG_FILE, weights, *(f for f in TOKENIZER_FILES if f in files)]


def _select_hf_text_files(files: Sequence[str]) -> list[str]:
    """Config and tokenizer of a transformers text tower (its weights come with the CLIP weights)."""
    return [f for f in _HF_TEXT_CONFIG_FILES if f in files]


class OpenClipImagePreprocessor:
    """Picklable open_clip eval transform: pickles as its preprocess config, rebuilt on first use."""

    def __init__(self, preprocess_cfg: dict[str, Any]) -> None:
        self.preprocess_cfg = dict(preprocess_cfg)
        self._transform: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"preprocess_cfg": self.preprocess_cfg}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.preprocess_cfg = state["preprocess_cfg"]
        self._transform = None

    def __call__(self, image: Any) -> Pixels:
        if self._transform is None:
            transform = require("open_clip.transform")
            cfg = transform.PreprocessCfg(**self.preprocess_cfg)
            self._transform = transform.image_transform_v2(cfg, is_train=False)
        return np.asarray(self._transform(image).numpy(), dtype=np.float32)


class OpenClipEncoder(TorchEncoderMixin, ImageEncoderMixin):
    """An open_clip model behind the :class:`~mmsearch.encoders.base.Encoder` contract."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        spec: str,
        model_id: str,
        device: str,
        dtype: Any,
        batch_size: int | None,
    ) -> None:
        self.torch = require("torch")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device, self.dtype = device, dtype
        self.default_batch_size = batch_size or DEFAULT_BATCH_SIZE
        pre_cfg = _plain(dict(model.visual.preprocess_cfg))
        self._pre = OpenClipImagePreprocessor(pre_cfg)
        dim = int(self.encode_text(["a"]).shape[1])
        self.info = EncoderInfo(
            spec=spec,
            backend="openclip",
            model_id=model_id,
            dim=dim,
            preprocessing={"processor": "open_clip", **pre_cfg},
            extra={"context_length": int(getattr(tokenizer, "context_length", 0) or 0)},
        )

    # ---- construction ------------------------------------------------------------------------

    @classmethod
    def from_folder(
        cls,
        folder: Path,
        *,
        spec: str,
        model_id: str,
        device: str | None,
        batch_size: int | None,
    ) -> OpenClipEncoder:
        """Build from a folder holding open_clip_config.json and weights."""
        import json

        open_clip = require("open_clip")
        try:
            model_cfg = json.loads((folder / CONFIG_FILE).read_text())["model_cfg"]
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotFoundError(f"cannot read {folder / CONFIG_FILE}: {exc}") from exc
        if not any((folder / w).is_file() for w in WEIGHT_FILES):
            raise ModelNotFoundError(f"{folder} holds no open_clip weights ({WEIGHT_FILES[0]})")
        text_cfg = _localize_text_cfg(model_cfg.get("text_cfg", {}), folder, spec=spec)
        dev, dtype = pick_device(device)
        overrides = {"text_cfg": text_cfg} if text_cfg is not model_cfg.get("text_cfg") else {}
        model = _create(open_clip, f"local-dir:{folder}", None, dev, dtype, spec=spec, **overrides)
        tokenizer = _tokenizer(open_clip, f"local-dir:{folder}", text_cfg)
        return cls(
            model,
            tokenizer,
            spec=spec,
            model_id=model_id,
            device=dev,
            dtype=dtype,
            batch_size=batch_size,
        )

    @classmethod
    def from_tag(
        cls,
        arch: str,
        tag: str,
        *,
        spec: str,
        model_id: str | None,
        device: str | None,
        batch_size: int | None,
    ) -> OpenClipEncoder:
        """Build a built-in architecture with the weights of one of its pretrained tags."""
        open_clip = require("open_clip")
        arch = arch.replace("/", "-")
        cfg = open_clip.get_pretrained_cfg(arch, tag)
        if not cfg:
            known = open_clip.list_pretrained_tags_by_model(arch)
            if not known:
                raise ModelNotFoundError(f"{spec!r}: open_clip has no architecture {arch!r}")
            raise ModelNotFoundError(
                f"{spec!r}: open_clip has no tag {tag!r} for {arch}; known: {', '.join(known)}"
            )
        weights = _tag_weights(open_clip, cfg, spec=spec)
        model_cfg = open_clip.get_model_config(arch) or {}
        text_cfg = _localize_text_cfg(model_cfg.get("text_cfg", {}), None, spec=spec)
        overrides = {"text_cfg": text_cfg} if text_cfg is not model_cfg.get("text_cfg") else {}
        force_pre = {k: cfg[k] for k in _PREPROCESS_KEYS if k in cfg}
        dev, dtype = pick_device(device)
        model = _create(
            open_clip,
            arch,
            weights,
            dev,
            dtype,
            spec=spec,
            force_preprocess_cfg=force_pre,
            **overrides,
        )
        tokenizer = _tokenizer(open_clip, arch, text_cfg)
        clean_tag = tag.lower().replace("-", "_")
        return cls(
            model,
            tokenizer,
            spec=spec,
            model_id=model_id or f"{arch}/{clean_tag}",
            device=dev,
            dtype=dtype,
            batch_size=batch_size,
        )

    # ---- Encoder -----------------------------------------------------------------------------

    def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors:
        return self._batches(
            texts,
            batch_size or self.default_batch_size,
            lambda chunk: run_features(
                self.model.encode_text, self.tokenizer(chunk).to(self.device)
            ),
        )

    def image_preprocessor(self) -> ImagePreprocessor:
        return self._pre

    def encode_pixels(self, pixels: Pixels) -> Vectors:
        arr = np.ascontiguousarray(as_batch(pixels, 3))
        tensor = self.torch.from_numpy(arr).to(self.device, self.dtype)
        return run_features(self.model.encode_image, tensor)


# ---- helpers ---------------------------------------------------------------------------------


def _create(
    open_clip: Any,
    model_name: str,
    pretrained: str | None,
    device: str,
    dtype: Any,
    *,
    spec: str,
    **kwargs: Any,
) -> Any:
    torch = require("torch")
    precision = "fp16" if dtype == torch.float16 else "fp32"
    try:
        # Weights always follow (a folder with weights or a tag's), loaded strictly.
        with skip_weight_init():
            return open_clip.create_model(
                model_name, pretrained=pretrained, precision=precision, device=device, **kwargs
            )
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise ModelNotFoundError(f"open_clip could not build {spec!r}: {exc}") from exc


def _tag_weights(open_clip: Any, cfg: dict[str, Any], *, spec: str) -> str:
    """Local path of a pretrained tag's weights: from the hub (cached) or open_clip's URL download."""
    if cfg.get("file"):
        return str(cfg["file"])
    if cfg.get("hf_hub"):
        repo_id, filename = os.path.split(str(cfg["hf_hub"]))
        candidates = _weight_candidates(filename)
        folder = hub.fetch_repo(
            repo_id, lambda files: _first_present(candidates, files, spec), spec=spec
        )
        for name in candidates:
            if (folder / name).is_file():
                return str(folder / name)
        raise ModelNotFoundError(hub.unreachable_message(spec, repo_id))
    try:
        return str(open_clip.download_pretrained(cfg))
    except Exception as exc:  # noqa: BLE001 - any download failure: one message
        raise ModelNotFoundError(
            f"cannot download weights for {spec!r} from {cfg.get('url')}: {exc}. Download them on "
            "a machine with network access and use a folder holding open_clip_config.json "
            "and the weights, or run `mmsearch demo` for the built-in offline model."
        ) from exc


def _weight_candidates(filename: str) -> list[str]:
    """open_clip's rule: prefer a .safetensors twin of the named (or default) weights file."""
    if not filename:
        return ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors", filename]
    return [filename]


def _first_present(candidates: Sequence[str], files: Sequence[str], spec: str) -> list[str]:
    for name in candidates:
        if name in files:
            return [name]
    raise ModelNotFoundError(f"{spec!r}: the hub repository lacks {' or '.join(candidates)}")


def _localize_text_cfg(
    text_cfg: dict[str, Any], folder: Path | None, *, spec: str
) -> dict[str, Any]:
    """Point a transformers text tower's config/tokenizer names at local copies.

    Returns ``text_cfg`` itself when there is nothing to change. Loading full
    CLIP weights, the text tower must not fetch its own pretrained weights.
    """
    names = {k: text_cfg.get(k) for k in ("hf_model_name", "hf_tokenizer_name")}
    if not any(names.values()):
        return text_cfg
    local = dict(text_cfg, hf_model_pretrained=False)
    has_tokenizer = folder is not None and any((folder / f).is_file() for f in TOKENIZER_FILES)
    for key, value in names.items():
        if key == "hf_tokenizer_name" and has_tokenizer:
            local[key] = str(folder)  # open_clip's rule for folders: their own tokenizer files
        elif isinstance(value, str) and hub.is_hub_id(value):
            local[key] = str(hub.fetch_repo(value, _select_hf_text_files, spec=f"{spec} ({value})"))
    return local


def _tokenizer(open_clip: Any, model_name: str, text_cfg: dict[str, Any]) -> Any:
    """open_clip's tokenizer for the model; transformers tokenizers from their local copy."""
    source = text_cfg.get("hf_tokenizer_name")
    if not source:
        return open_clip.get_tokenizer(model_name)
    tokenizer_mod = require("open_clip.tokenizer")
    return tokenizer_mod.HFTokenizer(
        source,
        context_length=text_cfg.get("context_length", tokenizer_mod.DEFAULT_CONTEXT_LENGTH),
        tokenizer_mode=text_cfg.get("tokenizer_mode"),
        **text_cfg.get("tokenizer_kwargs", {}),
    )


def _plain(cfg: dict[str, Any]) -> dict[str, Any]:
    """Tuples -> lists so the config is JSON-stable (fingerprints, pickles)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(cfg.items())}
