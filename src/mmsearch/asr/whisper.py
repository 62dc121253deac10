"""Speech recognition: Whisper (transformers) behind the ``Recognizer`` contract.

Audio (mono float32 at 16 kHz) is cut into consecutive windows of the model's
input length (30 s for every Whisper checkpoint: the feature extractor's
``chunk_length``), a window is padded the model's way and decoded greedily by
``generate(..., return_timestamps=True)``, and the generated tokens are turned
into timed spans by the tokenizer's own offsets (``decode(...,
output_offsets=True)``), shifted by the window's start. Inside a window,
transformers resumes decoding after the last complete segment (Whisper's
sequential algorithm); the tokenizer's offsets follow those resumptions.

Text after the last timestamp token of a window (a segment cut short by
``max_new_tokens``) becomes a span from that timestamp to the window's end; a
window decoded without any timestamp pair becomes one span covering the
window (from its leading timestamp, if it has one). Times are clamped to the window; spans with empty text are dropped.

``language=None`` lets a multilingual checkpoint detect the language of each
window; ``"en"``, ``"zh"`` (codes, names or ``<|en|>`` tokens) force it.
English-only checkpoints (``*.en``) accept only English.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mmsearch._lazy import require
from mmsearch.asr.base import TranscriptSpan
from mmsearch.encoders.av_registry import resolve_model
from mmsearch.encoders.base import batched
from mmsearch.encoders.torch_util import load_pretrained

DEFAULT_BATCH_SIZE = 8
PROMPT_TOKENS = 3
"""<|startoftranscript|> <|lang|> <|transcribe|>: what the decoder starts from with timestamps on."""


def load(
    name: str,
    *,
    spec: str,
    device: str | None = None,
    batch_size: int | None = None,
    max_new_tokens: int | None = None,
    model_id: str | None = None,
    **_: Any,
) -> WhisperRecognizer:
    """Load a Whisper checkpoint from a local folder or a hub id (``org/name``)."""
    folder, ident = resolve_model(name, spec=spec, model_type="whisper", model_id=model_id)
    return WhisperRecognizer(
        folder,
        spec=spec,
        model_id=ident,
        device=device,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
    )


def chunk_bounds(n_samples: int, chunk: int) -> list[tuple[int, int]]:
    """(start, end) sample bounds of consecutive chunks of at most ``chunk`` samples."""
    return [(start, min(start + chunk, n_samples)) for start in range(0, n_samples, chunk)]


class WhisperRecognizer:
    """A transformers Whisper model behind the :class:`~mmsearch.asr.base.Recognizer` contract."""

    def __init__(
        self,
        folder: Path,
        *,
        spec: str,
        model_id: str,
        device: str | None = None,
        batch_size: int | None = None,
        max_new_tokens: int | None = None,
    ) -> None:
        self.torch = require("torch")
        loaded = load_pretrained(
            folder,
            spec=spec,
            model_class="WhisperForConditionalGeneration",
            processor_class="WhisperProcessor",
            device=device,
        )
        self.model, self.device, self.dtype = loaded.model, loaded.device, loaded.dtype
        self.feature_extractor = loaded.processor.feature_extractor
        self.tokenizer = loaded.processor.tokenizer
        self.spec = spec
        self.model_id = model_id
        config, generation = self.model.config, self.model.generation_config
        self.multilingual = bool(getattr(generation, "is_multilingual", False))
        self.chunk_samples = int(self.feature_extractor.n_samples)
        self.time_precision = float(self.feature_extractor.chunk_length) / int(
            config.max_source_positions
        )
        self.timestamp_begin = int(generation.no_timestamps_token_id) + 1
        self.special_ids = frozenset(int(i) for i in self.tokenizer.all_special_ids)
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE
        self.max_new_tokens = _cap_new_tokens(max_new_tokens, int(config.max_target_positions))

    @property
    def name(self) -> str:
        return self.model_id

    @property
    def sample_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    def transcribe(
        self, samples: NDArray[np.float32], *, language: str | None = None
    ) -> list[TranscriptSpan]:
        wave = np.asarray(samples, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"expected mono samples (one dimension), got shape {wave.shape}")
        lang = self.language_code(language)
        spans: list[TranscriptSpan] = []
        rate = self.sample_rate
        for group in batched(chunk_bounds(wave.size, self.chunk_samples), self.batch_size):
            decoded = self.decode_chunks([wave[s:e] for s, e in group], lang)
            for (s, e), ids in zip(group, decoded, strict=True):
                spans += self.spans_from_tokens(ids, start=s / rate, end=e / rate)
        return spans

    def decode_chunks(
        self, chunks: Sequence[NDArray[np.float32]], language: str | None
    ) -> list[list[int]]:
        """Greedy-decode each chunk (at most the model's input length); its generated token ids."""
        features = self.feature_extractor(
            [np.asarray(c, dtype=np.float32) for c in chunks],
            sampling_rate=self.sample_rate,
            return_tensors="pt",
        ).input_features
        kwargs: dict[str, Any] = {"return_timestamps": True, "do_sample": False, "num_beams": 1}
        if self.multilingual:
            kwargs.update(language=language, task="transcribe")
        if self.max_new_tokens is not None:
            kwargs["max_new_tokens"] = self.max_new_tokens
        with self.torch.inference_mode():
            out = self.model.generate(features.to(self.device, self.dtype), **kwargs)
        sequences = out if self.torch.is_tensor(out) else out["sequences"]
        return [[int(t) for t in row] for row in sequences.cpu()]

    def spans_from_tokens(
        self, ids: Sequence[int], *, start: float, end: float
    ) -> list[TranscriptSpan]:
        """Timed spans of one chunk's generated tokens; times shifted by ``start``, within ``end``."""
        # Special tokens (end of text, padding, a stray language tag) carry no text or time.
        ids = [int(i) for i in ids if int(i) not in self.special_ids]
        stamps = [k for k, i in enumerate(ids) if i >= self.timestamp_begin]
        decoded = self.tokenizer.decode(
            ids, output_offsets=True, time_precision=self.time_precision
        )
        pieces = [(o["timestamp"][0], o["timestamp"][1], o["text"]) for o in decoded["offsets"]]
        if not pieces:  # no timestamp pair: the text covers the chunk (from a leading timestamp)
            begin = (ids[0] - self.timestamp_begin) * self.time_precision if stamps == [0] else 0.0
            return _spans([(begin, end - start, self._text(ids))], start, end)
        tail = ids[stamps[-1] + 1 :]
        if tail:
            pieces.append((pieces[-1][1], end - start, self._text(tail)))
        return _spans(pieces, start, end)

    def language_code(self, language: str | None) -> str | None:
        """The language code ``generate`` takes, or ``None`` to detect it (or no choice)."""
        if language is None:
            return None
        tokenization = require("transformers.models.whisper.tokenization_whisper")
        key = language.strip().lower().removeprefix("<|").removesuffix("|>")
        code = tokenization.TO_LANGUAGE_CODE.get(key, key)
        if not self.multilingual:
            if code == "en":
                return None
            raise ValueError(f"{self.name} is an English-only model; it cannot do {language!r}")
        if f"<|{code}|>" not in (self.model.generation_config.lang_to_id or {}):
            raise ValueError(
                f"unknown language {language!r} for {self.name}: use a code such as 'en' or 'zh'"
            )
        return str(code)

    def _text(self, ids: Sequence[int]) -> str:
        text = [i for i in ids if i < self.timestamp_begin]
        return str(self.tokenizer.decode(text, skip_special_tokens=True))


def _spans(
    pieces: Sequence[tuple[float, float, str]], start: float, end: float
) -> list[TranscriptSpan]:
    """Shift chunk-relative times by ``start``, clamp them to the chunk, drop empty text."""
    spans = []
    for t0, t1, text in pieces:
        text = text.strip()
        if not text:
            continue
        s = min(max(start + float(t0), start), end)
        e = min(max(start + float(t1), s), end)
        spans.append(TranscriptSpan(start=round(s, 3), end=round(e, 3), text=text))
    return spans


def _cap_new_tokens(max_new_tokens: int | None, max_target_positions: int) -> int | None:
    """At most what fits in the decoder after its prompt (transformers refuses more)."""
    if max_new_tokens is None:
        return None
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    return min(max_new_tokens, max_target_positions - PROMPT_TOKENS)
