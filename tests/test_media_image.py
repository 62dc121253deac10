"""Image decoding: every odd kind of image becomes 8-bit RGB, every bad one a DecodeError."""

from __future__ import annotations

import builtins
import calendar
import os
import resource
import struct
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mmsearch.errors import DecodeError
from mmsearch.media.image import (
    ImageProbe,
    load_image_for_model,
    open_image_rgb,
    parse_exif_datetime,
    probe_image,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def near(pixel: Any, expected: tuple[int, int, int], tol: int = 12) -> bool:
    return all(abs(int(a) - b) <= tol for a, b in zip(pixel, expected, strict=True))


def noise_image(size: tuple[int, int] = (64, 48), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def patch_png_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite a PNG's IHDR width/height (and its CRC) without touching the pixel data."""
    assert data[12:16] == b"IHDR"
    ihdr = struct.pack(">II", width, height) + data[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return data[:16] + ihdr + crc + data[33:]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ----------------------------------------------------------------------------- bad input


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(DecodeError, match="empty file"):
        open_image_rgb(p)
    with pytest.raises(DecodeError, match="empty file"):
        probe_image(p)


def test_corrupt_jpeg_with_valid_magic(tmp_path: Path) -> None:
    p = tmp_path / "corrupt.jpg"
    rng = np.random.default_rng(1)
    p.write_bytes(b"\xff\xd8\xff\xe0" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(DecodeError) as info:
        open_image_rgb(p)
    assert info.value.reason
    assert "Traceback" not in info.value.reason


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_refused_but_probes(tmp_path: Path, fmt: str) -> None:
    p = tmp_path / f"cut.{fmt.lower()}"
    noise_image((128, 96)).save(p, fmt)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    probe = probe_image(p)  # the header is intact
    assert (probe.width, probe.height, probe.format) == (128, 96, fmt)
    with pytest.raises(DecodeError, match="truncated or corrupt"):
        open_image_rgb(p)


def test_file_cut_inside_the_header(tmp_path: Path) -> None:
    p = tmp_path / "stub.jpg"
    noise_image((16, 16)).save(p, "JPEG")
    p.write_bytes(p.read_bytes()[:300])  # inside the quantisation/Huffman tables
    with pytest.raises(DecodeError, match="truncated"):
        open_image_rgb(p)


def test_not_an_image(tmp_path: Path) -> None:
    p = tmp_path / "notes.xyz"
    p.write_text("just some words, not pixels\n" * 10)
    with pytest.raises(DecodeError, match="not an image"):
        open_image_rgb(p)


def test_pdf_named_as_image(tmp_path: Path) -> None:
    p = tmp_path / "scan.png"
    p.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")
    with pytest.raises(DecodeError, match="not an image"):
        open_image_rgb(p)


def test_eps_is_never_opened(tmp_path: Path) -> None:
    # PIL reads EPS by running Ghostscript; untrusted files must not get that far.
    p = tmp_path / "vector.jpg"
    p.write_bytes(
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
        b"newpath 0 0 moveto 10 10 lineto stroke\nshowpage\n%%EOF\n"
    )
    with Image.open(p) as im:  # PIL on its own would accept it
        assert im.format == "EPS"
    with pytest.raises(DecodeError, match="not an image"):
        probe_image(p)
    with pytest.raises(DecodeError, match="not an image"):
        open_image_rgb(p)


def test_heic_without_plugin_names_the_package(tmp_path: Path) -> None:
    # pillow-heif is an optional plugin that the project's setup does not install.
    p = tmp_path / "photo.heic"
    p.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    with pytest.raises(DecodeError, match="pillow-heif"):
        open_image_rgb(p)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="no such file"):
        open_image_rgb(tmp_path / "nope.png")
    with pytest.raises(DecodeError, match="not a regular file"):
        open_image_rgb(tmp_path)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(DecodeError, match="not a regular file"):
        open_image_rgb(fifo)


def test_unreadable_file_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests usually run as root, where chmod 000 does not stop reads; make open() refuse instead.
    p = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(p)
    real_open = builtins.open

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(file) == str(p):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    with pytest.raises(DecodeError, match="permission denied"):
        open_image_rgb(p)
    with pytest.raises(DecodeError, match="permission denied"):
        probe_image(p)


# ----------------------------------------------------------------------------- bombs


def _tiny_bilevel_png() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("1", (8, 8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "size",
    [
        (12_000, 12_000),  # 144 M pixels: over our 100 M default, under PIL's own error limit
        (50_000, 50_000),  # 2.5 G pixels: PIL raises DecompressionBombError itself
    ],
)
def test_decompression_bomb_refused_from_header(tmp_path: Path, size: tuple[int, int]) -> None:
    p = tmp_path / "bomb.png"
    p.write_bytes(patch_png_size(_tiny_bilevel_png(), *size))
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning must not escape
        with pytest.raises(DecodeError, match="too large"):
            probe_image(p)
        with pytest.raises(DecodeError, match="too large"):
            open_image_rgb(p)
    assert time.perf_counter() - t0 < 2.0
    # Decoding even the 144 M pixel one would need >= 144 MB; the peak must not move that much.
    assert peak_rss_mb() - rss_before < 64


def test_max_pixels_is_configurable(tmp_path: Path) -> None:
    p = tmp_path / "small.png"
    Image.new("RGB", (100, 100), RED).save(p)
    with pytest.raises(DecodeError, match="10,000 pixels > limit 5,000"):
        open_image_rgb(p, max_pixels=5_000)
    with pytest.raises(DecodeError, match="too large"):
        open_image_rgb(Image.new("RGB", (100, 100)), max_pixels=5_000)
    assert open_image_rgb(p, max_pixels=10_000).size == (100, 100)


# ----------------------------------------------------------------------------- conversions


def test_exif_orientation_6_rotates_pixels(tmp_path: Path) -> None:
    # Stored 40x20: top half red, bottom half blue. Orientation 6 = rotate 90 degrees clockwise
    # to display, so the top edge ends up on the right.
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:10] = RED
    arr[10:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(p, quality=95, exif=exif)
    im = open_image_rgb(p)
    assert im.mode == "RGB"
    assert im.size == (20, 40)
    assert near(im.getpixel((16, 20)), RED)
    assert near(im.getpixel((3, 20)), BLUE)
    probe = probe_image(p)
    assert (probe.width, probe.height) == (40, 20)  # the header's (stored) size


def test_cmyk_jpeg(tmp_path: Path) -> None:
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(p, quality=95)
    with Image.open(p) as raw:
        assert raw.mode == "CMYK"
    im = open_image_rgb(p)
    assert im.mode == "RGB"
    assert near(im.getpixel((8, 8)), RED, tol=20)


def test_16bit_grey_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 32768], [65535, 257 * 100]], dtype=np.uint16)
    p = tmp_path / "deep.png"
    Image.fromarray(values).save(p)
    with Image.open(p) as raw:
        assert raw.mode.startswith("I")
    im = open_image_rgb(p)
    got = np.asarray(im)
    assert got.shape == (2, 2, 3)
    assert got[0, 0].tolist() == [0, 0, 0]
    assert got[0, 1].tolist() == [128, 128, 128]
    assert got[1, 0].tolist() == [255, 255, 255]
    assert got[1, 1].tolist() == [100, 100, 100]


def test_32bit_int_and_float_images() -> None:
    as_i = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    assert as_i.mode == "I"
    assert np.asarray(open_image_rgb(as_i))[0, :, 0].tolist() == [0, 255]
    wide = Image.fromarray(np.array([[-1000, 1000]], dtype=np.int32))
    assert np.asarray(open_image_rgb(wide))[0, :, 0].tolist() == [0, 255]
    as_f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert as_f.mode == "F"
    assert np.asarray(open_image_rgb(as_f))[0, :, 0].tolist() == [0, 128, 255]


def test_palette_png_with_transparency_on_white(tmp_path: Path) -> None:
    im = Image.new("P", (20, 10), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    im.paste(1, (10, 0, 20, 10))
    p = tmp_path / "pal.png"
    im.save(p, transparency=0)
    with Image.open(p) as raw:
        assert raw.mode == "P" and "transparency" in raw.info
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = open_image_rgb(p)
    assert out.getpixel((2, 5)) == WHITE
    assert out.getpixel((15, 5)) == RED


def test_rgba_and_la_composited_on_white(tmp_path: Path) -> None:
    arr = np.zeros((4, 3, 4), np.uint8)  # column 0 transparent black
    arr[:, 1] = (0, 0, 255, 255)  # opaque blue
    arr[:, 2] = (255, 0, 0, 128)  # half-transparent red
    p = tmp_path / "alpha.png"
    Image.fromarray(arr, "RGBA").save(p)
    out = open_image_rgb(p)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == WHITE
    assert out.getpixel((1, 0)) == BLUE
    assert near(out.getpixel((2, 0)), (255, 127, 127), tol=2)
    la = Image.merge("LA", [Image.new("L", (2, 2), 0), Image.new("L", (2, 2), 0)])
    assert open_image_rgb(la).getpixel((0, 0)) == WHITE


def test_one_bit_grey_and_ycbcr() -> None:
    bw = Image.new("1", (4, 4), 1)
    bw.putpixel((0, 0), 0)
    out = open_image_rgb(bw)
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (0, 0, 0)
    assert out.getpixel((1, 1)) == WHITE
    assert open_image_rgb(Image.new("L", (2, 2), 77)).getpixel((0, 0)) == (77, 77, 77)
    ycc = Image.new("RGB", (2, 2), (200, 40, 90)).convert("YCbCr")
    assert near(open_image_rgb(ycc).getpixel((0, 0)), (200, 40, 90), tol=3)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animation_first_frame(tmp_path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, (0, 255, 0), BLUE)]
    p = tmp_path / f"anim.{fmt.lower()}"
    extra = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(p, fmt, save_all=True, append_images=frames[1:], duration=50, **extra)
    probe = probe_image(p)
    assert probe.frames == 3
    out = open_image_rgb(p)
    assert out.mode == "RGB" and out.size == (16, 16)
    assert near(out.getpixel((8, 8)), RED, tol=4)


def test_pil_input_is_converted_without_touching_it() -> None:
    src = Image.new("RGBA", (3, 3), (0, 0, 0, 0))
    out = open_image_rgb(src)
    assert src.mode == "RGBA" and out.mode == "RGB"
    assert out.getpixel((1, 1)) == WHITE
    rgb = Image.new("RGB", (3, 3), RED)
    out2 = open_image_rgb(rgb)
    assert out2 is not rgb and out2.getpixel((0, 0)) == RED


def test_non_utf8_file_name(tmp_path: Path) -> None:
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9.png"
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT, 0o644)
    import io

    buf = io.BytesIO()
    Image.new("RGB", (5, 4), BLUE).save(buf, "PNG")
    os.write(fd, buf.getvalue())
    os.close(fd)
    name = os.fsdecode(raw)
    assert "\udce9" in name
    assert open_image_rgb(name).getpixel((0, 0)) == BLUE
    assert probe_image(name).width == 5


# ----------------------------------------------------------------------------- probing


def test_probe_reads_exif_datetime_original(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0132] = "2001:01:01 00:00:00"  # DateTime (file change) loses to DateTimeOriginal
    exif.get_ifd(0x8769)[0x9003] = "2021:06:15 12:30:45"
    p = tmp_path / "dated.jpg"
    Image.new("RGB", (30, 20), RED).save(p, exif=exif)
    probe = probe_image(p)
    assert probe == ImageProbe(
        width=30,
        height=20,
        format="JPEG",
        frames=1,
        taken_at=float(calendar.timegm((2021, 6, 15, 12, 30, 45, 0, 0, 0))),
    )
    image, probe2 = load_image_for_model(p)
    assert probe2 == probe and image.size == (30, 20) and image.mode == "RGB"


def test_probe_falls_back_to_datetime_and_rejects_zero_dates(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0132] = "2010:02:03 04:05:06"
    p = tmp_path / "a.jpg"
    Image.new("RGB", (4, 4)).save(p, exif=exif)
    assert probe_image(p).taken_at == calendar.timegm((2010, 2, 3, 4, 5, 6, 0, 0, 0))
    exif[0x0132] = "0000:00:00 00:00:00"
    Image.new("RGB", (4, 4)).save(p, exif=exif)
    assert probe_image(p).taken_at is None
    Image.new("RGB", (4, 4)).save(p)
    assert probe_image(p).taken_at is None


def test_parse_exif_datetime_variants() -> None:
    base = calendar.timegm((2020, 5, 6, 7, 8, 9, 0, 0, 0))
    assert parse_exif_datetime("2020:05:06 07:08:09") == base
    assert parse_exif_datetime(b"2020:05:06 07:08:09\x00") == base
    assert parse_exif_datetime("2020:05:06 07:08:09", "25") == base + 0.25
    assert parse_exif_datetime("    :  :     :  :  ") is None
    assert parse_exif_datetime("garbage") is None
    assert parse_exif_datetime(None) is None
