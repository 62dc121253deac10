"""Backend "tiny": small CLIP-style models trained by mmsearch itself.

A model folder holds ``mmsearch_model.json`` (architecture, tokenizer and
image preprocessing as data), ``model.safetensors`` (fp16 or fp32 weights)
and the tokenizer's ``vocab.txt``. The image tower is a small CNN that keeps
its spatial layout up to the projection (positions and relations matter); the
text tower is a token embedding plus a GRU read out at the last token (or, as
``text_arch="transformer"``, a small transformer with positional embeddings
read out at a leading [CLS] token: at this size and budget it learns word
order far more slowly). Both project to a shared space and are L2-normalised;
``logit_scale`` is the learnt CLIP temperature.

Inference needs numpy, PIL and safetensors; torch only for the transformer text
tower, a GPU, or when torch is loaded anyway (see :func:`choose_engine`):
:mod:`~mmsearch.encoders.tiny_numpy` computes the same towers, so a one-off
search with the demo model does not pay for importing torch.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from mmsearch._lazy import require
from mmsearch.encoders.base import (
    EncoderInfo,
    ImageEncoderMixin,
    ImagePreprocessor,
    Pixels,
    batched,
    pick_device,
)
from mmsearch.encoders.tiny_numpy import CnnImage, GruText
from mmsearch.errors import ModelNotFoundError
from mmsearch.types import Vectors, l2_normalize

if TYPE_CHECKING:  # pragma: no cover
    import torch

CONFIG_FILE = "mmsearch_model.json"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.txt"
FORMAT_VERSION = 1
TOKENIZER_KIND = "words+cjk"
PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
SPECIALS = (PAD, UNK, CLS)

_TOKEN_RE = re.compile(r"[a-z]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class TinyConfig:
    """Architecture hyper-parameters and preprocessing of a tiny model (stored as JSON)."""

    model_id: str = "mmsearch/tiny"
    embed_dim: int = 128
    image_size: int = 64
    channels: tuple[int, ...] = (32, 64, 128)
    stem_stride: int = 2
    vocab_size: int = 256
    context_length: int = 32
    text_arch: str = "gru"
    """``gru`` (reads word order reliably on a tiny budget) or ``transformer``."""
    text_width: int = 128
    """Token embedding size (and the transformer's width)."""
    text_hidden: int = 192
    """GRU state size."""
    text_layers: int = 1
    text_heads: int = 4
    text_mlp_ratio: float = 2.0
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    tokenizer: str = TOKENIZER_KIND
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["format_version"] = FORMAT_VERSION
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TinyConfig:
        version = int(data.get("format_version", FORMAT_VERSION))
        if version > FORMAT_VERSION:
            raise ModelNotFoundError(
                f"tiny model format {version} is newer than this mmsearch reads ({FORMAT_VERSION})"
            )
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known.setdefault("text_arch", "transformer")  # folders written before GRU text towers
        for key in ("channels", "mean", "std"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


# ---------------------------------------------------------------------------
# tokenizer


def split_words(text: str) -> list[str]:
    """Lower-cased English words (runs of letters) and single CJK characters, in order."""
    return _TOKEN_RE.findall(text.lower())


class TinyTokenizer:
    """Word-level English + per-character Chinese tokenizer with a fixed vocabulary."""

    def __init__(self, vocab: Sequence[str], context_length: int) -> None:
        if tuple(vocab[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"vocab must start with {SPECIALS}")
        self.vocab = list(vocab)
        self.index = {tok: i for i, tok in enumerate(self.vocab)}
        self.context_length = context_length

    @classmethod
    def build(cls, texts: Iterable[str], context_length: int) -> TinyTokenizer:
        """A vocabulary of every token in ``texts`` (sorted, after the special tokens)."""
        words = sorted({w for t in texts for w in split_words(t)})
        return cls([*SPECIALS, *words], context_length)

    @classmethod
    def from_file(cls, path: Path, context_length: int) -> TinyTokenizer:
        vocab = path.read_text(encoding="utf-8").splitlines()
        return cls(vocab, context_length)

    def save(self, path: Path) -> None:
        path.write_text("\n".join(self.vocab) + "\n", encoding="utf-8")

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, texts: Sequence[str]) -> NDArray[np.int64]:
        """(len(texts), context_length) ids: [CLS] then tokens, [UNK] for unknown, [PAD] after."""
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        unk, cls_id = self.index[UNK], self.index[CLS]
        for row, text in enumerate(texts):
            ids = [cls_id, *(self.index.get(w, unk) for w in split_words(text))]
            ids = ids[: self.context_length]
            out[row, : len(ids)] = ids
        return out


# ---------------------------------------------------------------------------
# preprocessing


@dataclass(frozen=True)
class TinyPreprocessor:
    """Picklable image preprocessing: RGB resize to ``size`` (bilinear), scale to [0, 1], normalise."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, image: Any) -> Pixels:
        from PIL import Image

        img = image.convert("RGB")
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.Resampling.BILINEAR)
        scaled = np.asarray(img, dtype=np.float32) / np.float32(255.0)
        norm = (scaled - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(norm.transpose(2, 0, 1), dtype=np.float32)


# ---------------------------------------------------------------------------
# model


def build_model(config: TinyConfig) -> Any:
    """A fresh (randomly initialised) ``TinyClip`` torch module for ``config``."""
    torch = require("torch")
    nn = torch.nn
    F = torch.nn.functional

    def conv_block(cin: int, cout: int, stride: int) -> Any:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.GELU(),
        )

    class ImageTower(nn.Module):  # type: ignore[misc, name-defined]
        """CNN over the image plus two coordinate channels; flattened, not pooled."""

        def __init__(self, cfg: TinyConfig) -> None:
            super().__init__()
            chans = cfg.channels
            layers = [conv_block(5, chans[0], cfg.stem_stride)]
            cin = chans[0]
            for cout in chans[1:]:
                layers += [conv_block(cin, cout, 2), conv_block(cout, cout, 1)]
                cin = cout
            layers.append(conv_block(cin, cin, 2))
            self.body = nn.Sequential(*layers)
            side = cfg.image_size // (cfg.stem_stride * 2 ** len(chans))
            self.head = nn.Sequential(
                nn.Flatten(),
                nn.Dropout(0.1),
                nn.Linear(cin * side * side, cfg.embed_dim * 2),
                nn.GELU(),
                nn.Linear(cfg.embed_dim * 2, cfg.embed_dim),
            )
            ramp = torch.linspace(-1.0, 1.0, cfg.image_size)
            coords = torch.stack(torch.meshgrid(ramp, ramp, indexing="ij"))
            self.register_buffer("coords", coords[None], persistent=False)

        def forward(self, pixels: Any) -> Any:
            coords = self.coords.to(pixels.dtype).expand(pixels.shape[0], -1, -1, -1)
            return self.head(self.body(torch.cat([pixels, coords], dim=1)))

    class GruTextTower(nn.Module):  # type: ignore[misc, name-defined]
        """Token embedding + GRU, read out at the last real token: order-aware by construction."""

        def __init__(self, cfg: TinyConfig) -> None:
            super().__init__()
            self.embed = nn.Embedding(cfg.vocab_size, cfg.text_width, padding_idx=0)
            self.gru = nn.GRU(cfg.text_width, cfg.text_hidden, cfg.text_layers, batch_first=True)
            self.norm = nn.LayerNorm(cfg.text_hidden)
            self.proj = nn.Linear(cfg.text_hidden, cfg.embed_dim, bias=False)

        def forward(self, ids: Any) -> Any:
            out, _ = self.gru(self.embed(ids))
            # padding comes after the text, so the state at the last real token is unaffected
            last = ((ids != 0).sum(1) - 1).clamp(min=0)
            return self.proj(self.norm(out[torch.arange(ids.shape[0], device=ids.device), last]))

    class TextTower(nn.Module):  # type: ignore[misc, name-defined]
        """Token + position embeddings, a small transformer, read out at [CLS]."""

        def __init__(self, cfg: TinyConfig) -> None:
            super().__init__()
            width = cfg.text_width
            self.embed = nn.Embedding(cfg.vocab_size, width, padding_idx=0)
            # Same small scale for tokens and positions (as in CLIP): with
            # nn.Embedding's default N(0, 1) the positions are drowned out.
            nn.init.normal_(self.embed.weight, std=0.02)
            self.pos = nn.Parameter(torch.randn(cfg.context_length, width) * 0.02)
            layer = nn.TransformerEncoderLayer(
                width,
                cfg.text_heads,
                int(width * cfg.text_mlp_ratio),
                dropout=0.0,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            self.encoder = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(width)
            self.proj = nn.Linear(width, cfg.embed_dim, bias=False)

        def forward(self, ids: Any) -> Any:
            x = self.embed(ids) + self.pos[: ids.shape[1]]
            x = self.encoder(x, src_key_padding_mask=ids == 0)
            return self.proj(self.norm(x[:, 0]))  # [CLS] is always the first token

    class TinyClip(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self, cfg: TinyConfig) -> None:
            super().__init__()
            self.config = cfg
            self.visual = ImageTower(cfg)
            self.text = GruTextTower(cfg) if cfg.text_arch == "gru" else TextTower(cfg)
            self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

        def encode_image(self, pixels: Any) -> Any:
            return F.normalize(self.visual(pixels), dim=-1)

        def encode_text(self, ids: Any) -> Any:
            return F.normalize(self.text(ids), dim=-1)

        def forward(self, pixels: Any, ids: Any) -> tuple[Any, Any, Any]:
            """Unnormalised image and text features, and the logit scale (for training)."""
            return self.visual(pixels), self.text(ids), self.logit_scale.exp()

    return TinyClip(config)


def save_model(
    model: Any,
    tokenizer: TinyTokenizer,
    folder: str | Path,
    *,
    dtype: str = "float16",
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a tiny model folder that :func:`load` reads; return the folder."""
    torch = require("torch")
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    target = {"float16": torch.float16, "float32": torch.float32}[dtype]
    state = {
        k: (
            v.detach().to("cpu", target) if v.is_floating_point() else v.detach().cpu()
        ).contiguous()
        for k, v in model.state_dict().items()
    }
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    tokenizer.save(out / VOCAB_FILE)
    cfg = model.config.to_json()
    cfg["weights"] = WEIGHTS_FILE
    cfg["weights_dtype"] = dtype
    cfg["vocab_file"] = VOCAB_FILE
    if metadata:
        cfg["training"] = metadata
    (out / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    return out


@dataclass(frozen=True)
class TinyFolder:
    """A tiny model folder read without torch: config, tokenizer and fp32 numpy weights."""

    config: TinyConfig
    tokenizer: TinyTokenizer
    weights: dict[str, NDArray[Any]]


def read_folder(folder: str | Path) -> TinyFolder:
    """Read a tiny model folder (weights as numpy float32 arrays; torch is not imported)."""
    from safetensors.numpy import load_file

    path = Path(folder)
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise ModelNotFoundError(f"{path} is not a tiny model folder: {CONFIG_FILE} is missing")
    data = json.loads(cfg_path.read_text(encoding="utf-8"))
    config = TinyConfig.from_json(data)
    if config.text_arch not in ("gru", "transformer"):
        raise ModelNotFoundError(f"unknown text tower {config.text_arch!r} in {cfg_path}")
    if config.tokenizer != TOKENIZER_KIND:
        raise ModelNotFoundError(f"unknown tokenizer kind {config.tokenizer!r} in {cfg_path}")
    weights = path / data.get("weights", WEIGHTS_FILE)
    vocab = path / data.get("vocab_file", VOCAB_FILE)
    for needed in (weights, vocab):
        if not needed.is_file():
            raise ModelNotFoundError(f"tiny model folder {path} is missing {needed.name}")
    tokenizer = TinyTokenizer.from_file(vocab, config.context_length)
    arrays = {
        k: (v.astype(np.float32) if np.issubdtype(v.dtype, np.floating) else v)
        for k, v in load_file(str(weights)).items()
    }
    return TinyFolder(config, tokenizer, arrays)


def torch_model(config: TinyConfig, weights: dict[str, NDArray[Any]]) -> Any:
    """An fp32 eval-mode ``TinyClip`` module holding ``weights``."""
    torch = require("torch")
    model = build_model(config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    return model.eval()


def load_model(folder: str | Path) -> tuple[Any, TinyTokenizer, TinyConfig]:
    """Read a tiny model folder into an fp32 eval-mode module, its tokenizer and config."""
    read = read_folder(folder)
    return torch_model(read.config, read.weights), read.tokenizer, read.config


# ---------------------------------------------------------------------------
# encoder

ENGINES = ("auto", "numpy", "torch")


def choose_engine(engine: str, config: TinyConfig, device: str | None) -> str:
    """``numpy`` or ``torch`` for ``engine`` (``auto``: numpy unless torch is needed or loaded).

    ``auto`` takes torch when the model has no numpy text tower (``transformer``), when
    a device other than the CPU is asked for, or when torch is already imported (its
    import, the bulk of a cold start, is then paid anyway); numpy otherwise.
    """
    if engine not in ENGINES:
        raise ModelNotFoundError(f"unknown tiny model engine {engine!r}; known: {ENGINES}")
    if engine != "auto":
        if engine == "numpy" and config.text_arch != "gru":
            raise ModelNotFoundError(f"the {config.text_arch} text tower runs on torch only")
        return engine
    needs_torch = config.text_arch != "gru" or (device is not None and device != "cpu")
    return "torch" if needs_torch or "torch" in sys.modules else "numpy"


class TinyEncoder(ImageEncoderMixin):
    """The :class:`~mmsearch.encoders.base.Encoder` of a tiny model folder.

    Runs on numpy (:mod:`~mmsearch.encoders.tiny_numpy`) or torch, see
    :func:`choose_engine`. :attr:`model` is the torch module (built on first access);
    once a caller has it (training fine-tunes it in place), the encoder runs on it.
    """

    default_batch_size = 128

    def __init__(
        self,
        weights: dict[str, NDArray[Any]],
        tokenizer: TinyTokenizer,
        config: TinyConfig,
        *,
        spec: str,
        device: str | None = None,
        batch_size: int | None = None,
        engine: str = "auto",
    ) -> None:
        self.weights = weights
        self.tokenizer = tokenizer
        self.config = config
        self.engine = choose_engine(engine, config, device)
        self._device = device
        self._module: Any = None
        self._numpy: tuple[GruText, CnnImage] | None = None
        if batch_size:
            self.default_batch_size = int(batch_size)
        self._pre = TinyPreprocessor(config.image_size, config.mean, config.std)
        self.calibration: dict[str, list[float]] = dict(config.extra.get("calibration", {}))
        """Platt parameters per ``query-index`` modality pair (``search/calibrate.py``)."""
        self.info = EncoderInfo(
            spec=spec,
            backend="tiny",
            model_id=config.model_id,
            dim=config.embed_dim,
            preprocessing={
                "size": config.image_size,
                "mean": list(config.mean),
                "std": list(config.std),
                "resample": "bilinear",
            },
            extra={"tokenizer": config.tokenizer, "context_length": config.context_length},
        )

    @property
    def dim(self) -> int:
        return self.config.embed_dim

    @property
    def model(self) -> Any:
        """The torch module; from the first access on, the encoder runs on it."""
        self.engine = "torch"
        return self._torch()

    def _torch(self) -> Any:
        if self._module is None:
            self.device, self.dtype = pick_device(self._device)
            module = torch_model(self.config, self.weights)
            self._module = module.to(self.device, self.dtype).eval()
        return self._module

    def _towers(self) -> tuple[GruText, CnnImage]:
        if self._numpy is None:
            self._numpy = (GruText(self.weights, self.config), CnnImage(self.weights, self.config))
        return self._numpy

    def image_preprocessor(self) -> ImagePreprocessor:
        return self._pre

    def _to_numpy(self, x: torch.Tensor) -> Vectors:
        return np.ascontiguousarray(x.float().cpu().numpy(), dtype=np.float32)

    def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> Vectors:
        out: list[Vectors] = []
        for chunk in batched(list(texts), batch_size or self.default_batch_size):
            ids = self.tokenizer.encode(list(chunk))
            if self.engine == "numpy":
                out.append(l2_normalize(self._towers()[0](ids)))
                continue
            torch = require("torch")
            with torch.inference_mode():
                model = self._torch()
                out.append(self._to_numpy(model.encode_text(torch.from_numpy(ids).to(self.device))))
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out, axis=0)

    def encode_pixels(self, pixels: Pixels) -> Vectors:
        arr = np.asarray(pixels, dtype=np.float32)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.engine == "numpy":
            return l2_normalize(self._towers()[1](arr))
        torch = require("torch")
        model = self._torch()
        x = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device, self.dtype)
        with torch.inference_mode():
            return self._to_numpy(model.encode_image(x))


def load(
    name: str,
    *,
    spec: str,
    device: str | None = None,
    batch_size: int | None = None,
    engine: str = "auto",
    **_: Any,
) -> TinyEncoder:
    """Load the tiny model folder ``name`` (registry entry for ``tiny:PATH`` and tiny folders).

    ``engine`` is ``auto``, ``numpy`` or ``torch`` (see :func:`choose_engine`). Options
    other backends take (e.g. ``model_id``) are accepted and ignored.
    """
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise ModelNotFoundError(f"tiny model folder not found: {name}")
    read = read_folder(folder)
    return TinyEncoder(
        read.weights,
        read.tokenizer,
        read.config,
        spec=spec,
        device=device,
        batch_size=batch_size,
        engine=engine,
    )
