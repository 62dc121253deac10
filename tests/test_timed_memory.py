"""Memory stays bounded: indexing a 60-minute video peaks within 20% of a 1-minute one.

Each ingest runs in a fresh subprocess (same settings, same encoder) and reports its
peak RSS; the videos are generated here at a small frame size so the test is quick.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from media_gen import make_audio, make_video

_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[3])
from fakes import ColourEncoder, ToneEncoder
from mmsearch.library import Library
with Library.open(sys.argv[1], encoder=ColourEncoder(), audio_encoder=ToneEncoder()) as lib:
    report = lib.add([sys.argv[2]])
    kinds = [s.kind for it in lib.catalog.iter_items() for s in lib.catalog.item_segments(it.id)]
# VmHWM is this process's own peak; ru_maxrss of a child can carry its parent's peak.
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({
    "rss_kb": int(hwm.split()[1]),
    "added": report.added, "failed": report.failed,
    "frames": kinds.count("frame"), "windows": kinds.count("audio"),
}))
"""


def _scenes(minutes: int) -> list[tuple[str, float]]:
    colours = ["red", "green", "blue", "yellow", "purple", "orange"]
    return [(colours[i % len(colours)], 20.0) for i in range(minutes * 3)]


def _ingest(tmp: Path, video: Path) -> dict:  # type: ignore[type-arg]
    tests = str(Path(__file__).parent)
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp / ("lib-" + video.stem)), str(video), tests],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _video_with_sound(path: Path, minutes: int) -> Path:
    """Pictures (H.264) and a PCM sound track in Matroska: quick to make at any length
    (FFmpeg's AAC encoder would take a minute for an hour of sound)."""
    path.parent.mkdir()
    pictures = make_video(path.with_name("pictures.mkv"), _scenes(minutes), fps=1, size=(48, 32))
    sound = make_audio(path.with_name("sound.wav"), [(440.0, 60.0 * minutes)])
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(pictures), "-i", str(sound), "-c", "copy", str(path)],
        check=True,
    )
    pictures.unlink()
    sound.unlink()
    return path


def test_peak_rss_of_a_60_minute_video_is_within_20_percent_of_1_minute(tmp_path: Path) -> None:
    short = _video_with_sound(tmp_path / "short" / "v1.mkv", 1)
    long = _video_with_sound(tmp_path / "long" / "v60.mkv", 60)
    a = _ingest(tmp_path, short.parent)
    b = _ingest(tmp_path, long.parent)
    assert a["added"] == 1 and b["added"] == 1, (a, b)
    # The long one really was decoded through, pictures and sound.
    assert b["frames"] > 10 * a["frames"] and b["windows"] > 30 * a["windows"] > 0, (a, b)
    print("peak RSS kB, 1 min vs 60 min:", a["rss_kb"], b["rss_kb"], a["frames"], b["frames"])
    assert b["rss_kb"] <= 1.2 * a["rss_kb"], (a["rss_kb"], b["rss_kb"])
