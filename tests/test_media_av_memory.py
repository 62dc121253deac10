"""Memory stays flat with length: a 60-minute video or recording peaks like a 1-minute one.

Each measurement runs in a fresh subprocess that iterates everything with the
same settings and prints its peak RSS in KiB: ``VmHWM`` from /proc (Linux keeps
``ru_maxrss`` across exec, so a child would report the pytest process's peak).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from media_gen import make_audio, make_video

PEAK = """
def peak_kib():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
"""

VIDEO_RUN = (
    PEAK
    + """
import sys
from mmsearch.media.video import VideoFrames
frames = VideoFrames(sys.argv[1], fps=1.0, max_frames=2000)
n = sum(1 for _ in frames)
print(n, frames.frames_decoded, peak_kib())
"""
)

AUDIO_RUN = (
    PEAK
    + """
import sys
from mmsearch.media.audio import AudioChunks, windows
chunks = AudioChunks(sys.argv[1], sample_rate=16000, chunk_seconds=30.0)
n = sum(1 for _ in windows(chunks, sample_rate=16000, window_s=10.0, hop_s=5.0))
print(n, round(chunks.duration_decoded), peak_kib())
"""
)


def run(script: str, path: Path) -> tuple[int, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], check=True, capture_output=True, text=True
    )
    count, amount, rss = (int(x) for x in out.stdout.split())
    return count, amount, rss


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("long")
    return {
        "video_1": make_video(root / "1min.mp4", [("red", 30.0), ("blue", 30.0)], fps=1),
        "video_60": make_video(root / "60min.mp4", [("red", 1800.0), ("blue", 1800.0)], fps=1),
        "audio_1": make_audio(
            root / "1min.wav", [(440.0, 30.0), ("noise", 30.0)], sample_rate=8000
        ),
        "audio_60": make_audio(
            root / "60min.wav", [(440.0, 1800.0), ("noise", 1800.0)], sample_rate=8000
        ),
    }


def test_video_memory_does_not_grow_with_length(media: dict[str, Path]) -> None:
    short = run(VIDEO_RUN, media["video_1"])
    long = run(VIDEO_RUN, media["video_60"])
    assert short[:2] == (60, 60)  # the cut at 30 s falls on a uniform sample
    assert long[:2] == (2000, 3600)  # capped by max_frames
    assert long[2] <= 1.2 * short[2], (short, long)


def test_audio_memory_does_not_grow_with_length(media: dict[str, Path]) -> None:
    short = run(AUDIO_RUN, media["audio_1"])
    long = run(AUDIO_RUN, media["audio_60"])
    assert short[:2] == (11, 60)
    assert long[:2] == (719, 3600)
    assert long[2] <= 1.2 * short[2], (short, long)
