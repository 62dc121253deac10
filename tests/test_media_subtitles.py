"""Subtitles: SubRip/WebVTT parsing, encodings, sidecar naming and discovery, embedded streams."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmsearch.errors import DecodeError
from mmsearch.media.discover import Discovered, Skipped, discover
from mmsearch.media.subtitles import (
    Cue,
    clean_text,
    extract_subtitle_streams,
    parse_srt,
    parse_vtt,
    read_subtitle_file,
    subtitle_sidecars,
)

from media_gen import make_audio, make_video, write_srt, write_vtt

SRT = """1
00:00:01,000 --> 00:00:02,500
<i>Hello</i> there,
<b>General</b> Kenobi!

2
00:00:03,000 --> 00:00:04,000
{\\an8}Top of the screen

3
00:00:05,000 --> 00:0x:06,000
bad timestamp: skipped

4
00:00:07,000 --> 00:00:06,000
ends before it starts: skipped

5
00:00:08,250 --> 00:00:09,000
<font color="#ff0000">Fish &amp; chips</font>

6
01:02:03,4 --> 01:02:04,56
short fractions
"""

VTT = """WEBVTT - a title

NOTE this is a comment
with two lines

STYLE
::cue { color: yellow }

intro
00:01.000 --> 00:02.000 align:start position:10%
<v Roger Bingham>We are in New York City

00:00:03.500 --> 00:00:05.000
<c.loud>Karaoke</c> <00:00:04.000>timed <ruby>漢<rt>kan</rt></ruby>
"""


def test_parse_srt_cleans_and_skips_bad_cues() -> None:
    assert parse_srt(SRT) == [
        Cue(1.0, 2.5, "Hello there, General Kenobi!"),
        Cue(3.0, 4.0, "Top of the screen"),
        Cue(8.25, 9.0, "Fish & chips"),
        Cue(3723.4, 3724.56, "short fractions"),
    ]


def test_parse_vtt_settings_notes_voices_and_inline_timestamps() -> None:
    assert parse_vtt(VTT) == [
        Cue(1.0, 2.0, "We are in New York City"),
        Cue(3.5, 5.0, "Karaoke timed 漢kan"),
    ]
    no_blank = "WEBVTT\n00:00.500 --> 00:01.000\nright after the header\n"
    assert parse_vtt(no_blank) == [Cue(0.5, 1.0, "right after the header")]


def test_clean_text_ass_codes_and_breaks() -> None:
    assert clean_text("{\\i1}Hello{\\i0}\\Nworld{\\pos(10,20)}") == "Hello world"
    assert clean_text("a&nbsp;b  \n\n c") == "a b c"
    assert clean_text("2 < 3 and {curly} stays") == "2 < 3 and {curly} stays"


@pytest.mark.parametrize(
    ("encoding", "newline"),
    [("utf-8-sig", "\r\n"), ("utf-16", "\n"), ("gb18030", "\r\n"), ("cp1252", "\n")],
)
def test_read_subtitle_file_encodings_bom_and_line_endings(
    tmp_path: Path, encoding: str, newline: str
) -> None:
    text = (
        "1\n00:00:01,000 --> 00:00:02,000\nfirst line\nsecond\n\n2\n00:00:03,000 --> 00:00:04,000\n"
    )
    text += "你好，世界\n" if encoding in ("utf-8-sig", "utf-16", "gb18030") else "café\n"
    path = tmp_path / "clip.srt"
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    cues = read_subtitle_file(path)
    assert cues[0] == Cue(1.0, 2.0, "first line second")
    assert cues[1].text in ("你好，世界", "café")


def test_read_subtitle_file_formats(tmp_path: Path) -> None:
    cues = [(0.5, 1.5, "one"), (2.0, 3.25, "two\nlines")]
    srt = write_srt(tmp_path / "a.srt", cues)
    vtt = write_vtt(tmp_path / "a.vtt", cues)
    want = [Cue(0.5, 1.5, "one"), Cue(2.0, 3.25, "two lines")]
    assert read_subtitle_file(srt) == want
    assert read_subtitle_file(vtt) == want
    misnamed = tmp_path / "really_vtt.srt"
    misnamed.write_text(vtt.read_text())
    assert read_subtitle_file(misnamed) == want  # the WEBVTT header decides


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("bin.srt", bytes(range(256)) * 8, "binary"),
        ("prose.srt", b"just some text\nwith no timings\n", "no subtitle cues"),
        ("empty.vtt", b"", None),
    ],
)
def test_read_subtitle_file_refuses_garbage(
    tmp_path: Path, name: str, content: bytes, match: str | None
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DecodeError, match=match):
        read_subtitle_file(path)


def test_sidecar_naming() -> None:
    names = [
        "clip.mp4",
        "clip.srt",
        "clip.vtt",
        "clip.en.srt",
        "clip.zh-CN.vtt",
        "clip.en.forced.srt",
        "clip.SRT",
        "clip.txt",
        "clip2.srt",
        "clip.part2.mkv",
        "clip.part2.srt",  # belongs to clip.part2.mkv
        "clip.a.b.c.srt",  # too many tags to be a language
        "other.srt",
    ]
    assert subtitle_sidecars("clip.mp4", names) == [
        "clip.SRT",
        "clip.srt",
        "clip.vtt",
        "clip.en.forced.srt",
        "clip.en.srt",
        "clip.zh-CN.vtt",
    ]
    assert subtitle_sidecars("clip.part2.mkv", names) == ["clip.part2.srt"]
    assert subtitle_sidecars("other.webm", names) == ["other.srt"]
    assert subtitle_sidecars("none.mp4", names) == []


def test_discovery_attaches_subtitles_and_hides_them(tmp_path: Path) -> None:
    make_video(tmp_path / "clip.mp4", [("red", 0.3)])
    write_srt(tmp_path / "clip.srt", [(0.0, 0.2, "hi")])
    write_vtt(tmp_path / "clip.en.vtt", [(0.0, 0.2, "hi")])
    (tmp_path / "clip.fr.srt").write_text("")  # empty: not attached, not listed
    (tmp_path / "clip.json").write_text('{"title": "a clip"}')
    write_srt(tmp_path / "lonely.srt", [(0.0, 1.0, "no video for me")])
    make_audio(tmp_path / "song.mp3", [(440.0, 0.3)])
    (tmp_path / "song.json").write_text('{"artist": "me"}')
    found = list(discover([tmp_path]))
    by_name = {os.path.basename(d.path): d for d in found}
    assert sorted(by_name) == ["clip.mp4", "song.mp3"]  # subtitles are never items
    clip = by_name["clip.mp4"]
    assert isinstance(clip, Discovered) and clip.modality == "video"
    assert clip.subtitle_paths == (str(tmp_path / "clip.srt"), str(tmp_path / "clip.en.vtt"))
    assert clip.meta_path == str(tmp_path / "clip.json")
    song = by_name["song.mp3"]
    assert isinstance(song, Discovered) and song.modality == "audio"
    assert song.meta_path == str(tmp_path / "song.json") and song.subtitle_paths == ()
    # A video named on its own still finds its subtitles; a subtitle named alone is refused.
    (alone,) = discover([tmp_path / "clip.mp4"])
    assert isinstance(alone, Discovered) and len(alone.subtitle_paths) == 2
    assert list(discover([tmp_path / "lonely.srt"])) == [
        Skipped(str(tmp_path / "lonely.srt"), "unsupported file type (.srt)", "skipped")
    ]


CUES = [(0.5, 1.25, "Hello <i>world</i>\nsecond line"), (1.5, 1.9, "{\\an8}top & bottom")]
WANT = [Cue(0.5, 1.25, "Hello world second line"), Cue(1.5, 1.9, "top & bottom")]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_embedded_subtitle_streams(tmp_path: Path, suffix: str) -> None:
    path = make_video(tmp_path / f"s{suffix}", [("red", 2.0)], subtitles=CUES)
    assert extract_subtitle_streams(path) == WANT


def test_no_embedded_subtitles_and_bad_files(tmp_path: Path) -> None:
    assert extract_subtitle_streams(make_video(tmp_path / "v.mp4", [("red", 0.3)])) == []
    assert extract_subtitle_streams(make_audio(tmp_path / "a.wav", [(440.0, 0.3)])) == []
    empty = tmp_path / "e.mkv"
    empty.write_bytes(b"")
    with pytest.raises(DecodeError, match="empty file"):
        extract_subtitle_streams(empty)
