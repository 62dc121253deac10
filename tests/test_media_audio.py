"""Audio decoding on real generated files: formats, resampling, windows, damage, empty tracks."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from mmsearch.errors import DecodeError
from mmsearch.media.audio import (
    NO_AUDIO_SAMPLES,
    AudioChunks,
    load_audio,
    probe_audio,
    windows,
)

from media_gen import make_audio, make_speech, make_video

PARTS = [(440.0, 1.0), ("silence", 0.5), ("noise", 0.5)]
RATE = 16000


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples))))


@pytest.mark.parametrize(
    ("suffix", "stored_rate", "channels", "codec"),
    [
        (".wav", 22050, 1, "pcm_s16le"),
        (".flac", 22050, 1, "flac"),
        (".mp3", 22050, 1, "mp3"),
        (".ogg", 22050, 2, "vorbis"),
        (".opus", 48000, 1, "opus"),  # Opus decodes at 48 kHz whatever it was fed
        (".m4a", 22050, 1, "aac"),
    ],
)
def test_formats_round_trip_with_resampling(
    tmp_path: Path, suffix: str, stored_rate: int, channels: int, codec: str
) -> None:
    path = make_audio(tmp_path / f"a{suffix}", PARTS, sample_rate=22050)
    chunks = AudioChunks(path, sample_rate=RATE, chunk_seconds=0.75)
    probe = chunks.probe
    assert (probe.sample_rate, probe.channels) == (stored_rate, channels)
    assert probe.codec.startswith(codec)
    assert probe.duration == pytest.approx(2.0, abs=0.06)
    got = list(chunks)
    assert chunks.warnings == []
    assert chunks.duration_decoded == pytest.approx(2.0, abs=0.06)
    starts = [t for t, _ in got]
    assert starts[:3] == pytest.approx([0.0, 0.75, 1.5])
    assert all(len(s) == 12000 for _, s in got[:-1])
    assert all(s.dtype == np.float32 and s.ndim == 1 for _, s in got)
    sound = np.concatenate([s for _, s in got])
    assert np.abs(sound).max() <= 1.0
    # Codec delays shift things by a few ms: look well inside each part.
    assert peak_hz(sound[int(0.1 * RATE) : int(0.9 * RATE)], RATE) == pytest.approx(440, abs=3)
    assert rms(sound[int(0.1 * RATE) : int(0.9 * RATE)]) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    assert rms(sound[int(1.15 * RATE) : int(1.4 * RATE)]) < 0.02
    assert rms(sound[int(1.6 * RATE) : int(1.9 * RATE)]) == pytest.approx(0.173, rel=0.25)


def test_sound_track_of_a_video(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", [("red", 2.0)], audio=[(300.0, 2.0)])
    probe = probe_audio(path)
    assert probe.codec == "aac" and probe.duration == pytest.approx(2.0, abs=0.1)
    sound = load_audio(path, sample_rate=8000)
    assert len(sound) == pytest.approx(16000, abs=1100)
    assert peak_hz(sound[800:12000], 8000) == pytest.approx(300, abs=3)


def test_speech_file_decodes(tmp_path: Path) -> None:
    path = make_speech(tmp_path / "hello.wav", "hello world")
    sound = load_audio(path, sample_rate=RATE)
    assert 0.3 * RATE < len(sound) < 5 * RATE
    assert rms(sound) > 0.01


def test_load_audio_caps_and_max_duration(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "long.flac", [(440.0, 5.0)])
    assert len(load_audio(path, sample_rate=RATE, max_seconds=2.0)) == 2 * RATE
    assert len(load_audio(path, sample_rate=8000, max_seconds=None)) == 5 * 8000
    chunks = AudioChunks(path, sample_rate=RATE, chunk_seconds=1.0, max_duration=2.5)
    assert [len(s) for _, s in chunks] == [RATE, RATE, RATE // 2]
    assert chunks.duration_decoded == 2.5


def _signal(seconds: float, rate: int) -> np.ndarray:
    return (np.arange(round(seconds * rate)) / rate).astype(np.float32)  # value == time


def _chunked(x: np.ndarray, sizes: list[int], rate: int) -> list[tuple[float, np.ndarray]]:
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out.append((i / rate, x[i : i + n]))
        i, k = i + n, k + 1
    return out


@pytest.mark.parametrize(
    ("seconds", "spans"),
    [
        (10.5, [(0, 4), (2, 6), (4, 8), (6, 10)]),  # the last 0.5 s is under min_s
        (11.2, [(0, 4), (2, 6), (4, 8), (6, 10), (8, 11.2)]),  # a final partial window
        (10.0, [(0, 4), (2, 6), (4, 8), (6, 10)]),  # nothing left uncovered
        (2.5, [(0, 2.5)]),  # shorter than one window
        (0.5, []),  # shorter than min_s
    ],
)
def test_windows_count_overlap_and_final_partial(
    seconds: float, spans: list[tuple[float, float]]
) -> None:
    rate = 100
    x = _signal(seconds, rate)
    chunks = _chunked(x, [37, 300, 5], rate)  # chunk sizes do not matter
    got = list(windows(chunks, sample_rate=rate, window_s=4, hop_s=2, min_s=1.0))
    assert [(a, b) for a, b, _ in got] == [pytest.approx(s) for s in spans]
    for a, b, w in got:
        assert len(w) == round((b - a) * rate)
        assert w[0] == pytest.approx(a) and w[-1] == pytest.approx(b - 1 / rate)


def test_windows_follow_a_hole_in_time() -> None:
    rate = 100
    first = (0.0, np.zeros(500, np.float32))  # 0-5 s
    second = (20.0, np.ones(300, np.float32))  # sound resumes at 20 s
    got = list(windows([first, second], sample_rate=rate, window_s=2, hop_s=2, min_s=0.5))
    assert [(a, b) for a, b, _ in got] == [(0, 2), (2, 4), (4, 5), (20, 22), (22, 23)]
    assert got[-1][2].min() == 1.0


def test_file_with_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=RATE)
        stream.layout = "mono"
        out.start_encoding()
    assert probe_audio(path).sample_rate == RATE
    with pytest.raises(DecodeError, match=NO_AUDIO_SAMPLES):
        load_audio(path, sample_rate=RATE)
    with pytest.raises(DecodeError, match=NO_AUDIO_SAMPLES):
        list(AudioChunks(path, sample_rate=RATE))


def test_no_audio_stream_empty_and_garbage(tmp_path: Path) -> None:
    silent_film = make_video(tmp_path / "v.mp4", [("red", 0.5)])
    with pytest.raises(DecodeError, match="no audio stream"):
        probe_audio(silent_film)
    empty = tmp_path / "e.mp3"
    empty.write_bytes(b"")
    with pytest.raises(DecodeError, match="empty file"):
        AudioChunks(empty, sample_rate=RATE)
    junk = tmp_path / "j.flac"
    junk.write_bytes(np.random.default_rng(5).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    # FFmpeg may take random bytes for some stream (MP3 sync words are easy to find by
    # chance); either way nothing decodes.
    with pytest.raises(DecodeError, match="not a media file|no audio samples"):
        load_audio(junk, sample_rate=RATE)


@pytest.mark.parametrize(
    ("suffix", "true_times"),
    # MP3 packets carry no timestamps of their own: a hole there cannot be seen in time.
    [(".mp3", False), (".flac", True), (".m4a", True), (".opus", True)],
)
def test_corrupt_middle_keeps_sound_and_warns(
    tmp_path: Path, suffix: str, true_times: bool
) -> None:
    good = make_audio(tmp_path / f"good{suffix}", [("noise", 6.0)])
    data = bytearray(good.read_bytes())
    n, mid = len(data) // 10, len(data) // 2
    data[mid : mid + n] = np.random.default_rng(1).integers(0, 256, n, dtype=np.uint8).tobytes()
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(bytes(data))
    chunks = AudioChunks(bad, sample_rate=RATE, chunk_seconds=1.0)
    got = list(chunks)  # no exception
    assert chunks.warnings
    assert 2.0 < chunks.duration_decoded < 6.0
    starts = [t for t, _ in got]
    assert starts == sorted(starts) and starts[0] == 0.0
    if true_times:  # times stay true after the hole: the last chunk ends near the real end
        last_t, last = got[-1]
        assert last_t + len(last) / RATE == pytest.approx(6.0, abs=0.3)
