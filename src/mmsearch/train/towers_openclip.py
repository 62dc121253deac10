"""Trainable towers of an open_clip model (CLIP and CustomTextCLIP layouts).

Features are the model's own ``encode_image`` / ``encode_text`` (unnormalised). The
export writes what a hub repository of open_clip holds, which the openclip backend
loads from a folder: ``open_clip_config.json`` (the base model's architecture config and
the preprocessing it was run with) and ``open_clip_model.safetensors``, plus the base
folder's tokenizer files when it had any.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmsearch._lazy import require
from mmsearch.encoders.base import EncoderInfo
from mmsearch.train.config import TrainingError
from mmsearch.train.towers_base import LoadedTowers, Parts, get_path

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
TEXT_PREFIXES = ("transformer", "token_embedding", "positional_embedding", "ln_final",
                 "text_projection", "text", "attn_mask")  # fmt: skip
"""Top-level names of the text tower: CLIP keeps it flat, CustomTextCLIP under ``text``."""
IMAGE_PROJ_PATHS = ("visual.proj", "visual.head.proj")
TEXT_PROJ_PATHS = ("text_projection", "text.text_projection", "text.proj")


@dataclass(frozen=True)
class OpenClipTokenizer:
    """Picklable: captions -> ``{"tokens": LongTensor}`` with open_clip's own tokenizer."""

    tokenizer: Any

    def __call__(self, texts: list[str]) -> dict[str, Any]:
        return {"tokens": self.tokenizer(texts)}


def _first_path(model: Any, paths: tuple[str, ...]) -> str | None:
    """The first of ``paths`` that is a Linear module or a 2-D parameter of ``model``."""
    torch = require("torch")
    for path in paths:
        try:
            obj = get_path(model, path)
        except AttributeError:
            continue
        if isinstance(obj, torch.nn.Linear) or (
            isinstance(obj, torch.nn.Parameter) and obj.ndim == 2
        ):
            return path
    return None


def parts_of(model: Any) -> Parts:
    bias = "logit_bias" if getattr(model, "logit_bias", None) is not None else None
    return Parts(
        image=("visual",),
        text=TEXT_PREFIXES,
        image_proj=_first_path(model, IMAGE_PROJ_PATHS),
        text_proj=_first_path(model, TEXT_PROJ_PATHS),
        bias=bias,
    )


class OpenClipTowers(LoadedTowers):
    """:class:`~mmsearch.train.towers_base.Towers` of an :class:`~mmsearch.encoders.openclip.OpenClipEncoder`."""

    backend = "openclip"

    def __init__(self, encoder: Any) -> None:
        self.model = encoder.model
        self.parts = parts_of(self.model)
        self.base_info: EncoderInfo | None = encoder.info
        self._pre = encoder.image_preprocessor()
        self._tok = OpenClipTokenizer(encoder.tokenizer)
        self._source = _source_folder(encoder.info.spec)

    def image_features(self, pixels: Any) -> Any:
        return self.model.encode_image(pixels)

    def text_features(self, text: dict[str, Any]) -> Any:
        return self.model.encode_text(text["tokens"])

    def export(self, folder: Path, model_id: str) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        model_cfg = self._model_cfg()
        pre = {k: list(v) if isinstance(v, tuple) else v
               for k, v in dict(self.model.visual.preprocess_cfg).items()}  # fmt: skip
        config = {"model_cfg": model_cfg, "preprocess_cfg": pre}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        if self._source is not None:
            from mmsearch.encoders.openclip import TOKENIZER_FILES

            for name in TOKENIZER_FILES:
                if (self._source / name).is_file():
                    shutil.copy2(self._source / name, folder / name)

    def _model_cfg(self) -> dict[str, Any]:
        if self._source is not None:
            cfg = json.loads((self._source / CONFIG_FILE).read_text())["model_cfg"]
            return dict(cfg)
        open_clip = require("open_clip")
        arch = self.base_info.spec.split(":", 1)[1].split("/", 1)[0] if self.base_info else ""
        cfg = open_clip.get_model_config(arch.replace("/", "-"))
        if not cfg:
            raise TrainingError(f"cannot find open_clip's config of {arch!r} to export the model")
        return dict(cfg)


def _source_folder(spec: str) -> Path | None:
    """The folder holding the base model's ``open_clip_config.json`` (None for ARCH/TAG specs)."""
    from mmsearch.encoders import hub, openclip
    from mmsearch.encoders.registry import split_spec

    _, name = split_spec(spec)
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder
    if name.startswith("hf-hub:"):
        repo = name.removeprefix("hf-hub:")
        return hub.fetch_repo(
            repo, openclip.select_files, spec=spec
        )  # cached by the encoder's load
    return None


def from_encoder(encoder: Any) -> OpenClipTowers:
    return OpenClipTowers(encoder)
