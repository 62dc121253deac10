"""Video decoding on real generated files: timing, shots, caps, rotation, formats, damage."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mmsearch.errors import DecodeError
from mmsearch.media.audio import probe_audio
from mmsearch.media.thumbs import make_thumbnail
from mmsearch.media.video import (
    NO_VIDEO_STREAM,
    NoVideoStreamError,
    SampledFrame,
    VideoFrames,
    has_video_stream,
    load_clip_frames,
    probe_video,
)

from media_gen import (
    frame_colour_at,
    make_audio,
    make_solid_video,
    make_video,
    scene_starts,
    write_video,
)

SCENES = [("red", 2.0), ("blue", 1.5), ((0, 200, 0), 2.5), ("white", 1.0)]
CUTS = scene_starts(SCENES)[1:]  # 2.0, 3.5, 6.0


def lower_colour(image: Image.Image) -> np.ndarray:
    """Median colour of the bottom half (the moving square stays in the top rows)."""
    arr = np.asarray(image)
    return np.median(arr[arr.shape[0] // 2 :].reshape(-1, 3), axis=0)


def close(
    a: np.ndarray | tuple[int, ...], b: np.ndarray | tuple[int, ...], tol: float = 12
) -> bool:
    return bool(np.abs(np.asarray(a, float) - np.asarray(b, float)).max() <= tol)


@pytest.fixture(scope="module")
def scenes_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("v") / "scenes.mp4", SCENES, fps=10)


# ----------------------------------------------------------------------------- timing and shots


def test_probe(scenes_mp4: Path) -> None:
    p = probe_video(scenes_mp4)
    assert p.duration == pytest.approx(7.0, abs=0.05)
    assert (p.width, p.height, p.rotation, p.codec) == (64, 48, 0, "h264")
    assert p.fps == pytest.approx(10.0)
    assert p.frames == 70
    assert not p.has_audio and p.subtitle_streams == 0


def test_known_colour_at_known_time_and_shots_at_cuts(scenes_mp4: Path) -> None:
    frames = VideoFrames(scenes_mp4, fps=1.0)
    got = list(frames)
    assert frames.warnings == []
    for f in got:
        assert isinstance(f, SampledFrame)
        assert f.image.mode == "RGB" and f.image.size == (64, 48)
        assert close(lower_colour(f.image), frame_colour_at(SCENES, f.t)), f.t
    shots = [f.t for f in got if f.shot_start]
    assert len(shots) == len(CUTS)  # the moving square never looks like a cut
    for cut, t in zip(CUTS, shots, strict=True):
        assert cut <= t <= cut + 0.1 + 1e-6  # within one frame interval (10 fps)
    uniform = [f.t for f in got if not f.shot_start]
    assert uniform[:2] == [0.0, 1.0]
    assert all(b - a >= 0.5 - 1e-6 for a, b in zip(uniform, uniform[1:], strict=False))
    assert frames.end_time == pytest.approx(7.0, abs=0.01)
    assert not got[0].shot_start


def test_no_shots_when_disabled_and_threshold_matters(scenes_mp4: Path) -> None:
    plain = list(VideoFrames(scenes_mp4, fps=1.0, shot_threshold=None))
    assert [f.t for f in plain] == pytest.approx([0, 1, 2, 3, 4, 5, 6])
    assert not any(f.shot_start for f in plain)
    strict = list(VideoFrames(scenes_mp4, fps=1.0, shot_threshold=1.0))  # scores are <= 1
    assert not any(f.shot_start for f in strict)


def test_min_shot_gap_and_clip_loader(tmp_path: Path) -> None:
    flicker = make_video(tmp_path / "f.mp4", [("red", 0.2), ("blue", 0.2)] * 5, fps=10)
    got = list(VideoFrames(flicker, fps=0.5, min_shot_gap=0.5))
    times = [f.t for f in got]
    assert all(b - a >= 0.5 - 1e-6 for a, b in zip(times, times[1:], strict=False))
    assert sum(f.shot_start for f in got) >= 2
    clip = load_clip_frames(flicker, fps=2.0)
    assert [f.t for f in clip] == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert not any(f.shot_start for f in clip)


def test_fps_and_max_frames_caps(tmp_path: Path) -> None:
    path = make_video(tmp_path / "20s.mp4", [("red", 10.0), ("blue", 10.0)], fps=10)
    dense = list(VideoFrames(path, fps=2.0, shot_threshold=None))
    assert [f.t for f in dense] == pytest.approx([i * 0.5 for i in range(40)])
    capped = VideoFrames(path, fps=2.0, max_frames=8)
    got = list(capped)
    assert len(got) == 8  # the interval stretched to 20/8 s; no budget left for the cut
    assert got[-1].t >= 17.4 and capped.interval == pytest.approx(2.5)
    assert capped.warnings == []
    limited = VideoFrames(path, fps=1.0, max_duration=4.5)
    assert [f.t for f in limited] == pytest.approx([0, 1, 2, 3, 4])
    assert limited.end_time <= 4.5


def test_ten_hour_video_yields_at_most_max_frames(tmp_path: Path) -> None:
    # Ten hours at one frame per 20 s (1,800 frames, generated in under a second):
    # sampling asks for 1 fps, i.e. 36,000 frames, and gets max_frames spread evenly.
    path = make_video(
        tmp_path / "10h.mp4",
        [("red", 5 * 3600.0), ("blue", 5 * 3600.0)],
        fps=0.05,
        size=(32, 32),
        moving_square=False,
    )
    frames = VideoFrames(path, fps=1.0, max_frames=100)
    assert frames.probe.duration == pytest.approx(36000, abs=20)
    got = list(frames)
    assert len(got) == 100
    times = np.array([f.t for f in got])
    assert times[0] == 0 and times[-1] >= 36000 - 2 * 360
    assert np.all(np.diff(times) >= 340)
    assert frames.frames_decoded == 1800


# ----------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    ("rotation", "top", "left"),
    [(0, None, "red"), (90, "red", None), (180, None, "blue"), (270, "blue", None)],
)
def test_rotation_comes_out_upright(
    tmp_path: Path, rotation: int, top: str | None, left: str | None
) -> None:
    stored = np.zeros((48, 64, 3), np.uint8)
    stored[:, :32] = (255, 0, 0)  # left half red, right half blue as stored
    stored[:, 32:] = (0, 0, 255)
    path = write_video(
        tmp_path / f"r{rotation}.mp4",
        [(0.0, stored), (0.1, stored)],
        size=(64, 48),
        rotation=rotation,
    )
    probe = probe_video(path)
    assert probe.rotation == rotation
    (first, _) = list(VideoFrames(path, fps=10))
    upright = (48, 64) if rotation in (90, 270) else (64, 48)
    assert (probe.width, probe.height) == upright
    assert first.image.size == upright
    arr = np.asarray(first.image).astype(int)
    w, h = first.image.size
    if top is not None:  # the stored left half ends up on top (90 cw) or bottom (270 cw)
        want_top = (255, 0, 0) if top == "red" else (0, 0, 255)
        assert close(arr[h // 4, w // 2], want_top, 20)
    else:
        want_left = (255, 0, 0) if left == "red" else (0, 0, 255)
        assert close(arr[h // 2, w // 4], want_left, 20)


def test_variable_frame_rate_uses_timestamps(tmp_path: Path) -> None:
    times = [0.0, 0.1, 0.15, 0.9, 1.0, 2.5, 2.6, 4.0]
    colours = [(i * 30, 255 - i * 30, 60) for i in range(len(times))]
    frames = [(t, np.full((48, 64, 3), c, np.uint8)) for t, c in zip(times, colours, strict=True)]
    path = write_video(tmp_path / "vfr.mp4", frames, size=(64, 48), fps=10)
    got = list(VideoFrames(path, fps=1.0, shot_threshold=None))
    assert [f.t for f in got] == pytest.approx([0.0, 1.0, 2.5, 4.0])
    for f in got:
        assert close(lower_colour(f.image), colours[times.index(round(f.t, 2))])


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "size", "suffix"),
    [
        ("libx264", "yuv444p", (64, 48), ".mp4"),
        ("libx264", "yuv422p10le", (64, 48), ".mkv"),
        ("libx264", "yuvj420p", (64, 48), ".mp4"),
        ("libx264", "gray", (64, 48), ".mp4"),
        ("libx264rgb", "rgb24", (64, 48), ".mkv"),
        ("mpeg4", "yuv420p", (64, 48), ".avi"),
        ("libx264", "yuv444p", (641, 361), ".mov"),  # 4:2:0 H.264 needs even sizes
        ("ffv1", "yuv420p", (33, 17), ".mkv"),
    ],
)
def test_pixel_formats_and_odd_sizes(
    tmp_path: Path, codec: str, pix_fmt: str, size: tuple[int, int], suffix: str
) -> None:
    scenes = [("red", 1.0), ("blue", 1.0)]
    path = make_video(tmp_path / f"v{suffix}", scenes, codec=codec, pix_fmt=pix_fmt, size=size)
    frames = VideoFrames(path, fps=2.0, max_side=512)
    got = list(frames)
    assert len(got) == 4 and frames.warnings == []
    longer = max(size)
    want = size if longer <= 512 else (512, round(size[1] * 512 / longer))
    assert all(f.image.size == want for f in got)  # scaled down, never up
    assert [f.shot_start for f in got] == [False, False, True, False]
    for f in got:
        expected = frame_colour_at(scenes, f.t)
        if pix_fmt == "gray":  # only brightness survives: red is brighter than blue
            luma = float(np.mean(lower_colour(f.image)))
            assert (luma > 40) == (expected == (255, 0, 0)) and luma < 90
        else:
            assert close(lower_colour(f.image), expected), (f.t, lower_colour(f.image))


def test_8k_frames_are_scaled_during_conversion(tmp_path: Path) -> None:
    path = make_solid_video(tmp_path / "8k.mp4", ["red", "blue"], size=(7680, 4320))
    frames = VideoFrames(path, max_side=256)
    assert (frames.probe.width, frames.probe.height) == (7680, 4320)
    got = list(frames)
    assert [f.image.size for f in got] == [(256, 144), (256, 144)]
    assert close(lower_colour(got[0].image), (255, 0, 0))
    assert close(lower_colour(got[1].image), (0, 0, 255))
    assert got[1].shot_start


def test_thumbnail_of_a_frame(scenes_mp4: Path) -> None:
    frame = next(iter(VideoFrames(scenes_mp4, max_side=512)))
    big = frame.image.resize((640, 480))
    data = make_thumbnail(big, max_side=320, quality=80)
    thumb = Image.open(io.BytesIO(data))
    assert thumb.format == "JPEG" and thumb.size == (320, 240)
    assert close(lower_colour(thumb.convert("RGB")), (255, 0, 0))
    small = Image.open(io.BytesIO(make_thumbnail(frame.image)))
    assert small.size == (64, 48)  # never enlarged
    rgba = Image.new("RGBA", (10, 5), (0, 0, 0, 0))
    flat = Image.open(io.BytesIO(make_thumbnail(rgba))).convert("RGB")
    assert close(flat.getpixel((5, 2)), (255, 255, 255))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- bad input


def test_truncated_mp4_names_the_missing_index(scenes_mp4: Path, tmp_path: Path) -> None:
    data = scenes_mp4.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the 'moov' index is written last
    with pytest.raises(DecodeError, match="truncated MP4.*moov"):
        probe_video(cut)
    with pytest.raises(DecodeError, match="truncated MP4"):
        VideoFrames(cut)


def test_empty_garbage_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DecodeError, match="empty file"):
        probe_video(empty)
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(DecodeError, match="not a media file"):
        VideoFrames(junk)
    with pytest.raises(DecodeError, match="no such file"):
        probe_video(tmp_path / "missing.mp4")


def test_zero_duration_and_single_frame(tmp_path: Path) -> None:
    header_only = tmp_path / "zero.mkv"
    with av.open(str(header_only), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height = 64, 48
        out.start_encoding()
    with pytest.raises(DecodeError, match="no media data"):
        probe_video(header_only)
    one = write_video(
        tmp_path / "one.mp4", [(0.0, np.full((48, 64, 3), 200, np.uint8))], size=(64, 48)
    )
    frames = VideoFrames(one)
    assert [f.t for f in frames] == [0.0]
    assert frames.end_time == pytest.approx(0.1)


def test_no_video_stream_is_distinguishable(tmp_path: Path) -> None:
    sound = make_audio(tmp_path / "song.m4a", [(440.0, 1.0)])
    disguised = tmp_path / "song.mp4"
    disguised.write_bytes(sound.read_bytes())  # an .mp4 holding only sound
    with pytest.raises(NoVideoStreamError) as info:
        probe_video(disguised)
    assert isinstance(info.value, DecodeError) and info.value.reason == NO_VIDEO_STREAM
    assert has_video_stream(disguised) is False
    assert probe_audio(disguised).codec == "aac"  # ingest falls back to audio


def test_album_art_is_not_video(tmp_path: Path) -> None:
    import subprocess

    song = make_audio(tmp_path / "plain.mp3", [(440.0, 1.0)])
    cover = tmp_path / "cover.png"
    Image.new("RGB", (32, 32), (255, 0, 0)).save(cover)
    tagged = tmp_path / "tagged.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(song), "-i", str(cover)]
        + ["-map", "0", "-map", "1", "-c", "copy", "-disposition:v", "attached_pic", str(tagged)],
        check=True,
    )
    with av.open(str(tagged)) as c:
        assert len(c.streams.video) == 1  # FFmpeg sees a picture stream...
    assert has_video_stream(tagged) is False  # ...which is not video
    with pytest.raises(NoVideoStreamError):
        probe_video(tagged)


def _damage_middle(src: Path, dst: Path, fraction: float = 0.05) -> None:
    data = bytearray(src.read_bytes())
    n = int(len(data) * fraction)
    mid = len(data) // 2
    data[mid : mid + n] = np.random.default_rng(7).integers(0, 256, n, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("codec", "suffix"), [("libx264", ".mp4"), ("mpeg4", ".avi"), ("libx264", ".mkv")]
)
def test_corrupt_middle_keeps_frames_and_warns(tmp_path: Path, codec: str, suffix: str) -> None:
    rng = np.random.default_rng(3)
    noisy = [(i / 10, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) for i in range(100)]
    good = write_video(tmp_path / f"good{suffix}", noisy, size=(64, 48), codec=codec, gop=10)
    bad = tmp_path / f"bad{suffix}"
    _damage_middle(good, bad)
    frames = VideoFrames(bad, fps=10, shot_threshold=None)
    got = list(frames)  # no exception
    assert 10 <= len(got) < 100 or frames.warnings
    if suffix != ".mkv":  # Matroska resyncs at the next cluster without an error
        assert frames.warnings, "damage must be reported"
    assert got[0].t == 0.0
    assert all(b.t > a.t for a, b in zip(got, got[1:], strict=False))


def test_video_with_sound_and_subtitles_probe(tmp_path: Path) -> None:
    path = make_video(
        tmp_path / "full.mp4",
        [("red", 1.0)],
        audio=[(440.0, 1.0)],
        subtitles=[(0.1, 0.5, "hello")],
    )
    probe = probe_video(path)
    assert probe.has_audio and probe.subtitle_streams == 1
    assert has_video_stream(path)
