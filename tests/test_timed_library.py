"""Video and audio end to end: moments at the right time, subtitles, sound, speech, bad input.

All media are generated here (coloured-scene videos, tones, espeak-ng speech); the
image–text space uses the exact colour encoder, the audio space the exact tone
encoder (tests/fakes.py), so every expected time range can be asserted.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mmsearch.cli.output import format_hits
from mmsearch.errors import QueryError
from mmsearch.ingest.pipeline import IngestOptions
from mmsearch.ingest.timed import TimedOptions
from mmsearch.library import Library

from fakes import ColourEncoder, ScriptRecognizer, ToneEncoder
from media_gen import make_audio, make_speech, make_video, write_srt

SCENES = [("red", 3.0), ("green", 3.0), ("blue", 3.0)]


def _open(lib: Path, **kw) -> Library:  # type: ignore[no-untyped-def]
    return Library.open(lib, encoder=ColourEncoder(), **kw)


def _moment(hit):  # type: ignore[no-untyped-def]
    seg = hit.segments[0]
    return seg.t_start, seg.t_end


def test_text_finds_the_video_moment_and_cli_prints_it(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    make_video(tmp_path / "media" / "clip.mp4", SCENES)
    with _open(tmp_path / "lib") as lib:
        report = lib.add([tmp_path / "media"])
        assert report.added == 1, report.to_dict()
        hits = lib.search("green", k=3)
        assert hits[0].path.endswith("clip.mp4")
        t0, t1 = _moment(hits[0])
        assert abs(t0 - 3.0) <= 0.11 and abs(t1 - 6.0) <= 0.11
        assert hits[0].segments[0].kind == "frame"
        assert "clip.mp4 @ 00:00:03–00:00:06" in format_hits(hits)
        blue = lib.search("blue", k=1)[0]
        assert abs(_moment(blue)[0] - 6.0) <= 0.11
        # Near-identical neighbouring frames merged: one frame segment per scene.
        segs = lib.catalog.item_segments(hits[0].item_id)
        frames = [s for s in segs if s.kind == "frame"]
        assert len(frames) == 3, [(s.t_start, s.t_end) for s in frames]
        # Keyframe thumbnails are kept for display.
        jpeg = lib.thumbnail(frames[1].id)
        assert jpeg is not None and jpeg[:2] == b"\xff\xd8"
        with Image.open(io.BytesIO(jpeg)) as im:
            assert im.getpixel((im.width // 2, im.height - 2))[1] > 120  # green
        # The whole video has a pooled vector of its own.
        whole = lib.search("green", modality="video", k=1)
        assert whole[0].path.endswith("clip.mp4") and whole[0].segments[0].kind == "video"
        info = lib.info()
        assert info["items_by_modality"] == {"video": 1}


def test_image_query_of_a_known_frame_finds_its_moment(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    scenes = [("red", 2.0), ("yellow", 2.0), ("purple", 2.0), ("orange", 2.0)]
    make_video(media / "long.mkv", scenes, fps=8)
    with av.open(str(media / "long.mkv")) as c:
        frame = next(f for f in c.decode(video=0) if f.time is not None and f.time >= 4.5)
        query = tmp_path / "query.png"
        frame.to_image().save(query)
    with _open(tmp_path / "lib") as lib:
        lib.add([media])
        hit = lib.search(image=query, k=1)[0]
        assert hit.path.endswith("long.mkv")
        t0, t1 = _moment(hit)
        assert abs(t0 - 4.0) <= 0.13 and abs(t1 - 6.0) <= 0.13


def test_subtitles_sidecar_and_stream_are_found_at_their_time(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "talk.mp4", SCENES)
    write_srt(
        media / "talk.srt",
        [(1.0, 2.5, "Welcome to the show"), (4.0, 5.5, "The cat sat on the mat")],
    )
    make_video(media / "inner.mp4", SCENES, subtitles=[(7.0, 8.0, "a purple balloon drifts away")])
    with _open(tmp_path / "lib") as lib:
        lib.add([media])
        assert not lib.failures()
        lexical = lib.search("cat sat", mode="lexical", k=3)
        assert lexical[0].path.endswith("talk.mp4")
        seg = lexical[0].segments[0]
        assert seg.kind == "subtitle" and seg.text == "The cat sat on the mat"
        assert (seg.t_start, seg.t_end) == pytest.approx((4.0, 5.5), abs=0.01)
        # Semantic search over subtitle text (the colour encoder knows "purple").
        semantic = lib.search("purple", modality="text", k=3)
        assert semantic[0].path.endswith("inner.mp4")
        assert semantic[0].segments[0].t_start == pytest.approx(7.0, abs=0.01)
        # Hybrid: the lexical match and the vector matches fuse into one ranking.
        hybrid = lib.search("balloon", mode="hybrid", k=3)
        assert hybrid[0].path.endswith("inner.mp4") and "rrf" in hybrid[0].signals
        # The .srt sidecar belongs to the video: it is not an item of its own.
        assert lib.info()["items"] == 2


def test_audio_windows_text_and_excerpt_queries(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_audio(media / "tones.flac", [(440.0, 4.0), ("silence", 2.0), (880.0, 4.0)])
    make_audio(media / "other.ogg", [(1320.0, 3.0), ("noise", 3.0)])
    with _open(tmp_path / "lib", audio_encoder=ToneEncoder()) as lib:
        report = lib.add([media])
        assert report.added == 2, report.to_dict()
        hit = lib.search("a tone of 880 Hz", k=2)[0]
        assert hit.path.endswith("tones.flac") and hit.modality == "audio"
        t0, t1 = _moment(hit)
        assert t0 >= 5.0 - 1e-6 and t1 <= 10.0 + 1e-6 and t1 - t0 >= 2.0
        # Query by an excerpt: the 440 Hz stretch, cut and re-encoded.
        excerpt = make_audio(tmp_path / "excerpt.wav", [(440.0, 2.0)])
        found = lib.search(audio=excerpt, k=2)
        assert found[0].path.endswith("tones.flac")
        t0, t1 = _moment(found[0])
        assert t1 <= 5.0 + 1e-6, (t0, t1)
        noise = lib.search(audio=make_audio(tmp_path / "n.wav", [("noise", 2.0)]), k=1)[0]
        assert noise.path.endswith("other.ogg") and _moment(noise)[0] >= 2.0 - 1e-6
        # Images cannot be searched in the audio space and the library has no image vectors.
        with pytest.raises(QueryError):
            lib.search(image=Image.new("RGB", (8, 8), "red"), modality="audio")


def test_video_sound_track_hits_point_at_the_video_moment(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "band.mp4", SCENES, audio=[(440.0, 5.0), (1760.0, 4.0)])
    with _open(tmp_path / "lib", audio_encoder=ToneEncoder()) as lib:
        lib.add([media])
        hit = lib.search("1760", modality="audio", k=1)[0]
        assert hit.path.endswith("band.mp4")
        t0, t1 = _moment(hit)
        assert t0 >= 4.0 - 1e-6 and t1 <= 9.5
        # A plain text query searches frames and sound together (rank-fused).
        both = lib.search("red 440", k=1)[0]
        assert both.path.endswith("band.mp4") and "rrf" in both.signals


def test_transcript_span_is_searchable_at_its_time(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    speech = make_speech(tmp_path / "speech.wav", "hello there", voice="en")
    with av.open(str(speech)) as c:
        rate = c.streams.audio[0].rate
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    pad = np.zeros(3 * rate, dtype=samples.dtype)
    full = np.concatenate([pad, samples, pad])
    from scipy.io import wavfile

    wavfile.write(media / "memo.wav", rate, full)
    spoken = len(samples) / rate
    recognizer = ScriptRecognizer(["meet me at the lighthouse at noon"])
    with _open(tmp_path / "lib", recognizer=recognizer, asr_model="test:script") as lib:
        report = lib.add([media])
        assert report.added == 1, report.to_dict()
        hit = lib.search("lighthouse", mode="lexical", k=1)[0]
        seg = hit.segments[0]
        assert seg.kind == "transcript" and "lighthouse" in (seg.text or "")
        assert abs(seg.t_start - 3.0) < 0.35 and abs(seg.t_end - (3.0 + spoken)) < 0.35
        assert lib.info()["asr_model"] == "test:script"


def test_audio_without_an_audio_model_is_reported_not_dropped(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_audio(media / "song.mp3", [(440.0, 2.0)])
    make_video(media / "ok.mp4", SCENES[:1])
    with _open(tmp_path / "lib") as lib:
        report = lib.add([media])
        assert report.added == 1
        (failure,) = report.failures
        assert failure.path.endswith("song.mp3")
        assert "--audio-model" in failure.reason


def test_bad_video_and_audio_never_crash_a_run(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    good = make_video(media / "good.mp4", SCENES)
    data = good.read_bytes()
    (media / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (media / "empty.mp4").write_bytes(b"")
    corrupt = bytearray(make_video(tmp_path / "c.avi", SCENES * 2, codec="mpeg4").read_bytes())
    mid = len(corrupt) // 2
    corrupt[mid : mid + 4000] = os.urandom(4000)
    (media / "corrupt.avi").write_bytes(bytes(corrupt))
    (media / "noise.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(64))
    with _open(tmp_path / "lib", audio_encoder=ToneEncoder()) as lib:
        report = lib.add([media])
        reasons = {Path(f.path).name: f.reason for f in report.failures}
        assert set(reasons) >= {"truncated.mp4", "empty.mp4", "noise.wav"}, reasons
        assert all(r for r in reasons.values())
        assert "good.mp4" not in reasons
        names = {Path(h.path).name for h in lib.search("green", k=10)}
        assert "good.mp4" in names
        # Rerun: nothing redone, failures not retried.
        again = lib.add([media])
        assert again.added == 0 and again.updated == 0
        assert again.previously_failed == 2  # the empty file is re-reported by discovery
        assert [Path(f.path).name for f in again.failures] == ["empty.mp4"]
        # The damaged AVI is indexed from what decodes (the MPEG-4 decoder conceals the
        # damage here; a hard decode error keeps the frames before it, with a warning:
        # tests/test_media_video.py).
        corrupt_item = lib.catalog.item_by_path(str(media / "corrupt.avi"))
        assert corrupt_item is not None, reasons
        assert corrupt_item.meta["frames_sampled"] >= 1


def test_video_with_no_picture_is_indexed_as_sound(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_audio(tmp_path / "a.m4a", [(660.0, 3.0)])
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(tmp_path / "a.m4a"),
            "-c",
            "copy",
            str(media / "radio.mp4"),
        ],
        check=True,
    )
    with _open(tmp_path / "lib", audio_encoder=ToneEncoder()) as lib:
        report = lib.add([media])
        assert report.added == 1, report.to_dict()
        hit = lib.search("660", k=1)[0]
        assert hit.path.endswith("radio.mp4") and hit.modality == "audio"
        assert hit.metadata["item_modality"] == "audio"  # what it holds, not its container
        assert [h.path for h in lib.search("660", filters={"type": "audio"})] == [hit.path]


def test_cli_index_and_search_video_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmsearch.cli.main import main

    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "shapes.mp4", [("black", 2.0), ("white", 2.0)], size=(96, 64))
    lib = str(tmp_path / "lib")
    assert (
        main(
            [
                "index",
                str(media),
                "--library",
                lib,
                "--model",
                "builtin:demo",
                "--fps",
                "2",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 1
    assert (
        main(["search", "a white background", "--library", lib, "--json", "--type", "video"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    seg = out["hits"][0]["segments"][0]
    assert isinstance(seg["t_start"], float) and seg["t_end"] > seg["t_start"]
    assert main(["search", "--video", str(media / "shapes.mp4"), "--library", lib]) == 0
    assert "shapes.mp4 @ 00:00:0" in capsys.readouterr().out


def test_frame_options_cap_and_rate(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "v.mp4", [("red", 4.0), ("blue", 4.0)], moving_square=False)
    opts = IngestOptions(timed=TimedOptions(fps=2.0, max_frames=4, merge_threshold=1.01))
    with _open(tmp_path / "lib") as lib:
        lib.add([media], options=opts)
        (item,) = list(lib.catalog.iter_items())
        frames = [s for s in lib.catalog.item_segments(item.id) if s.kind == "frame"]
        assert 2 <= len(frames) <= 4  # the cap holds (shot boundaries count against it)
        assert item.meta["frames_sampled"] <= 4


def test_chinese_speech_transcript_and_short_lexical_terms(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_speech(media / "zh.wav", "今天天气很好，我们去海边散步吧", voice="cmn")
    import torch

    recognizer = ScriptRecognizer(["今天天气很好 我们去海边散步"])
    threads = torch.get_num_threads()
    opts = IngestOptions(threads=1, timed=TimedOptions(asr_language="zh"))
    with _open(tmp_path / "lib", recognizer=recognizer, asr_model="test:script") as lib:
        assert lib.add([media], options=opts).added == 1
        assert recognizer.languages == ["zh"]  # the known language reached the recogniser
        assert recognizer.threads_seen == [1]  # the model ran under the thread cap
        assert torch.get_num_threads() == threads  # the thread cap was undone
        for query in ("海边散步", "海边"):  # a trigram match, and a two-character term
            hits = lib.search(query, mode="lexical", k=1)
            assert hits and hits[0].path.endswith("zh.wav"), query
            assert hits[0].segments[0].kind == "transcript"


def test_ten_hour_video_and_audio_without_samples(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    # Ten hours at one frame a minute: cheap to make, long to the sampler.
    scenes = [("red", 5 * 3600.0), ("blue", 5 * 3600.0)]
    make_video(media / "ten_hours.mkv", scenes, fps=1 / 60, size=(32, 32), gop=10)
    from scipy.io import wavfile

    wavfile.write(media / "nothing.wav", 16000, np.zeros(0, np.int16))  # a header, no samples
    opts = IngestOptions(timed=TimedOptions(max_frames=300))
    with _open(tmp_path / "lib", audio_encoder=ToneEncoder()) as lib:
        report = lib.add([media], options=opts)
        assert report.added == 1, report.to_dict()
        (failure,) = report.failures
        assert failure.path.endswith("nothing.wav") and failure.reason
        (item,) = list(lib.catalog.iter_items())
        assert item.meta["frames_sampled"] <= 300
        assert item.meta["duration"] == pytest.approx(36000, rel=0.01)
        hit = lib.search("blue", k=1)[0]
        t0, _ = _moment(hit)
        assert 5 * 3600 - 200 <= t0 <= 5 * 3600 + 200


def test_read_ahead_passes_errors_and_stops_early() -> None:
    from mmsearch.ingest.timed import _read_ahead

    def boom():  # type: ignore[no-untyped-def]
        yield 1
        raise ValueError("decoder broke")

    got = []
    with pytest.raises(ValueError, match="decoder broke"):
        for x in _read_ahead(boom(), depth=1):
            got.append(x)
    assert got == [1]
    produced = []

    def endless():  # type: ignore[no-untyped-def]
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    for x in _read_ahead(endless(), depth=2):
        if x == 3:
            break
    assert len(produced) <= 3 + 2 + 2  # stopped, not run away
