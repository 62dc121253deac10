"""Audio–text encoder: CLAP (transformers ``ClapModel``) behind ``AudioTextEncoder``.

The checkpoint's own tokenizer and feature extractor are used, and features
come from ``get_text_features`` / ``get_audio_features``. The feature
extractor decides the audio side: its sampling rate (48 kHz for the LAION
checkpoints) is :attr:`ClapEncoder.sample_rate`, and its maximum input length
(10 s) is :attr:`ClapEncoder.window_seconds`, the window ingest cuts.

Deterministic by design. The feature extractor would crop clips longer than
its window at random (``rand_trunc``) or fuse random crops (``fusion``), and
for fused checkpoints it marks a random clip of a batch as "longer". Here a
clip is never longer than the window when it reaches the extractor: a longer
clip is cut into consecutive windows (the last one aligned to the clip's end,
so every window is full), each window is embedded, and the mean of the window
vectors is renormalised. Shorter clips are padded the checkpoint's way
(``repeatpad`` for HTSAT: the clip is repeated, then padded with silence), and
``is_longer`` is always false, as in LAION-CLAP's own inference on short clips.

For ingest workers, :meth:`ClapEncoder.audio_preprocessor` returns a picklable
callable (one window -> log-mel features) and
:meth:`ClapEncoder.encode_audio_features` embeds a batch of them.
On CUDA the model runs in float16; outputs are L2-normalised float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mmsearch._lazy import require
from mmsearch.encoders.av_registry import resolve_model
from mmsearch.encoders.base import batched
from mmsearch.encoders.torch_util import TransformersTextMixin, as_batch
from mmsearch.types import Vectors, l2_normalize

DEFAULT_BATCH_SIZE = 32
ROBERTA_POSITION_OFFSET = 2
"""Position slots a RoBERTa text tower cannot use for tokens (positions start at pad_id + 1)."""

AudioFeatures = NDArray[np.float32]
"""Log-mel features of one window (C, T, F) or a batch (N, C, T, F), as the model expects."""

# Feature-extractor settings that decide the features; recorded in EncoderInfo.preprocessing.
_PRE_KEYS = (
    "sampling_rate",
    "feature_size",
    "fft_window_size",
    "hop_length",
    "max_length_s",
    "nb_max_samples",
    "frequency_min",
    "frequency_max",
    "top_db",
    "padding",
    "truncation",
)
LONG_CLIPS = "consecutive windows, last aligned to the end; mean of window vectors"


def load(
    name: str,
    *,
    spec: str,
    device: str | None = None,
    batch_size: int | None = None,
    model_id: str | None = None,
    **_: Any,
) -> ClapEncoder:
    """Load a CLAP checkpoint from a local folder or a hub id (``org/name``)."""
    folder, ident = resolve_model(name, spec=spec, model_type="clap", model_id=model_id)
    return ClapEncoder(folder, spec=spec, model_id=ident, device=device, batch_size=batch_size)


def window_starts(n_samples: int, window: int) -> list[int]:
    """Starts of the consecutive full windows covering a clip; the last ends at the clip's end."""
    if n_samples <= window:
        return [0]
    count = math.ceil(n_samples / window)
    return [i * window for i in range(count - 1)] + [n_samples - window]


class ClapAudioPreprocessor:
    """Picklable: one window of mono samples (at most the window length) -> its log-mel features."""

    def __init__(self, feature_extractor: Any) -> None:
        self.feature_extractor = feature_extractor

    @property
    def window(self) -> int:
        return int(self.feature_extractor.nb_max_samples)

    def __call__(self, samples: NDArray[np.floating[Any]]) -> AudioFeatures:
        wave = np.asarray(samples, dtype=np.float64)
        if wave.ndim != 1 or wave.size == 0 or wave.size > self.window:
            raise ValueError(
                f"expected one mono window of 1..{self.window} samples, got shape {wave.shape}"
            )
        fe = self.feature_extractor
        out = fe([wave], sampling_rate=fe.sampling_rate, return_tensors="np")
        return np.asarray(out["input_features"][0], dtype=np.float32)


class ClapEncoder(TransformersTextMixin):
    """A transformers CLAP model behind the :class:`~mmsearch.encoders.base.AudioTextEncoder` contract."""

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
        processor = self._load("ClapModel", "ClapProcessor", folder, spec=spec, device=device)
        self.tokenizer = self.text_processor = processor.tokenizer
        self._pre = ClapAudioPreprocessor(processor.feature_extractor)
        self.fusion = bool(self.model.config.audio_config.enable_fusion)
        self.max_length = _text_max_length(self.tokenizer, self.model.config)
        self.default_batch_size = batch_size or DEFAULT_BATCH_SIZE
        self.info = self._describe(
            spec=spec,
            model_id=model_id,
            preprocessing=audio_preprocessing(processor.feature_extractor),
            model_type="clap",
            fusion=self.fusion,
        )

    @property
    def sample_rate(self) -> int:
        return int(self._pre.feature_extractor.sampling_rate)

    @property
    def window_seconds(self) -> float:
        return self._pre.window / self.sample_rate

    def audio_preprocessor(self) -> ClapAudioPreprocessor:
        return self._pre

    def encode_audio_features(self, features: AudioFeatures) -> Vectors:
        """Embed preprocessed windows (N, C, T, F) (or one (C, T, F)); one unit row each."""
        arr = as_batch(features, 3)
        inputs = {
            "input_features": self.torch.from_numpy(np.ascontiguousarray(arr)),
            # Every window fits the model's input, so none takes the random-crop fusion path.
            "is_longer": self.torch.zeros((arr.shape[0], 1), dtype=self.torch.bool),
        }
        return self._features(self.model.get_audio_features, inputs)

    def encode_audio(
        self, clips: Sequence[NDArray[np.float32]], batch_size: int | None = None
    ) -> Vectors:
        """Mono clips at :attr:`sample_rate` -> one vector each (long clips: mean over windows)."""
        windows: list[NDArray[np.float32]] = []
        owners: list[int] = []
        for i, clip in enumerate(clips):
            wave = np.asarray(clip, dtype=np.float32)
            if wave.ndim != 1 or wave.size == 0:
                raise ValueError(f"audio clip {i} must be a non-empty mono array, got {wave.shape}")
            for start in window_starts(wave.size, self._pre.window):
                windows.append(wave[start : start + self._pre.window])
                owners.append(i)
        parts = [
            self.encode_audio_features(np.stack([self._pre(w) for w in chunk]))
            for chunk in batched(windows, batch_size or self.default_batch_size)
        ]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        pooled = np.zeros((len(clips), self.dim), dtype=np.float64)
        np.add.at(pooled, np.asarray(owners), np.concatenate(parts))
        return l2_normalize(pooled)


def audio_preprocessing(feature_extractor: Any) -> dict[str, Any]:
    """The feature extractor's feature-deciding settings, plus how long clips are handled."""
    settings = feature_extractor.to_dict()
    record: dict[str, Any] = {"processor": type(feature_extractor).__name__}
    for key in _PRE_KEYS:
        if key in settings:
            record[key] = settings[key]
    record["long_clips"] = LONG_CLIPS
    return record


def _text_max_length(tokenizer: Any, config: Any) -> int:
    positions = int(config.text_config.max_position_embeddings) - ROBERTA_POSITION_OFFSET
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < positions:
        return limit
    return positions
