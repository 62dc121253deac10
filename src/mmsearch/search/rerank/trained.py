"""Reranker "trained": a small cross-attention image–text matcher trained by mmsearch.

``mmsearch train --reranker`` fits it on top of a tiny dual encoder (``builtin:demo``
or a folder trained by mmsearch), whose towers it holds, frozen, as its own input
layers. It reads a query and a picture *together*. Text side: the dual encoder's
text embedding, then its token states (the text tower's GRU or transformer
outputs). Image side: the dual encoder's image embedding, then a grid of patch
features (its image CNN, fed the pixels plus two coordinate channels, after
``patch_layers`` layers: 4×4 at 64 px). A few transformer layers let the text
attend to itself and, in every layer, to the patches; an image–text matching (ITM)
head on the first text position gives the probability that the text describes the
picture. Unlike two embeddings compared by a cosine, this can check *which* colour
sits on *which* shape and *which* shape is left of the other.

A reranker folder stands alone (the dual encoder's weights are inside):

- ``mmsearch_reranker.json``: :class:`RerankerConfig` as data (with the dual
  encoder's :class:`~mmsearch.encoders.tiny.TinyConfig`, its preprocessing included),
- ``model.safetensors``: the weights (fp32),
- ``vocab.txt``: the tokenizer (the dual encoder's).

Torch is imported only when a folder is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch._lazy import require
from mmsearch.encoders.tiny import TinyConfig, TinyPreprocessor, TinyTokenizer, build_model
from mmsearch.errors import ModelNotFoundError, QueryError
from mmsearch.search.rerank.base import Candidate

CONFIG_FILE = "mmsearch_reranker.json"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.txt"
FORMAT_VERSION = 1
KIND = "cross-attention-itm"
PREFIX = "trained:"


@dataclass(frozen=True)
class RerankerConfig:
    """Architecture of a trained reranker (stored as JSON next to its weights)."""

    dual: TinyConfig = field(default_factory=TinyConfig)
    """The tiny dual encoder it sits on (its towers give the token and patch features)."""
    patch_layers: int = 6
    """Layers of the dual encoder's image CNN that make the patch grid (6: 4×4 at 64 px)."""
    width: int = 128
    heads: int = 4
    layers: int = 2
    """Transformer layers, each self-attention over the text, cross-attention to the patches, MLP."""
    mlp_ratio: float = 2.0
    dual_encoder: str = ""
    """The spec of the dual encoder it was trained on (for the record)."""
    kind: str = KIND

    @property
    def context_length(self) -> int:
        """Tokens per text, [CLS] included (the dual encoder's)."""
        return self.dual.context_length

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["dual"] = self.dual.to_json()
        d["format_version"] = FORMAT_VERSION
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RerankerConfig:
        version = int(data.get("format_version", FORMAT_VERSION))
        if version > FORMAT_VERSION:
            raise ModelNotFoundError(
                f"reranker format {version} is newer than this mmsearch reads ({FORMAT_VERSION})"
            )
        if data.get("kind", KIND) != KIND:
            raise ModelNotFoundError(f"unknown reranker kind {data.get('kind')!r}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["dual"] = TinyConfig.from_json(dict(data.get("dual", {})))
        return cls(**known)


# ---------------------------------------------------------------------------
# model


def build_reranker(config: RerankerConfig) -> Any:
    """A fresh reranker module for ``config`` (its dual encoder randomly initialised too)."""
    torch = require("torch")
    nn = torch.nn

    class DualFeatures(nn.Module):  # type: ignore[misc, name-defined]
        """The dual encoder's towers, read inside: text token states, image patches, embeddings."""

        def __init__(self, cfg: RerankerConfig) -> None:
            super().__init__()
            self.clip = build_model(cfg.dual)
            if not 1 <= cfg.patch_layers <= len(self.clip.visual.body):
                raise ModelNotFoundError(
                    f"patch_layers must be 1..{len(self.clip.visual.body)}, not {cfg.patch_layers}"
                )
            self.patch_layers = cfg.patch_layers

        def image(self, pixels: Any) -> tuple[Any, Any]:
            """(batch, patches, channels) grid after ``patch_layers`` layers; the image embedding."""
            visual = self.clip.visual
            x = torch.cat(
                [pixels, visual.coords.to(pixels.dtype).expand(len(pixels), -1, -1, -1)], 1
            )
            grid = x
            for i, layer in enumerate(visual.body):
                x = layer(x)
                if i + 1 == self.patch_layers:
                    grid = x
            return grid.flatten(2).transpose(1, 2), visual.head(x)

        def text(self, ids: Any) -> tuple[Any, Any]:
            """(batch, tokens, hidden) token states; the text embedding (as the tower reads it)."""
            tower = self.clip.text
            if hasattr(tower, "gru"):
                states = tower.gru(tower.embed(ids))[0]
                last = ((ids != 0).sum(1) - 1).clamp(min=0)
                read = states[torch.arange(len(ids), device=ids.device), last]
            else:
                x = tower.embed(ids) + tower.pos[: ids.shape[1]]
                states = tower.encoder(x, src_key_padding_mask=ids == 0)
                read = states[:, 0]
            return states, tower.proj(tower.norm(read))

    class CrossLayer(nn.Module):  # type: ignore[misc, name-defined]
        """Pre-norm: text self-attention, text -> patches cross-attention, MLP."""

        def __init__(self, width: int, heads: int, hidden: int) -> None:
            super().__init__()
            self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(width) for _ in range(3))
            self.self_attn = nn.MultiheadAttention(width, heads, batch_first=True)
            self.cross_attn = nn.MultiheadAttention(width, heads, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

        def forward(self, x: Any, pad: Any, patches: Any) -> Any:
            h = self.norm1(x)
            x = x + self.self_attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
            h = self.norm2(x)
            x = x + self.cross_attn(h, patches, patches, need_weights=False)[0]
            return x + self.mlp(self.norm3(x))

    class CrossReranker(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self, cfg: RerankerConfig) -> None:
            super().__init__()
            self.config = cfg
            self.dual = DualFeatures(cfg)
            side = cfg.dual.image_size
            with torch.no_grad():
                grid, _ = self.dual.image(torch.zeros(1, 3, side, side))
            n_patches, channels = grid.shape[1:]
            width, dim = cfg.width, cfg.dual.embed_dim
            self.patch_proj = nn.Linear(channels, width)
            self.image_proj = nn.Linear(dim, width)
            self.patch_pos = nn.Parameter(torch.randn(n_patches + 1, width) * 0.02)
            self.patch_norm = nn.LayerNorm(width)
            states, _ = self.dual.text(torch.ones(1, 2, dtype=torch.long))
            self.token_proj = nn.Linear(states.shape[-1], width)
            self.text_proj = nn.Linear(dim, width)
            self.pos = nn.Parameter(torch.randn(cfg.dual.context_length + 1, width) * 0.02)
            hidden = int(width * cfg.mlp_ratio)
            self.layers = nn.ModuleList(
                [CrossLayer(width, cfg.heads, hidden) for _ in range(cfg.layers)]
            )
            self.norm = nn.LayerNorm(width)
            self.head = nn.Linear(width, 1)

        def encode_image(self, pixels: Any) -> Any:
            """(batch, 1 + patches, width): the image embedding, then the patch grid, positioned."""
            return self.image_tokens(*self.dual.image(pixels))

        def image_tokens(self, grid: Any, emb: Any) -> Any:
            tokens = torch.cat([self.image_proj(emb)[:, None], self.patch_proj(grid)], dim=1)
            return self.patch_norm(tokens + self.patch_pos)

        def encode_text(self, ids: Any) -> tuple[Any, Any]:
            """(batch, 1 + tokens, width) and its padding mask: the text embedding, then tokens."""
            ids = ids[:, : max(1, int((ids != 0).sum(1).max()))]  # drop columns no text uses
            return self.text_tokens(ids, *self.dual.text(ids))

        def text_tokens(self, ids: Any, states: Any, emb: Any) -> tuple[Any, Any]:
            x = torch.cat([self.text_proj(emb)[:, None], self.token_proj(states)], dim=1)
            pad = torch.cat([torch.zeros_like(ids[:, :1], dtype=torch.bool), ids == 0], dim=1)
            return x + self.pos[: ids.shape[1] + 1], pad

        def match_logits(self, text: tuple[Any, Any], patches: Any) -> Any:
            """One ITM logit per (text ``i``, image ``i``) pair, read out at the text embedding."""
            x, pad = text
            for layer in self.layers:
                x = layer(x, pad, patches)
            return self.head(self.norm(x[:, 0])).squeeze(-1)

        def forward(self, pixels: Any, ids: Any) -> Any:
            return self.match_logits(self.encode_text(ids), self.encode_image(pixels))

    return CrossReranker(config)


# ---------------------------------------------------------------------------
# folder


def save_reranker(
    model: Any, tokenizer: TinyTokenizer, folder: str | Path, *, metadata: dict[str, Any] | None
) -> Path:
    """Write ``model`` as a reranker folder that :func:`load` reads; return the folder."""
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    tokenizer.save(out / VOCAB_FILE)
    cfg = model.config.to_json()
    cfg.update(weights=WEIGHTS_FILE, vocab_file=VOCAB_FILE)
    if metadata:
        cfg["training"] = metadata
    (out / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    return out


def is_reranker_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder holding ``mmsearch_reranker.json``."""
    return (Path(path).expanduser() / CONFIG_FILE).is_file()


def read_reranker(folder: str | Path) -> tuple[Any, TinyTokenizer]:
    """The eval-mode fp32 module and tokenizer of a reranker folder."""
    torch = require("torch")
    from safetensors.torch import load_file

    path = Path(folder).expanduser()
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise ModelNotFoundError(f"{path} is not a reranker folder: {CONFIG_FILE} is missing")
    try:
        data = json.loads(cfg_path.read_text(encoding="utf-8"))
        config = RerankerConfig.from_json(data)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelNotFoundError(f"unreadable {cfg_path}: {exc}") from exc
    weights = path / data.get("weights", WEIGHTS_FILE)
    vocab = path / data.get("vocab_file", VOCAB_FILE)
    for needed in (weights, vocab):
        if not needed.is_file():
            raise ModelNotFoundError(f"reranker folder {path} is missing {needed.name}")
    model = build_reranker(config)
    state = load_file(str(weights))
    try:
        model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise ModelNotFoundError(f"weights in {weights} do not fit {cfg_path}") from exc
    return model.eval(), TinyTokenizer.from_file(vocab, config.context_length)


# ---------------------------------------------------------------------------
# the Reranker


class TrainedReranker:
    """The :class:`~mmsearch.search.rerank.base.Reranker` of a trained reranker folder."""

    name = "trained"
    kinds: frozenset[str] = frozenset({"picture"})

    def __init__(
        self, model: Any, tokenizer: TinyTokenizer, *, spec: str, batch_size: int = 64
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.batch_size = max(1, int(batch_size))
        dual = model.config.dual
        self.preprocess = TinyPreprocessor(dual.image_size, dual.mean, dual.std)

    def score(self, query: str, candidates: Sequence[Candidate]) -> np.ndarray:
        """Probability that ``query`` describes each candidate picture (float32, same order)."""
        if not query.strip():
            raise QueryError("the trained reranker needs a text query")
        images = []
        for i, c in enumerate(candidates):
            if c.kind not in self.kinds or c.image is None:
                raise QueryError(
                    f"the trained reranker reads pictures; candidate {i} is a {c.kind}"
                    + ("" if c.image is not None or c.kind != "picture" else " without an image")
                )
            images.append(c.image)
        if not images:
            return np.zeros(0, dtype=np.float32)
        return self._probabilities(query, images)

    def _probabilities(self, query: str, images: Sequence[Any]) -> np.ndarray:
        torch = require("torch")
        out: list[np.ndarray] = []
        with torch.inference_mode():
            text, pad = self.model.encode_text(torch.from_numpy(self.tokenizer.encode([query])))
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                pixels = torch.from_numpy(np.stack([self.preprocess(im) for im in chunk]))
                n = len(chunk)
                pair = (text.expand(n, -1, -1), pad.expand(n, -1))
                logits = self.model.match_logits(pair, self.model.encode_image(pixels))
                out.append(torch.sigmoid(logits).numpy().astype(np.float32))
        return np.concatenate(out)


def load(spec_or_path: str, *, batch_size: int = 64, **_: Any) -> TrainedReranker:
    """Load a reranker folder (``trained:PATH`` or the folder's path).

    Options other rerankers take (``device``, ...) are accepted and ignored: this
    one is small and runs on the CPU.
    """
    path = spec_or_path.removeprefix(PREFIX)
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ModelNotFoundError(f"reranker folder not found: {path}")
    model, tokenizer = read_reranker(folder)
    spec = spec_or_path if spec_or_path.startswith(PREFIX) else PREFIX + str(folder)
    return TrainedReranker(model, tokenizer, spec=spec, batch_size=batch_size)
