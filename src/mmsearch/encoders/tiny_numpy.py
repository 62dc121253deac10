"""The tiny model's towers in numpy: inference without importing torch.

``import torch`` alone costs more CPU than a whole one-off search with the
shipped demo model, so :class:`~mmsearch.encoders.tiny.TinyEncoder` runs
these instead when torch is not loaded yet. They compute what the torch
modules of :func:`~mmsearch.encoders.tiny.build_model` compute in eval mode,
from the same state dict, up to float32 rounding (tests hold them to a cosine
of at least 0.9999 against torch):

* :class:`GruText` — token embedding, GRU (PyTorch's gate equations), LayerNorm
  and projection, read out at the last real token;
* :class:`CnnImage` — 3x3 convolutions as one matrix product over image
  patches, BatchNorm folded into them, GELU, coordinate channels, MLP head.

The transformer text tower (``text_arch="transformer"``) has no numpy version:
such models run on torch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # pragma: no cover
    from mmsearch.encoders.tiny import TinyConfig

Array = NDArray[np.float32]
Weights = dict[str, NDArray[np.generic]]

LN_EPS = 1e-5
BN_EPS = 1e-5
CHUNK = 8
"""Images per pass through the CNN."""

# Abramowitz & Stegun 7.1.26: |erf(x) - approx| <= 1.5e-7, about float32's own resolution.
_P = np.float32(0.3275911)
_A = tuple(np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027))
_A5 = np.float32(1.061405429)


def _one_minus_erf_abs(z: Array) -> Array:
    """1 - erf(z) for z >= 0 (A&S 7.1.26), computed in place in a few passes."""
    t = _P * z
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = _A5 * t
    for a in reversed(_A):
        poly += a
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z
    return poly


def erf(x: Array) -> Array:
    """The error function, vectorised, to within 1.5e-7."""
    y = _one_minus_erf_abs(np.abs(x))
    np.subtract(np.float32(1.0), y, out=y)
    return np.copysign(y, x)


def gelu(x: Array) -> Array:
    """torch.nn.GELU() (the exact form, with erf): x/2 (1 + erf(x / sqrt 2))."""
    h = _one_minus_erf_abs(np.abs(x) * np.float32(1.0 / math.sqrt(2.0)))
    h *= x
    h *= np.float32(0.5)  # h = x/2 (1 - erf|x/sqrt 2|): gelu(x) for x < 0, x - gelu(x) otherwise
    return np.where(x >= 0, x - h, h)


def _sigmoid(x: Array) -> Array:
    return np.float32(0.5) * (np.tanh(np.float32(0.5) * x) + np.float32(1.0))


def layer_norm(x: Array, weight: Array, bias: Array, eps: float = LN_EPS) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + np.float32(eps)) * weight + bias


def _f32(weights: Weights, key: str) -> Array:
    return np.ascontiguousarray(weights[key], dtype=np.float32)


def _linear(weights: Weights, prefix: str) -> tuple[Array, Array]:
    """An nn.Linear as (in, out) matrix and bias: ``x @ matrix + bias``."""
    return _f32(weights, prefix + "weight").T.copy(), _f32(weights, prefix + "bias")


class GruText:
    """The ``gru`` text tower: (N, L) int64 ids -> (N, embed_dim) unnormalised features."""

    def __init__(self, weights: Weights, config: TinyConfig, prefix: str = "text.") -> None:
        self.embed = _f32(weights, prefix + "embed.weight")
        self.layers = []
        for i in range(config.text_layers):
            g = f"{prefix}gru."
            w_ih, w_hh = _f32(weights, f"{g}weight_ih_l{i}"), _f32(weights, f"{g}weight_hh_l{i}")
            b_ih, b_hh = _f32(weights, f"{g}bias_ih_l{i}"), _f32(weights, f"{g}bias_hh_l{i}")
            self.layers.append((w_ih.T.copy(), w_hh.T.copy(), b_ih, b_hh))
        self.norm_w = _f32(weights, prefix + "norm.weight")
        self.norm_b = _f32(weights, prefix + "norm.bias")
        self.proj = _f32(weights, prefix + "proj.weight").T.copy()

    def __call__(self, ids: NDArray[np.int64]) -> Array:
        n = ids.shape[0]
        last = np.maximum((ids != 0).sum(axis=1) - 1, 0)
        steps = int(last.max()) + 1 if n else 0  # states after the last real token are unused
        x = self.embed[ids[:, :steps]]
        for w_ih, w_hh, b_ih, b_hh in self.layers:
            x = self._gru_layer(x, w_ih, w_hh, b_ih, b_hh)
        out = x[np.arange(n), last]
        return layer_norm(out, self.norm_w, self.norm_b) @ self.proj

    @staticmethod
    def _gru_layer(x: Array, w_ih: Array, w_hh: Array, b_ih: Array, b_hh: Array) -> Array:
        n, steps, _ = x.shape
        hidden = w_hh.shape[0]
        gates_x = x @ w_ih + b_ih  # (N, L, 3H): r, z, n
        h = np.zeros((n, hidden), dtype=np.float32)
        out = np.empty((n, steps, hidden), dtype=np.float32)
        for t in range(steps):
            gx = gates_x[:, t]
            gh = h @ w_hh + b_hh
            r = _sigmoid(gx[:, :hidden] + gh[:, :hidden])
            z = _sigmoid(gx[:, hidden : 2 * hidden] + gh[:, hidden : 2 * hidden])
            cand = np.tanh(gx[:, 2 * hidden :] + r * gh[:, 2 * hidden :])
            h = (np.float32(1.0) - z) * cand + z * h
            out[:, t] = h
        return out


class CnnImage:
    """The image tower: (N, 3, S, S) float32 pixels -> (N, embed_dim) unnormalised features."""

    def __init__(self, weights: Weights, config: TinyConfig, prefix: str = "visual.") -> None:
        strides = [config.stem_stride]
        for _ in config.channels[1:]:
            strides += [2, 1]
        strides.append(2)
        self.convs = [self._folded(weights, f"{prefix}body.{i}.", s) for i, s in enumerate(strides)]
        self.fc1 = _linear(weights, prefix + "head.2.")
        self.fc2 = _linear(weights, prefix + "head.4.")
        ramp = np.linspace(-1.0, 1.0, config.image_size, dtype=np.float32)
        rows, cols = np.meshgrid(ramp, ramp, indexing="ij")
        self.coords = np.stack([rows, cols], axis=-1)  # (S, S, 2), channels last

    @staticmethod
    def _folded(weights: Weights, prefix: str, stride: int) -> tuple[Array, Array, int]:
        """Conv weight as a (C*9, Cout) matrix with its BatchNorm folded in, bias, stride."""
        w = _f32(weights, prefix + "0.weight")  # (Cout, C, 3, 3)
        bn = {
            k: _f32(weights, f"{prefix}1.{k}")
            for k in ("weight", "bias", "running_mean", "running_var")
        }
        scale = bn["weight"] / np.sqrt(bn["running_var"] + np.float32(BN_EPS))
        matrix = (w * scale[:, None, None, None]).reshape(w.shape[0], -1).T.copy()
        return matrix, bn["bias"] - bn["running_mean"] * scale, stride

    def __call__(self, pixels: Array) -> Array:
        # A few images at a time: the activations stay in the CPU's caches.
        parts = [self._forward(pixels[i : i + CHUNK]) for i in range(0, len(pixels), CHUNK)]
        return np.concatenate(parts) if parts else np.zeros((0, self.fc2[1].shape[0]), np.float32)

    def _forward(self, pixels: Array) -> Array:
        n = pixels.shape[0]
        x = np.ascontiguousarray(pixels.transpose(0, 2, 3, 1), dtype=np.float32)  # NHWC
        coords = np.broadcast_to(self.coords, (n, *self.coords.shape))
        x = np.concatenate([x, coords], axis=-1)
        for matrix, bias, stride in self.convs:
            x = gelu(_conv3x3(x, matrix, stride) + bias)
        flat = x.transpose(0, 3, 1, 2).reshape(n, -1)  # torch flattens (C, H, W)
        hidden = gelu(flat @ self.fc1[0] + self.fc1[1])
        return hidden @ self.fc2[0] + self.fc2[1]


def _conv3x3(x: Array, matrix: Array, stride: int) -> Array:
    """A 3x3 convolution with padding 1 over NHWC ``x``; ``matrix`` is (C*9, Cout)."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]  # (N, Ho, Wo, C, 3, 3): the order of torch's weight
    n, ho, wo = windows.shape[:3]
    patches = windows.reshape(n * ho * wo, -1)
    return (patches @ matrix).reshape(n, ho, wo, -1)
