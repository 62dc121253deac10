"""The Whisper recogniser against transformers itself, on a tiny random-weight checkpoint.

Decoding is compared with ``model.generate`` + ``batch_decode``; the chunking
and timestamp parsing are also driven by scripted token ids from the tiny
tokenizer (a recogniser whose per-chunk decode returns known outputs).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from mmsearch.asr import whisper
from mmsearch.asr.base import Recognizer, TranscriptSpan
from mmsearch.encoders.av_registry import DEFAULT_ASR_MODEL, load_recognizer
from mmsearch.errors import ModelNotFoundError

from encoder_checks import load_half, offline_error
from tiny_av_models import make_tiny_clap, make_tiny_whisper, tone
from torch_threads import one_torch_thread  # noqa: F401 (autouse: one torch thread)

RATE = 16000
MAX_NEW = 24


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper")


@pytest.fixture(scope="module")
def rec(folder: Path) -> whisper.WhisperRecognizer:
    recognizer = load_recognizer(str(folder), device="cpu", max_new_tokens=MAX_NEW)
    assert isinstance(recognizer, whisper.WhisperRecognizer)
    return recognizer


def squash(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("language", [None, "en", "zh"])
def test_matches_transformers(
    language: str | None, rec: whisper.WhisperRecognizer, folder: Path
) -> None:
    model = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    processor = WhisperProcessor.from_pretrained(folder)
    samples = tone(4.0, RATE, 300.0, seed=3)
    features = processor(samples, sampling_rate=RATE, return_tensors="pt").input_features
    with torch.inference_mode():
        ref_ids = model.generate(
            features,
            return_timestamps=True,
            max_new_tokens=MAX_NEW,
            language=language,
            task="transcribe",
            do_sample=False,
            num_beams=1,
        )
    ref_text = processor.batch_decode(ref_ids, skip_special_tokens=True)[0]
    assert squash(ref_text), "the tiny model should say something"

    assert rec.decode_chunks([samples], language) == [ref_ids[0].tolist()]
    spans = rec.transcribe(samples, language=language)
    assert spans and all(isinstance(s, TranscriptSpan) and s.text for s in spans)
    assert squash("".join(s.text for s in spans)) == squash(ref_text)
    assert all(0.0 <= s.start <= s.end <= 4.0 for s in spans)


def test_long_audio_is_chunked_and_offset(rec: whisper.WhisperRecognizer) -> None:
    samples = tone(70.0, RATE, 250.0, seed=4)
    assert whisper.chunk_bounds(samples.size, rec.chunk_samples) == [
        (0, 30 * RATE),
        (30 * RATE, 60 * RATE),
        (60 * RATE, 70 * RATE),
    ]
    spans = rec.transcribe(samples)  # the three chunks decode as one batch
    expected = []
    for start in (0, 30, 60):
        part = rec.transcribe(samples[start * RATE : (start + 30) * RATE])
        expected += [(s.start + start, s.end + start, s.text) for s in part]
    assert [(s.start, s.end, s.text) for s in spans] == [
        (pytest.approx(a, abs=1e-6), pytest.approx(b, abs=1e-6), t) for a, b, t in expected
    ]
    starts = {int(s.start // 30) for s in spans if s.start < 70}
    assert starts == {0, 1, 2}
    assert all(
        int(s.start // 30) * 30 <= s.start <= s.end <= min(70.0, (s.start // 30 + 1) * 30)
        for s in spans
    )


class Scripted(whisper.WhisperRecognizer):
    """A recogniser whose per-chunk decode returns scripted token ids."""

    def __init__(self, folder: Path, outputs: list[list[int]]) -> None:
        super().__init__(folder, spec=str(folder), model_id="scripted", device="cpu")
        self.outputs = outputs
        self.seen: list[tuple[int, str | None]] = []

    def decode_chunks(self, chunks: Sequence[np.ndarray], language: str | None) -> list[list[int]]:
        self.seen += [(len(c), language) for c in chunks]
        return [self.outputs.pop(0) for _ in chunks]


@pytest.fixture(scope="module")
def tok(rec: whisper.WhisperRecognizer) -> Any:
    return rec.tokenizer


def ts(tok: Any, seconds: float) -> int:
    return int(tok.convert_tokens_to_ids(f"<|{seconds:.2f}|>"))


def words(tok: Any, text: str) -> list[int]:
    return list(tok.encode(text, add_special_tokens=False))


def test_timestamps_are_parsed_and_shifted(folder: Path, tok: Any) -> None:
    eot = tok.eos_token_id
    outputs = [
        # chunk 0-30 s: two segments
        [
            ts(tok, 0),
            *words(tok, " hello"),
            ts(tok, 1.5),
            ts(tok, 1.5),
            *words(tok, " world"),
            ts(tok, 3),
            eot,
        ],
        # chunk 30-60 s: a segment, one with only a space (dropped), then a pass cut short after
        # <|3.00|><|20.00|>: generate resumed at 3 s, so the second pass counts from there
        [
            ts(tok, 0.4),
            *words(tok, " again"),
            ts(tok, 2),
            ts(tok, 2),
            *words(tok, " "),
            ts(tok, 3),
            ts(tok, 20),
            ts(tok, 0),
            *words(tok, " later"),
            ts(tok, 4),
            eot,
        ],
        # chunk 60-70 s: a complete segment, then one cut short by max_new_tokens
        [ts(tok, 1), *words(tok, " one"), ts(tok, 2), ts(tok, 2), *words(tok, " cut off")],
    ]
    rec = Scripted(folder, outputs)
    spans = rec.transcribe(np.zeros(70 * RATE, dtype=np.float32), language="zh")
    assert rec.seen == [(30 * RATE, "zh"), (30 * RATE, "zh"), (10 * RATE, "zh")]
    assert [(s.start, s.end, s.text) for s in spans] == [
        (0.0, 1.5, "hello"),
        (1.5, 3.0, "world"),
        (30.4, 32.0, "again"),
        (33.0, 37.0, "later"),
        (61.0, 62.0, "one"),
        (62.0, 70.0, "cut off"),
    ]


def test_chunks_without_timestamp_pairs(folder: Path, tok: Any) -> None:
    eot = tok.eos_token_id
    lang = tok.convert_tokens_to_ids("<|en|>")
    outputs = [
        [*words(tok, " no stamps at all"), eot],  # the whole chunk
        [ts(tok, 0), ts(tok, 1), eot],  # a segment without text: nothing
        [ts(tok, 2.5), *words(tok, " opened"), lang, eot],  # one timestamp, then text to the end
        [eot],  # nothing said
        [ts(tok, 3), *words(tok, " late"), ts(tok, 12), eot],  # past the audio's end: clamped
    ]
    rec = Scripted(folder, outputs)
    rec.batch_size = 2
    spans = rec.transcribe(np.zeros(125 * RATE, dtype=np.float32))
    assert [n for n, _ in rec.seen] == [30 * RATE] * 4 + [5 * RATE]
    assert [(s.start, s.end, s.text) for s in spans] == [
        (0.0, 30.0, "no stamps at all"),
        (62.5, 90.0, "opened"),
        (123.0, 125.0, "late"),
    ]


def test_language_option(rec: whisper.WhisperRecognizer, folder: Path, tmp_path: Path) -> None:
    assert rec.language_code(None) is None
    assert rec.language_code("en") == "en"
    assert rec.language_code("English") == "en"
    assert rec.language_code("<|zh|>") == "zh"
    assert rec.language_code("chinese") == "zh"
    with pytest.raises(ValueError, match="unknown language 'klingon'"):
        rec.language_code("klingon")
    with pytest.raises(ValueError, match="unknown language"):
        rec.transcribe(tone(1.0, RATE), language="xx")

    english_only = tmp_path / "tiny-whisper-en"
    shutil.copytree(folder, english_only)
    config_path = english_only / "generation_config.json"
    config = json.loads(config_path.read_text())
    config["is_multilingual"] = False
    config_path.write_text(json.dumps(config))
    en = load_recognizer(str(english_only), device="cpu", max_new_tokens=8)
    assert en.language_code("en") is None
    with pytest.raises(ValueError, match="English-only"):
        en.language_code("zh")
    assert isinstance(en.transcribe(tone(1.0, RATE), language="en"), list)


def test_empty_short_and_bad_audio(rec: whisper.WhisperRecognizer) -> None:
    assert rec.transcribe(np.zeros(0, dtype=np.float32)) == []
    assert rec.transcribe(np.zeros(0, dtype=np.float32), language="en") == []
    short = rec.transcribe(tone(0.1, RATE))
    assert short, "the tiny model says something over 0.1 s of tone"  # all([]) is true
    assert all(s.text and 0.0 <= s.start <= s.end <= 0.1 for s in short)
    with pytest.raises(ValueError, match="mono"):
        rec.transcribe(np.zeros((2, RATE), dtype=np.float32))


def test_contract_and_options(rec: whisper.WhisperRecognizer, folder: Path) -> None:
    assert isinstance(rec, Recognizer)
    assert rec.name == "tiny-whisper" and rec.sample_rate == RATE
    assert rec.chunk_samples == 30 * RATE and rec.time_precision == pytest.approx(0.02)
    assert rec.max_new_tokens == MAX_NEW
    capped = load_recognizer(str(folder), device="cpu", max_new_tokens=10_000, model_id="org/w")
    assert capped.max_new_tokens == 128 - whisper.PROMPT_TOKENS and capped.name == "org/w"
    assert load_recognizer(str(folder), device="cpu").max_new_tokens is None
    with pytest.raises(ValueError, match="at least 1"):
        load_recognizer(str(folder), device="cpu", max_new_tokens=0)


def test_half_precision_path(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What CUDA gets (float16 weights and features), run on the CPU."""
    half = load_half(monkeypatch, lambda: load_recognizer(str(folder), max_new_tokens=8))
    spans = half.transcribe(tone(2.0, RATE))
    assert spans, "the float16 model says something over 2 s of tone"  # all([]) is true
    assert all(s.text and 0.0 <= s.start <= s.end <= 2.0 for s in spans)


def test_other_kinds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="audio–text model .* load_audio_encoder"):
        load_recognizer(str(make_tiny_clap(tmp_path / "a-clap")))


def test_offline_without_cache_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert DEFAULT_ASR_MODEL in offline_error(monkeypatch, tmp_path / "hub", load_recognizer)
