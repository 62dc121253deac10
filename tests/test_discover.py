"""File discovery: what gets indexed, what is skipped and why, sidecars, symlinks, odd names."""

from __future__ import annotations

import builtins
import io
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mmsearch.errors import DecodeError
from mmsearch.media.discover import (
    Discovered,
    Skipped,
    discover,
    display_path,
    read_caption,
    read_sidecar_meta,
)
from mmsearch.media.probe import classify, sniff_modality


def png_bytes(color: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 0, 255)).save(buf, "JPEG")
    return buf.getvalue()


def put(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def run(*roots: Any, **kw: Any) -> list[Discovered | Skipped]:
    return list(discover([os.fspath(r) for r in roots], **kw))


def rel(items: list[Discovered | Skipped], root: Path) -> list[tuple[str, str]]:
    """(path relative to root, modality or 'skip: reason') for compact assertions."""
    out = []
    for it in items:
        r = os.path.relpath(it.path, root)
        out.append((r, it.modality if isinstance(it, Discovered) else f"skip: {it.reason}"))
    return out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    put(root / "a.jpg", jpeg_bytes())
    put(root / "a.txt", "a red square")
    put(root / "a.json", '{"album": "test"}')
    put(root / "notes.md", "# Notes\nsome text")
    put(root / "data.json", "[1, 2, 3]")
    put(root / "orphan.caption", "no image for me")
    put(root / "x.xyz", "what is this")
    put(root / "empty.png", b"")
    put(root / "movie.mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
    put(root / ".hidden.jpg", jpeg_bytes())
    put(root / ".git" / "c.png", png_bytes())
    put(root / "sub" / "b.png", png_bytes())
    put(root / "sub" / "b.png.txt", "caption for b")
    put(root / "sub" / "b.png.json", '{"k": 1}')
    put(root / "sub" / "b.txt", "loses to b.png.txt, but a sidecar name is never a text item")
    put(root / "sub" / "story.txt", "A story with no image next to it.")
    return root


def test_walk_tree_sidecars_hidden_and_skips(tree: Path) -> None:
    items = run(tree)
    assert rel(items, tree) == [
        (".git", "skip: hidden (name starts with a dot)"),
        (".hidden.jpg", "skip: hidden (name starts with a dot)"),
        ("a.jpg", "image"),
        ("empty.png", "skip: empty file"),
        ("movie.mp4", "video"),
        ("notes.md", "text"),
        ("x.xyz", "skip: unsupported file type (.xyz)"),
        ("sub/b.png", "image"),
        ("sub/story.txt", "text"),
    ]
    assert [it.kind for it in items if isinstance(it, Skipped)] == [
        "skipped",
        "skipped",
        "failed",
        "skipped",
    ]
    a = items[2]
    assert isinstance(a, Discovered)
    assert a.caption_path == str(tree / "a.txt")
    assert a.meta_path == str(tree / "a.json")
    assert a.size == (tree / "a.jpg").stat().st_size
    assert a.mtime == (tree / "a.jpg").stat().st_mtime
    b = items[7]
    assert isinstance(b, Discovered)
    assert b.caption_path == str(tree / "sub" / "b.png.txt")
    assert b.meta_path == str(tree / "sub" / "b.png.json")
    assert all(os.path.isabs(it.path) for it in items)
    assert run(tree) == items  # deterministic


def test_include_hidden(tree: Path) -> None:
    got = rel(run(tree, include_hidden=True), tree)
    assert (".hidden.jpg", "image") in got
    assert (".git/c.png", "image") in got


def test_caption_is_read_and_meta_parsed(tree: Path) -> None:
    assert read_caption(tree / "a.txt") == "a red square"
    assert read_caption(put(tree / "blank.txt", " \n\t\n")) == ""
    with pytest.raises(DecodeError, match="binary content"):
        read_caption(put(tree / "bin.txt", b"\x00\x01\x02\xff" * 10))
    assert read_sidecar_meta(tree / "a.json") == {"album": "test"}


def test_bad_metadata_sidecars(tmp_path: Path) -> None:
    bad = put(tmp_path / "bad.json", '{"a": 1,,}')
    with pytest.raises(DecodeError, match=r"invalid JSON in metadata sidecar \(line 1"):
        read_sidecar_meta(bad)
    lst = put(tmp_path / "list.json", "[1, 2]")
    with pytest.raises(DecodeError, match="must hold a JSON object"):
        read_sidecar_meta(lst)
    bom = put(tmp_path / "bom.json", b'\xef\xbb\xbf{"ok": true}')
    assert read_sidecar_meta(bom) == {"ok": True}


def test_file_roots_missing_roots_and_duplicates(tree: Path, tmp_path: Path) -> None:
    assert list(discover(str(tree / "a.jpg"))) == run(tree / "a.jpg")  # a bare root works too
    items = run(tree / "a.jpg", tmp_path / "missing", tree / "x.xyz")
    assert [type(i).__name__ for i in items] == ["Discovered", "Skipped", "Skipped"]
    assert isinstance(items[0], Discovered)
    assert items[0].caption_path == str(tree / "a.txt")  # sidecars found for a file root too
    assert items[1] == Skipped(str(tmp_path / "missing"), "no such file or directory")
    # The same folder twice, a nested folder, and a file inside a walked folder: listed once.
    once = run(tree)
    assert run(tree, tree / "sub", tree, tree / "notes.md") == once
    # A file named before its folder is listed first and not again with the folder.
    first = run(tree / "notes.md", tree)
    assert sorted(first, key=lambda i: i.path) == sorted(once, key=lambda i: i.path)
    assert first[0].path == str(tree / "notes.md")
    # A sidecar named explicitly is not silently dropped.
    assert run(tree / "data.json") == [
        Skipped(str(tree / "data.json"), "unsupported file type (.json)", "skipped")
    ]


def test_empty_caption_is_neither_attached_nor_reported(tmp_path: Path) -> None:
    put(tmp_path / "p.png", png_bytes())
    put(tmp_path / "p.png.txt", "")
    put(tmp_path / "p.txt", "the real caption")
    put(tmp_path / "p.json", "")
    (item,) = run(tmp_path)
    assert isinstance(item, Discovered)
    assert item.caption_path == str(tmp_path / "p.txt")
    assert item.meta_path is None


def test_magic_bytes_beat_the_extension(tmp_path: Path) -> None:
    put(tmp_path / "scan", png_bytes())  # no extension
    put(tmp_path / "photo.jpeg.bak", jpeg_bytes())
    put(tmp_path / "fake.jpg", "I am text pretending to be a JPEG")
    put(tmp_path / "report.txt", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    got = dict(rel(run(tmp_path), tmp_path))
    assert got["scan"] == "image"
    assert got["photo.jpeg.bak"] == "image"
    assert got["fake.jpg"] == "image"  # the decoder will say it is not an image
    assert got["report.txt"] == "skip: unsupported file type (.txt: PDF document)"


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("a.JPG", b"\xff\xd8\xff\xe0\x00\x10JFIF", ("image", None)),
        ("a.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ", ("image", None)),
        ("a.heic", b"\x00\x00\x00\x18ftypheic", ("image", None)),
        ("a.bmp", b"BM\x00\x00", ("image", None)),
        ("a.txt", b"BMW makes cars", ("text", None)),  # weak magic needs the extension
        ("a.txt", b"ID3 is a tag format", ("text", None)),
        ("a.mp3", b"ID3\x03\x00\x00\x00", ("audio", None)),
        ("a.mkv", b"\x1a\x45\xdf\xa3", ("video", None)),
        ("a.m4a", b"\x00\x00\x00\x20ftypM4A ", ("audio", None)),
        ("a.xyz", b"hello", (None, "unsupported file type (.xyz)")),
        ("README", b"hello", (None, "unsupported file type (no extension)")),
        ("a.png", b"", (None, "empty file")),
    ],
)
def test_classify(name: str, head: bytes, expected: tuple[str | None, str | None]) -> None:
    assert classify(name, head) == expected
    assert sniff_modality(name, head) == expected[0]


def test_symlink_loop_reported_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    put(root / "sub" / "p.png", png_bytes())
    os.symlink("..", root / "sub" / "loop")
    os.symlink("self", root / "self")  # a link to itself: the OS says ELOOP
    items = run(root)
    assert rel(items, root) == [
        ("self", "skip: symlink loop"),
        ("sub/p.png", "image"),
        ("sub/loop", "skip: symlink loop"),
    ]


def test_broken_symlink(tmp_path: Path) -> None:
    put(tmp_path / "ok.png", png_bytes())
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")
    assert rel(run(tmp_path), tmp_path) == [
        ("dangling.png", "skip: broken symlink"),
        ("ok.png", "image"),
    ]
    assert run(tmp_path / "dangling.png") == [
        Skipped(str(tmp_path / "dangling.png"), "broken symlink")
    ]


def test_symlinked_folders(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    put(outside / "o.png", png_bytes())
    root = tmp_path / "root"
    put(root / "real" / "r.png", png_bytes())
    os.symlink(outside, root / "a_out")  # sorts before "real"
    os.symlink(root / "real", root / "a_real")
    got = rel(run(root), root)
    # Links are not resolved in paths; a folder reachable both ways keeps its real path.
    assert got == [("real/r.png", "image"), ("a_out/o.png", "image")]
    assert rel(run(root, follow_symlinks=False), root) == [
        ("a_out", "skip: symlink (not followed)"),
        ("a_real", "skip: symlink (not followed)"),
        ("real/r.png", "image"),
    ]


def test_non_utf8_file_name(tmp_path: Path) -> None:
    raw_dir = os.fsencode(str(tmp_path))
    fd = os.open(raw_dir + b"/caf\xe9.png", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, png_bytes())
    os.close(fd)
    fd = os.open(raw_dir + b"/caf\xe9.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"caption")
    os.close(fd)
    (item,) = run(tmp_path)
    assert isinstance(item, Discovered)
    assert os.fsencode(item.path) == raw_dir + b"/caf\xe9.png"  # round-trips to the bytes
    assert item.caption_path is not None and item.caption_path.endswith("caf\udce9.txt")
    shown = display_path(item.path)
    assert shown.endswith("caf\\xe9.png")
    shown.encode("utf-8")  # printable: no lone surrogates left
    assert display_path("tab\there") == "tab\\there"
    assert display_path("plain/ünïcode.png") == "plain/ünïcode.png"


def test_unreadable_file_and_folder_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests usually run as root, where chmod 000 does not deny anything: make the OS calls
    # refuse for chosen paths instead (a real-permission variant follows for non-root runs).
    put(tmp_path / "ok.png", png_bytes())
    secret = put(tmp_path / "secret.png", png_bytes())
    locked = tmp_path / "locked"
    put(locked / "inside.png", png_bytes())
    real_open, real_scandir = builtins.open, os.scandir

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(file) == str(secret):
            raise PermissionError(13, "Permission denied", str(secret))
        return real_open(file, *args, **kwargs)

    def guarded_scandir(path: Any = ".") -> Any:
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_scandir(path)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "scandir", guarded_scandir)
    assert rel(run(tmp_path), tmp_path) == [
        ("ok.png", "image"),
        ("secret.png", "skip: permission denied"),
        ("locked", "skip: permission denied"),
    ]


def test_fifo_is_skipped_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    put(tmp_path / "real.txt", "words")
    assert rel(run(tmp_path), tmp_path) == [
        ("pipe.txt", "skip: not a regular file"),
        ("real.txt", "text"),
    ]
    assert run(tmp_path / "pipe.txt") == [Skipped(str(tmp_path / "pipe.txt"), "not a regular file")]


def test_real_media_files_are_classified(tmp_path: Path) -> None:
    from media_gen import make_audio, make_video

    scenes = [("red", 0.3)]
    made = {
        "a.mp4": make_video(tmp_path / "a.mp4", scenes),
        "a.mov": make_video(tmp_path / "a.mov", scenes),
        "a.mkv": make_video(tmp_path / "a.mkv", scenes),
        "a.webm": make_video(tmp_path / "a.webm", scenes, codec="libvpx-vp9"),
        "a.ts": make_video(tmp_path / "a.ts", scenes),
        "a.avi": make_video(tmp_path / "a.avi", scenes, codec="mpeg4"),
    }
    for suffix in (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".mka"):
        made["s" + suffix] = make_audio(tmp_path / ("s" + suffix), [(440.0, 0.3)])
    make_audio(tmp_path / "sound_only.mp4", [(440.0, 0.3)])
    (tmp_path / "renamed_m4a.mp4").write_bytes(made["s.m4a"].read_bytes())
    (tmp_path / "app.ts").write_text("export const x: number = 1;\n")  # TypeScript
    (tmp_path / "voice.bin").write_bytes(made["s.opus"].read_bytes())  # Ogg header says Opus
    got = dict(rel(run(tmp_path), tmp_path))
    assert got == {
        "a.avi": "video",
        "a.mkv": "video",
        "a.mov": "video",
        "a.mp4": "video",
        "a.ts": "video",
        "a.webm": "video",
        "app.ts": "skip: unsupported file type (.ts)",
        "renamed_m4a.mp4": "audio",  # its 'ftyp' brand says M4A
        "s.flac": "audio",
        "s.m4a": "audio",
        "s.mka": "audio",  # Matroska, but the extension says sound
        "s.mp3": "audio",
        "s.ogg": "audio",
        "s.opus": "audio",
        "s.wav": "audio",
        "sound_only.mp4": "video",  # the container decides; ingest falls back to audio
        "voice.bin": "audio",
    }
