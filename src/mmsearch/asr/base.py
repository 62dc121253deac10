"""The recogniser contract: mono audio in, timed text spans out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class TranscriptSpan:
    """A stretch of recognised speech; times in seconds from the start of the given audio."""

    start: float
    end: float
    text: str


@runtime_checkable
class Recognizer(Protocol):
    """Speech -> text with timestamps. ``samples`` are mono float32 at ``sample_rate``."""

    @property
    def name(self) -> str:
        """Identity recorded with each transcript (model id)."""
        ...

    @property
    def sample_rate(self) -> int:
        """The rate the recogniser wants its input at (16 kHz for Whisper)."""
        ...

    def transcribe(
        self, samples: NDArray[np.float32], *, language: str | None = None
    ) -> list[TranscriptSpan]: ...
