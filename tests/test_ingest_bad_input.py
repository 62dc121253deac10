"""A folder full of awkward and broken files: the run finishes, good files are indexed,
every failure is recorded with a reason, in the report and in the catalog."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

from PIL import Image

from mmsearch.library import Library

from fakes import ColourEncoder, solid


def _png_claiming(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = 8 + 8  # signature + (length, type)
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def _make_awkward(root: Path) -> dict[str, str]:
    """Write files; return {name: expected colour} for the ones that must index."""
    root.mkdir()
    good: dict[str, str] = {}
    # Awkward but valid.
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    solid("red", (40, 20)).save(root / "rotated.jpg", exif=exif)
    good["rotated.jpg"] = "red"
    solid("blue").convert("CMYK").save(root / "cmyk.jpg")
    good["cmyk.jpg"] = "blue"
    Image.new("I;16", (16, 16), 65535).save(root / "wide16.png")
    good["wide16.png"] = "white"
    pal = solid("green").convert("P", palette=Image.Palette.ADAPTIVE)
    pal.save(root / "palette.png")
    good["palette.png"] = "green"
    rgba = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    rgba.save(root / "transparent.png")
    good["transparent.png"] = "white"
    frames = [solid("yellow"), solid("purple")]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    good["anim.gif"] = "yellow"
    frames[0].save(root / "anim.webp", save_all=True, append_images=frames[1:], duration=100)
    good["anim.webp"] = "yellow"
    solid("orange").save(os.fsdecode(os.fsencode(str(root)) + b"/caf\xe9.png"), format="PNG")
    good[os.fsdecode(b"caf\xe9.png")] = "orange"
    # Broken.
    (root / "zero.png").write_bytes(b"")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    buf = io.BytesIO()
    solid("red", (64, 64)).save(buf, format="JPEG")
    (root / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "bomb.png").write_bytes(_png_claiming(60000, 60000))
    (root / "data.xyz").write_bytes(b"whatever")
    (root / "loop").symlink_to(root)
    (root / "dangling.png").symlink_to(root / "missing.png")
    return good


def test_awkward_folder(tmp_path: Path) -> None:
    root = tmp_path / "awkward"
    good = _make_awkward(root)
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        report = lib.add([root], workers=0)
        assert report.added == len(good)
        failed = {os.path.basename(f.path): f.reason for f in report.failures}
        assert set(failed) == {
            "zero.png",
            "corrupt.jpg",
            "truncated.jpg",
            "bomb.png",
            "loop",
            "dangling.png",
        }, failed
        # A type mmsearch does not index is skipped, not failed (and not recorded).
        assert [(os.path.basename(s.path), s.stage) for s in report.skips] == [
            ("data.xyz", "skipped")
        ]
        assert all(reason for reason in failed.values())
        assert "pixels" in failed["bomb.png"] or "bomb" in failed["bomb.png"]
        recorded = {os.path.basename(f["path"]) for f in lib.failures()}
        assert recorded == set(failed) - {"loop"} or recorded == set(failed)
        for name, colour in good.items():
            top = lib.search(colour, k=len(good))
            assert any(os.path.basename(h.path) == name for h in top), (name, colour)
        rotated = next(h for h in lib.search("red", k=3) if h.path.endswith("rotated.jpg"))
        assert (rotated.metadata["width"], rotated.metadata["height"]) == (20, 40)
