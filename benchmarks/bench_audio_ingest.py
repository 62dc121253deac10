"""Audio ingest speed: a 10-minute recording through CLAP windows and Whisper transcription.

The recording is generated once and cached in benchmarks/.cache/: English and
Mandarin speech from espeak-ng, tone sweeps, chords, filtered noise and short
pauses over a faint noise floor, 44.1 kHz stereo, AAC 128 kbit/s in an .m4a
(so decoding resamples to 48 kHz for CLAP and 16 kHz for Whisper, as with a
phone recording). Models, all with seeded random weights (speed does not
depend on weight values), saved to benchmarks/.cache/ and loaded through
mmsearch's own loaders:

- CLAP with the laion/clap-htsat-unfused sizes: HTSAT-tiny audio tower
  (patch embeddings 96, depths 2/2/6/2, heads 4/8/16/32, window 8, 256x256
  spectrogram input, 64 mel bins, hidden 768), RoBERTa-base text tower
  (vocabulary 50265, 12 layers of 768), projection 512, no fusion; the
  checkpoint's feature extractor settings (48 kHz, hop 480, FFT 1024, 50 Hz to
  14 kHz, 10 s, ``repeatpad``, ``rand_trunc``). Its tokenizer is a small
  byte-level BPE (only the text tower's vocabulary size matters for speed,
  and no text goes through CLAP here).
- Whisper with the whisper-base sizes: d_model 512, 6 encoder + 6 decoder
  layers, 8 heads, FFN 2048, 80 mel bins, 1500 audio positions, 448 text
  positions, and a tokenizer with the real vocabulary size and layout (51865:
  50257 byte-level BPE tokens over printable ASCII, then <|endoftext|>,
  <|startoftranscript|>, 99 language tags, the task and control tokens and
  1501 timestamp tokens), so the output layer and logits processors cost what
  they cost with the real checkpoint. Greedy decoding, language detected per
  window (ingest passes no language), timestamps on, ``max_new_tokens`` capped
  (default 64). The cap bounds each decoding pass; transformers resumes a
  window cut off inside a segment from its last complete timestamp, so the
  report counts encoder passes and decoder steps per window. Random weights
  almost never produce <|endoftext|>, so every pass runs to the cap: the
  figure is a worst case for that cap (dense real speech needs about 100-150
  tokens per 30 s).
- The library's image–text model, which embeds the transcript spans, is the
  ViT-B/32 CLIPModel of bench_video_ingest.py.

Measured, in seconds of audio per wall-clock second (× real time), each stage
the way ``ingest.timed`` runs it: decode + resample (``AudioChunks`` at 48 kHz
and at 16 kHz), CLAP (``windows`` of 10 s every 5 s, batches of 8 through
``encode_audio``, feature extraction included, and the feature extraction
alone), Whisper (``transcribe`` on each 30 s chunk, as ingest calls it), the
CLIP text tower on the transcript spans, and the whole ``Library.add`` with
both models. The CLAP, Whisper and text figures are the time spent in those
calls during the ``Library.add`` runs (the work is not done twice).
Diagnostics: 8 windows in one ``transcribe`` call (the recogniser batches
them) and one window with 1 and with 2 torch threads.

    .venv/bin/python benchmarks/bench_audio_ingest.py [--minutes 10] [--max-new-tokens 64]
        [--rounds 1] [--threads N] [--no-diagnostics] [--out benchmarks/results/audio-ingest.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from bench_encode import loadavg, machine, run_and_report  # noqa: E402
from bench_video_ingest import (  # noqa: E402
    HEADER,
    Clock,
    Job,
    clip_encoder,
    row,
    stored_segments,
    timed_rounds,
)

from tiny_av_models import whisper_special_tokens  # noqa: E402

CACHE = Path(__file__).parent / ".cache"
RESULTS = Path(__file__).parent / "results" / "audio-ingest.md"
RATE = 44100
AUDIO_BATCH = 8  # ingest.timed.AUDIO_BATCH
CLAP_FOLDER = CACHE / "hf-clap-htsat-unfused-random"
WHISPER_FOLDER = CACHE / "hf-whisper-base-random"
WHISPER_VOCAB = 51865
TIMESTAMPS = 1501

ENGLISH = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please remember to bring the blue folder to the meeting on Thursday morning.",
    "The train to the airport leaves every twenty minutes from platform four.",
    "A gentle rain fell over the city while the market closed for the night.",
    "Our new search engine finds the right moment in hours of video and sound.",
    "She played a short melody on the old piano before the guests arrived.",
]
MANDARIN = [
    "今天天气很好，我们去公园散步吧。",
    "请把会议记录发给所有参加的人。",
    "这家餐厅的面条非常好吃，价格也很便宜。",
    "火车明天早上八点从北京出发。",
]


# ------------------------------------------------------------------------------ the recording


def speech(text: str, voice: str) -> np.ndarray:
    """espeak-ng saying ``text``, mono float32 at RATE."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "155", "-w", str(out), text], check=True)
        with wave.open(str(out)) as w:
            rate = w.getframerate()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    x = data.astype(np.float32) / 32768.0
    n = int(len(x) * RATE / rate)
    return np.interp(np.arange(n) * rate / RATE, np.arange(len(x)), x).astype(np.float32)


def sweep(seconds: float, f0: float, f1: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (0.3 * np.sin(phase)).astype(np.float32)


def chord(seconds: float, root: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    notes = sum(np.sin(2 * np.pi * root * r * t) for r in (1.0, 1.26, 1.5, 2.0))
    envelope = np.minimum(1.0, t / 0.05) * np.exp(-t / seconds)
    return (0.12 * notes * envelope).astype(np.float32)


def noise(seconds: float, rng: np.random.Generator, smooth: int) -> np.ndarray:
    white = rng.normal(0, 1, int(seconds * RATE))
    shaped = np.convolve(white, np.ones(smooth) / smooth, mode="same")
    return (0.25 * shaped / (np.abs(shaped).max() + 1e-9)).astype(np.float32)


def make_recording(path: Path, seconds: float) -> float:
    """Speech, tones, chords and noise in turn to ``seconds``; AAC .m4a. Returns speech seconds."""
    rng = np.random.default_rng(0)
    en = [speech(s, "en-us") for s in ENGLISH]
    zh = [speech(s, "cmn") for s in MANDARIN]
    parts: list[np.ndarray] = []
    total = spoken = 0.0
    i = 0
    while total < seconds:
        block = [
            en[i % len(en)],
            sweep(4.0, 200 + 50 * (i % 7), 2000 + 300 * (i % 5)),
            zh[i % len(zh)],
            noise(3.0, rng, 1 + 8 * (i % 4)),
            en[(i + 3) % len(en)],
            chord(5.0, 110 * 2 ** ((i % 12) / 12)),
            np.zeros(int(0.7 * RATE), np.float32),
        ]
        spoken += sum(len(b) for k, b in enumerate(block) if k in (0, 2, 4)) / RATE
        parts += block
        total += sum(len(b) for b in block) / RATE
        i += 1
    mono = np.concatenate(parts)[: int(seconds * RATE)]
    mono = mono + rng.normal(0, 0.003, mono.size).astype(np.float32)
    stereo = np.stack([mono, 0.9 * mono], axis=1).astype("<f4")
    tmp = path.with_suffix(".part.m4a")
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "f32le", "-ar", str(RATE)]
    cmd += ["-ac", "2", "-i", "-", "-c:a", "aac", "-b:a", "128k", str(tmp)]
    subprocess.run(cmd, input=stereo.tobytes(), check=True)
    tmp.rename(path)
    return min(spoken, seconds)


# ------------------------------------------------------------------------------ models


def _byte_chars() -> list[str]:
    from open_clip.tokenizer import bytes_to_unicode

    table = bytes_to_unicode()
    return [table[ord(" ")]] + [
        table[b] for b in range(256) if chr(b) in string.printable and chr(b).strip()
    ]


def build_clap(folder: Path) -> None:
    """ClapModel with laion/clap-htsat-unfused's sizes and feature extractor, random weights."""
    import torch
    from transformers import (
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        RobertaTokenizer,
    )

    chars = _byte_chars()
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for c in chars:
        vocab[c] = len(vocab)
    vocab["<mask>"] = len(vocab)
    tokenizer = RobertaTokenizer(vocab=vocab, merges=[], model_max_length=512)
    audio = {
        "patch_embeds_hidden_size": 96,
        "depths": [2, 2, 6, 2],
        "num_attention_heads": [4, 8, 16, 32],
        "window_size": 8,
        "spec_size": 256,
        "num_mel_bins": 64,
        "patch_size": 4,
        "patch_stride": [4, 4],
        "hidden_size": 768,
        "projection_dim": 512,
        "enable_fusion": False,
    }
    text = {
        "vocab_size": 50265,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 514,
        "type_vocab_size": 1,
        "projection_dim": 512,
    }
    extractor = ClapFeatureExtractor(
        feature_size=64,
        sampling_rate=48000,
        hop_length=480,
        max_length_s=10,
        fft_window_size=1024,
        frequency_min=50,
        frequency_max=14000,
        padding="repeatpad",
        truncation="rand_trunc",
    )
    torch.manual_seed(0)
    model = ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=512)).eval()
    _save(model, ClapProcessor(extractor, tokenizer), folder)


def whisper_tokenizer() -> Any:
    """A Whisper tokenizer with whisper-base's vocabulary size and id layout (see the docstring)."""
    from transformers import WhisperTokenizer

    chars = _byte_chars()
    vocab = {c: i for i, c in enumerate(chars)}
    merges: list[tuple[str, str]] = []
    for a in chars:
        for b in chars:
            merges.append((a, b))
            vocab[a + b] = len(vocab)
    base = WHISPER_VOCAB - 1 - len(whisper_specials()) - TIMESTAMPS
    for a in chars:
        for b in chars:
            for c in chars:
                if len(vocab) >= base:
                    break
                merges.append((a + b, c))
                vocab[a + b + c] = len(vocab)
    tok = WhisperTokenizer(
        vocab=vocab, merges=merges, extra_special_tokens=whisper_specials(), model_max_length=448
    )
    tok.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)])
    if len(tok) != WHISPER_VOCAB:
        raise RuntimeError(f"tokenizer has {len(tok)} tokens, not {WHISPER_VOCAB}")
    return tok


def whisper_languages() -> list[str]:
    """whisper-base's 99 languages (transformers also lists large-v3's Cantonese)."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return [code for code in LANGUAGES if code != "yue"]


def whisper_specials() -> list[str]:
    """The special tokens after <|endoftext|>, in whisper-base's order."""
    return whisper_special_tokens(whisper_languages())[1:]


def build_whisper(folder: Path) -> None:
    """WhisperForConditionalGeneration with whisper-base's sizes, random weights."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    tok = whisper_tokenizer()
    ids = tok.convert_tokens_to_ids
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    config = WhisperConfig(
        vocab_size=WHISPER_VOCAB,
        num_mel_bins=80,
        d_model=512,
        encoder_layers=6,
        decoder_layers=6,
        encoder_attention_heads=8,
        decoder_attention_heads=8,
        encoder_ffn_dim=2048,
        decoder_ffn_dim=2048,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
    )
    generation = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        is_multilingual=True,
        lang_to_id={f"<|{c}|>": ids(f"<|{c}|>") for c in whisper_languages()},
        task_to_id={"translate": ids("<|translate|>"), "transcribe": ids("<|transcribe|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50,
        max_length=448,
        begin_suppress_tokens=[ids("Ġ"), eot],
        suppress_tokens=[ids(t) for t in whisper_specials()],
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = generation
    _save(model, WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tok), folder)


def _save(model: Any, processor: Any, folder: Path) -> None:
    tmp = folder.with_name(folder.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def load_models(max_new_tokens: int, log: Callable[[str], None]) -> tuple[Any, Any]:
    from mmsearch.encoders.av_registry import load_audio_encoder, load_recognizer

    for folder, build in ((CLAP_FOLDER, build_clap), (WHISPER_FOLDER, build_whisper)):
        if not folder.is_dir():
            log(f"building {folder.name} ...")
            build(folder)
    clap = load_audio_encoder(str(CLAP_FOLDER), device="cpu")
    whisper = load_recognizer(str(WHISPER_FOLDER), device="cpu", max_new_tokens=max_new_tokens)
    return clap, whisper


# ------------------------------------------------------------------------------ measurements


def decode(path: Path, rate: int, chunk_s: float) -> tuple[Clock, list[tuple[float, Any]]]:
    """Time to decode and resample the whole file into ingest's chunks; the chunks."""
    from mmsearch.media.audio import AudioChunks

    with Clock() as clock:
        chunks = list(AudioChunks(path, sample_rate=rate, chunk_seconds=chunk_s))
    return clock, chunks


def clap_windows(clap: Any, chunks: list[tuple[float, Any]]) -> list[Any]:
    from mmsearch.media.audio import windows

    window = float(clap.window_seconds)
    return [
        w[2]
        for w in windows(chunks, sample_rate=clap.sample_rate, window_s=window, hop_s=window / 2)
    ]


def clap_embed(clap: Any, wins: list[Any]) -> Clock:
    """Time to embed the windows as ingest does (batches of 8, feature extraction included)."""
    with Clock() as clock:
        for i in range(0, len(wins), AUDIO_BATCH):
            clap.encode_audio(wins[i : i + AUDIO_BATCH])
    return clock


def clap_features(clap: Any, wins: list[Any]) -> Clock:
    """Time of the feature extractor alone (log-mel of each window)."""
    pre = clap.audio_preprocessor()
    with Clock() as clock:
        for w in wins:
            pre(w)
    return clock


class DecodeCount:
    """Counts, per ``decode_chunks`` call of the recogniser, the windows, the encoder passes, the
    decoder steps (forward calls) and the tokens returned."""

    def __init__(self, recognizer: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self._encoder = self._decoder = 0
        inner = recognizer.model.model
        inner.encoder.register_forward_hook(lambda *_: self._bump("_encoder"))
        inner.decoder.register_forward_hook(lambda *_: self._bump("_decoder"))
        original = recognizer.decode_chunks
        eot = int(recognizer.model.generation_config.eos_token_id)

        rate = int(recognizer.sample_rate)

        def counted(chunks: Any, language: Any) -> list[list[int]]:
            self._encoder = self._decoder = 0
            out: list[list[int]] = original(chunks, language)
            self.calls.append(
                {
                    "windows": len(out),
                    "seconds": [len(c) / rate for c in chunks],
                    "encoder": self._encoder,
                    "decoder": self._decoder,
                    "tokens": [len(ids) for ids in out],
                    "ended": sum(eot in ids for ids in out),
                }
            )
            return out

        recognizer.decode_chunks = counted

    def _bump(self, name: str) -> None:
        setattr(self, name, getattr(self, name) + 1)


class Spent:
    """Adds up the wall and CPU time spent in one method of one object while installed."""

    def __init__(self, obj: Any, method: str) -> None:
        self.clock = Clock()
        self.calls = 0
        self._obj, self._method = obj, method
        self._original = getattr(obj, method)

    def __enter__(self) -> Spent:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with Clock() as one:
                out = self._original(*args, **kwargs)
            self.clock.wall += one.wall
            self.clock.cpu += one.cpu
            self.calls += 1
            return out

        setattr(self._obj, self._method, timed)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(self._obj, self._method, self._original)


def transcribe(whisper: Any, samples: Any, threads: int | None = None) -> Clock:
    """Time of one ``transcribe`` call (several windows: the recogniser batches them), with
    ``threads`` torch threads if given."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with Clock() as clock:
            whisper.transcribe(samples)
    finally:
        torch.set_num_threads(before)
    return clock


def whole(
    clip: Any, clap: Any, whisper: Any, folder: Path
) -> tuple[Clock, dict[str, int], dict[str, Clock]]:
    """Time of ``Library.add([folder])`` with both models into a fresh library; segments stored;
    the time spent inside CLAP, Whisper and the CLIP text tower during it."""
    from mmsearch.library import Library

    with tempfile.TemporaryDirectory(prefix="mmsearch-bench-lib-") as tmp:
        lib = Library.open(Path(tmp) / "lib", encoder=clip, audio_encoder=clap, recognizer=whisper)
        try:
            with (
                Spent(clap, "encode_audio") as in_clap,
                Spent(whisper, "transcribe") as in_whisper,
                Spent(clip, "encode_text") as in_text,
                Clock() as clock,
            ):
                report = lib.add([folder])
            kinds = stored_segments(lib, report, "recording")
        finally:
            lib.close()
    inside = {"clap": in_clap.clock, "whisper": in_whisper.clock, "text": in_text.clock}
    return clock, kinds, inside


def run(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    seconds = args.minutes * 60
    path = CACHE / f"recording-{args.minutes:g}min.m4a"
    if not path.exists():
        log(f"generating {path} ...")
        make_recording(path, seconds)
    media = CACHE / f"recording-{args.minutes:g}min"  # a folder holding only the recording
    media.mkdir(exist_ok=True)
    if not (media / path.name).exists():
        (media / path.name).symlink_to(path.resolve())
    clip = clip_encoder(16)
    clap, whisper = load_models(args.max_new_tokens, log)
    res: dict[str, Any] = {"load_before": loadavg(), "path": path}
    _, chunks48 = decode(path, clap.sample_rate, max(30.0, clap.window_seconds))
    _, chunks16 = decode(path, whisper.sample_rate, 30.0)
    res["duration"] = sum(len(s) for _, s in chunks16) / whisper.sample_rate
    wins = clap_windows(clap, chunks48)
    res["windows"] = len(wins)
    clap_embed(clap, wins[:AUDIO_BATCH])  # warm-up
    whisper.transcribe(chunks16[0][1][: 5 * whisper.sample_rate])  # warm-up
    counter = DecodeCount(whisper)
    stored: dict[str, Any] = {}
    inside: dict[str, list[Clock]] = {"clap": [], "whisper": [], "text": []}

    whole_windows: list[int] = []

    def whole_job() -> Clock:
        before = len(counter.calls)
        clock, stored["segments"], spent = whole(clip, clap, whisper, media)
        for key, value in spent.items():
            inside[key].append(value)
        whole_windows.append(sum(c["windows"] for c in counter.calls[before:]))
        return clock

    jobs: dict[str, Job] = {
        "decode 48k": lambda: decode(path, clap.sample_rate, 30.0)[0],
        "decode 16k": lambda: decode(path, whisper.sample_rate, 30.0)[0],
        "clap features": lambda: clap_features(clap, wins),
        "whole": whole_job,
    }
    res["times"] = timed_rounds(jobs, args.rounds, log)
    if args.diagnostics:
        batch = np.concatenate([s for _, s in chunks16[:AUDIO_BATCH]])
        one = chunks16[min(1, len(chunks16) - 1)][1]
        diag: dict[str, Job] = {
            "batched": lambda: transcribe(whisper, batch),
            "1 thread": lambda: transcribe(whisper, one, threads=1),
            "2 threads": lambda: transcribe(whisper, one, threads=2),
        }
        res["diag"] = timed_rounds(diag, 1, log)
        res["diag_seconds"] = {
            "windows": len(chunks16[:AUDIO_BATCH]),
            "batched": len(batch) / whisper.sample_rate,
            "one": len(one) / whisper.sample_rate,
        }
    res["inside"] = inside
    res["whole_windows"] = whole_windows
    res["decode_calls"] = counter.calls
    res["stored"] = stored["segments"]
    res["load_after"] = loadavg()
    res["torch"] = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    return res


# ------------------------------------------------------------------------------ report


def report(res: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    m = machine()
    duration = res["duration"]
    times = res["times"]
    stored = res["stored"]
    lines = [
        "# Audio ingest: 10-minute recording, CLAP windows + Whisper-base transcripts (CPU)",
        "",
        f"- Date: {dt.date.today().isoformat()}",
        f"- Machine: {m['model']}, {m.get('cores', '?')} cores ({m['cpus']} CPUs), Linux; "
        f"{res['torch']}, Python {platform.python_version()}",
        f"- Command: `{command}`",
        f"- Input: {duration:.0f} s, AAC 128 kbit/s, 44.1 kHz stereo .m4a: espeak-ng speech "
        "(English, Mandarin) about half the time, tone sweeps, chords, noise, pauses.",
        "- CLAP: laion/clap-htsat-unfused sizes (HTSAT-tiny audio tower, RoBERTa-base text "
        "tower, projection 512), its feature extractor (48 kHz, 10 s windows), random weights; "
        f"windows of 10 s every 5 s, batches of {AUDIO_BATCH}: **{res['windows']} windows**.",
        "- Whisper: whisper-base sizes (d_model 512, 6+6 layers, 8 heads, 80 mels), tokenizer "
        "with the real 51865-token layout, random weights; greedy, timestamps on, language "
        f"detected per window, **max_new_tokens {args.max_new_tokens}**. "
        + whisper_work(res["decode_calls"], args.max_new_tokens),
        f"- Segments stored by `Library.add`: {stored.get('audio', 0)} audio windows, "
        f"{stored.get('transcript', 0)} transcript spans (embedded with the ViT-B/32 CLIP text "
        "tower of the library's image–text space).",
        f"- {args.rounds} round(s) after a warm-up; with more than one, medians (min–max). "
        "The CLAP, Whisper and text rows are the time spent in those calls during the "
        "`Library.add` runs. "
        "× real time = seconds of audio / wall-clock seconds. CPU cores used = CPU seconds of "
        "this process (all threads) / wall seconds: 2.00 would be both cores, less means other "
        "jobs held them. Media s per CPU s = seconds of audio per CPU second: about what one "
        "core of its own would do (conservative: contention also makes each CPU second do "
        "less).",
        f"- The 2 CPUs are shared with other jobs: load average (1/5/15 min) before "
        f"{res['load_before']}, after {res['load_after']}.",
        "",
        *HEADER,
    ]
    inside = res["inside"]
    rest = [
        Clock(w.wall - sum(v.wall for v in parts), w.cpu - sum(v.cpu for v in parts))
        for w, *parts in zip(
            times["whole"], inside["clap"], inside["whisper"], inside["text"], strict=True
        )
    ]
    lines += [
        row(
            "decode + resample to 48 kHz mono (`AudioChunks`, for CLAP), alone",
            duration,
            times["decode 48k"],
        ),
        row(
            "decode + resample to 16 kHz mono (`AudioChunks`, for Whisper), alone",
            duration,
            times["decode 16k"],
        ),
        row(
            "CLAP feature extraction alone (log-mel of each window)",
            duration,
            times["clap features"],
        ),
        row(
            f"CLAP: {res['windows']} windows through `encode_audio` (features + model), "
            "inside `Library.add`",
            duration,
            inside["clap"],
        ),
        row(
            "Whisper: `transcribe` of each 30 s chunk (ingest's calls, one window each), "
            "inside `Library.add`",
            duration,
            inside["whisper"],
        ),
        row(
            "transcript spans through the CLIP text tower, inside `Library.add`",
            duration,
            inside["text"],
        ),
        row(
            "the rest of `Library.add` (decoding twice, windows, catalog commit, index save)",
            duration,
            rest,
        ),
        row("**whole: `Library.add`** with CLAP and Whisper", duration, times["whole"]),
    ]
    if "diag" in res:
        lines += diagnostics(res, inside["whisper"], duration)
    return "\n".join(lines) + "\n"


def diagnostics(res: dict[str, Any], in_whisper: list[Clock], duration: float) -> list[str]:
    """Whisper batched vs ingest's one window per call; one window at 1 and 2 torch threads."""
    diag, secs = res["diag"], res["diag_seconds"]
    windows = res["whole_windows"]
    per_window = statistics.median(
        c.wall / max(1, n) for c, n in zip(in_whisper, windows, strict=True)
    )
    return [
        "",
        "Whisper diagnostics (one run each, same process):",
        "",
        *HEADER,
        row(
            f"{secs['batched']:.0f} s ({secs['windows']} windows) in one `transcribe` call: one "
            f"`generate` on a batch of {secs['windows']}",
            secs["batched"],
            diag["batched"],
        ),
        row("one 30 s window, 1 torch thread", secs["one"], diag["1 thread"]),
        row("one 30 s window, 2 torch threads", secs["one"], diag["2 threads"]),
        "",
        f"Inside `Library.add`, Whisper spent {per_window:.1f} s per window "
        f"({30 / per_window:.1f}× real time for a full window; {duration:.0f} s of sound took "
        f"{windows[0]} windows).",
    ]


def whisper_work(calls: list[dict[str, Any]], cap: int) -> str:
    """What decoding one 30 s window cost, from ingest's one-window calls."""
    single = [c for c in calls if c["windows"] == 1]
    if not single:
        return ""
    steps = [c["decoder"] for c in single]
    passes = [c["encoder"] for c in single]
    tokens = [t for c in single for t in c["tokens"]]
    ended = sum(c["ended"] for c in single)
    short = [t for c in single for t in c["seconds"] if t < 1.0]
    tail = (
        f" {len(short)} of these windows held less than 1 s of sound "
        f"({', '.join(f'{t * 1000:.0f} ms' for t in short)}: the AAC padding past the end of the "
        "recording) and cost a full window's decoding."
        if short
        else ""
    )
    return (
        f"Per 30 s window ({len(single)} one-window calls): encoder passes "
        f"{_spread_int(passes)} (language detection included), decoder steps "
        f"{_spread_int(steps)}, tokens returned {_spread_int(tokens)}; "
        f"{ended} window(s) ended by <|endoftext|>. The cap bounds each decoding pass, not "
        "the window: when a pass stops inside a segment, transformers' sequential algorithm "
        "decodes again from the last complete segment's timestamp (encoder included) until the "
        f"timestamps reach the window's end. Random weights do not stop on their own, so every "
        f"pass runs to the cap: **a worst case for a cap of {cap}**; dense real speech needs "
        "about 100–150 tokens per 30 s, silence far fewer." + tail
    )


def _spread_int(values: list[int]) -> str:
    if not values:
        return "n/a"
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}–{hi} (median {statistics.median(values):g})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (default: torch's own choice)"
    )
    parser.add_argument(
        "--no-diagnostics",
        dest="diagnostics",
        action="store_false",
        help="skip the Whisper batching and thread rows",
    )
    parser.add_argument("--out", default=str(RESULTS))
    return run_and_report(parser, argv, "bench_audio_ingest.py", run, report)


if __name__ == "__main__":
    raise SystemExit(main())
