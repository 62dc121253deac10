"""Decode image files into fully loaded 8-bit RGB ``PIL.Image`` objects, safely.

Every path a model sees goes through :func:`open_image_rgb`, so this is where
bad input stops: empty, truncated or corrupt files, non-images, unreadable
files and decompression bombs all become :class:`~mmsearch.errors.DecodeError`
with a short reason. Good images are normalised the same way everywhere: EXIF
orientation applied, first frame of animations, alpha composited on white,
CMYK / YCbCr / 16-bit / palette / 1-bit all turned into 8-bit RGB.

:func:`probe_image` reads only the header and EXIF (size, format, frame count,
capture time) and refuses bombs before any pixel is decoded.
"""

from __future__ import annotations

import calendar
import functools
import logging
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mmsearch.errors import DecodeError
from mmsearch.media._io import os_error_reason, stat_regular

log = logging.getLogger(__name__)

MAX_PIXELS_DEFAULT = 100_000_000
"""Refuse images with more pixels than this (width x height of the first frame)."""

SAFE_FORMATS: tuple[str, ...] = (
    "JPEG",  # also yields MPO (multi-picture JPEG from cameras)
    "PNG",
    "GIF",
    "WEBP",
    "BMP",
    "DIB",
    "TIFF",
    "AVIF",
    "HEIF",
    "ICO",
    "PPM",
    "TGA",
    "JPEG2000",
)
"""PIL formats files may be opened as (those installed). Others are refused: EPS, for one,
would run Ghostscript on an untrusted file."""

_WHITE = (255, 255, 255)

# EXIF tags (see the EXIF 2.3 spec): IFD0 DateTime, Exif-IFD DateTimeOriginal /
# DateTimeDigitized and their sub-second companions.
_EXIF_IFD = 0x8769
_TAG_DATETIME = 0x0132
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_DATETIME_DIGITIZED = 0x9004
_TAG_SUBSEC_ORIGINAL = 0x9291
_TAG_SUBSEC_DIGITIZED = 0x9292


@dataclass(frozen=True)
class ImageProbe:
    """What the header of an image file says, read without decoding pixels."""

    width: int
    height: int
    format: str | None
    frames: int
    taken_at: float | None
    """EXIF capture time as epoch seconds, the camera's local clock read as UTC."""


@functools.cache
def register_optional_plugins() -> tuple[str, ...]:
    """Register HEIF/AVIF openers from optional packages when they are installed.

    Pillow >= 11.3 reads AVIF itself; HEIC needs ``pillow-heif``. Returns the
    names of the plugins that were registered (for logging and tests).
    """
    registered: list[str] = []
    try:
        from pillow_heif import register_heif_opener  # type: ignore[import-not-found]

        register_heif_opener()
        registered.append("pillow_heif")
    except ImportError:
        pass
    if "AVIF" not in Image.registered_extensions().values():
        try:
            import pillow_avif  # type: ignore[import-not-found]  # noqa: F401  (registers on import)

            registered.append("pillow_avif")
        except ImportError:
            pass
    return tuple(registered)


@functools.cache
def _open_formats() -> tuple[str, ...]:
    register_optional_plugins()
    Image.init()
    return tuple(f for f in SAFE_FORMATS if f in Image.OPEN)


# ----------------------------------------------------------------------------- public API


def open_image_rgb(
    src: str | os.PathLike[str] | Image.Image | IO[bytes],
    *,
    max_pixels: int = MAX_PIXELS_DEFAULT,
) -> Image.Image:
    """Return ``src`` as a fully loaded, EXIF-rotated 8-bit RGB image.

    ``src`` may be a path, a binary file already open (the server opens files itself,
    after checking them) or a ``PIL.Image`` (converted the same way, no file I/O; the
    caller's image is left untouched). Raises :class:`DecodeError` for anything that
    is not a decodable image of at most ``max_pixels`` pixels.
    """
    if isinstance(src, Image.Image):
        with _quiet_pil():
            _check_pixels(src.size, max_pixels)
            _force_load(src)
            return _convert(src)
    if not isinstance(src, (str, os.PathLike)):
        return _decode_open(src, "the file", max_pixels)[0]
    return _open_path(src, max_pixels=max_pixels)[0]


def probe_image(
    path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS_DEFAULT
) -> ImageProbe:
    """Read an image's size, format, frame count and EXIF capture time from its header.

    Pixels are not decoded, so a truncated file may probe fine and still fail
    in :func:`open_image_rgb`. Bombs are refused here from the header size.
    """
    with _open_file(path) as fh, _quiet_pil():
        im = _identify(fh, path)
        try:
            _check_pixels(im.size, max_pixels)
            return _probe_from_header(im)
        finally:
            im.close()


def load_image_for_model(
    path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS_DEFAULT
) -> tuple[Image.Image, ImageProbe]:
    """Probe and decode ``path`` in one pass: (RGB image, header facts)."""
    return _open_path(path, max_pixels=max_pixels)


# ----------------------------------------------------------------------------- opening


def _open_path(path: str | os.PathLike[str], *, max_pixels: int) -> tuple[Image.Image, ImageProbe]:
    with _open_file(path) as fh:
        return _decode_open(fh, path, max_pixels)


def _decode_open(
    fh: IO[bytes], path: str | os.PathLike[str], max_pixels: int
) -> tuple[Image.Image, ImageProbe]:
    with _quiet_pil():
        im = _identify(fh, path)
        try:
            _check_pixels(im.size, max_pixels)
            probe = _probe_from_header(im)
            _force_load(im)
            return _convert(im), probe
        finally:
            im.close()


@contextmanager
def _open_file(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a regular, non-empty file for binary reading; OS errors become short reasons."""
    st = stat_regular(path)
    if st.st_size == 0:
        raise DecodeError("empty file")
    try:
        fh = open(path, "rb")  # noqa: SIM115  (closed below; errors need translating first)
    except OSError as exc:
        raise DecodeError(os_error_reason(exc)) from exc
    try:
        yield fh
    finally:
        fh.close()


def _identify(fh: IO[bytes], path: str | os.PathLike[str]) -> Image.Image:
    """``Image.open`` on an open file: reads the header only."""
    formats = _open_formats()
    try:
        return Image.open(fh, formats=formats)
    except Image.DecompressionBombError as exc:
        raise DecodeError(
            f"image too large ({_bomb_pixels(exc)}; decompression bomb guard)"
        ) from exc
    except UnidentifiedImageError as exc:
        fh.seek(0)
        head = fh.read(32)
        raise DecodeError(_unidentified_reason(head)) from exc
    except PermissionError as exc:
        raise DecodeError("permission denied") from exc
    except MemoryError as exc:
        raise DecodeError("image header asks for too much memory") from exc
    except Exception as exc:  # plugins raise many types (SyntaxError, struct.error, ...)
        log.debug("cannot identify %r: %r", path, exc)
        if "truncat" in str(exc).lower():
            raise DecodeError("truncated image file (cut off inside the header)") from exc
        raise DecodeError(f"corrupt image header ({_short(exc)})") from exc


def _unidentified_reason(head: bytes) -> str:
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
        return "HEIC/HEIF images need the optional package pillow-heif"
    return "not an image (unrecognised format)"


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise DecodeError(f"invalid image size {w}x{h}")
    if w * h > max_pixels:
        raise DecodeError(f"image too large ({w}x{h} = {w * h:,} pixels > limit {max_pixels:,})")


def _force_load(im: Image.Image) -> None:
    """Decode every pixel of the current frame now, so truncation is caught here."""
    try:
        im.load()
    except Image.DecompressionBombError as exc:
        raise DecodeError(
            f"image too large ({_bomb_pixels(exc)}; decompression bomb guard)"
        ) from exc
    except MemoryError as exc:
        raise DecodeError("out of memory decoding image") from exc
    except Exception as exc:  # OSError("image file is truncated"), SyntaxError, ValueError, ...
        raise DecodeError(f"truncated or corrupt image data ({_short(exc)})") from exc


def _bomb_pixels(exc: Exception) -> str:
    """The pixel count from PIL's DecompressionBombError message, formatted for people."""
    m = re.search(r"\((\d+) pixels\)", str(exc))
    return f"{int(m.group(1)):,} pixels" if m else "too many pixels"


def _short(exc: BaseException, limit: int = 80) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def _quiet_pil() -> Iterator[None]:
    """Keep PIL's warnings (bomb, bad EXIF, palette transparency) from escaping.

    They would become exceptions under ``-W error``; every case that matters is
    checked explicitly instead. PIL's own bomb *error* threshold still applies
    (``2 * PIL.Image.MAX_IMAGE_PIXELS``); raising ``max_pixels`` above it needs
    the application to raise PIL's limit too.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ----------------------------------------------------------------------------- probing


def _probe_from_header(im: Image.Image) -> ImageProbe:
    w, h = im.size
    return ImageProbe(
        width=w,
        height=h,
        format=im.format,
        frames=_frame_count(im),
        taken_at=_taken_at(_header_exif(im)),
    )


def _frame_count(im: Image.Image) -> int:
    """Number of frames; PIL seeks back to the first frame after counting."""
    try:
        return max(1, int(getattr(im, "n_frames", 1)))
    except Exception as exc:  # counting GIF frames walks the file; a damaged one may fail
        log.debug("cannot count frames: %r", exc)
    try:
        im.seek(0)
    except Exception as exc:
        raise DecodeError(f"corrupt animation ({_short(exc)})") from exc
    return 1


def _header_exif(im: Image.Image) -> Image.Exif | None:
    """EXIF without decoding pixels (PNG's ``getexif`` would load the whole image)."""
    try:
        if im.format == "PNG":
            raw = im.info.get("exif")
            if not raw:
                return None
            exif = Image.Exif()
            exif.load(raw)
            return exif
        return im.getexif()
    except Exception as exc:  # corrupt EXIF must not reject a good image
        log.debug("unreadable EXIF: %r", exc)
        return None


def _taken_at(exif: Image.Exif | None) -> float | None:
    if exif is None:
        return None
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:
        sub = {}
    candidates = (
        (sub.get(_TAG_DATETIME_ORIGINAL), sub.get(_TAG_SUBSEC_ORIGINAL)),
        (sub.get(_TAG_DATETIME_DIGITIZED), sub.get(_TAG_SUBSEC_DIGITIZED)),
        (exif.get(_TAG_DATETIME), None),
    )
    for value, subsec in candidates:
        ts = parse_exif_datetime(value, subsec)
        if ts is not None:
            return ts
    return None


def parse_exif_datetime(value: Any, subsec: Any = None) -> float | None:
    """Parse an EXIF ``YYYY:MM:DD HH:MM:SS`` string as UTC epoch seconds, or None."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "ignore")
    if not isinstance(value, str):
        return None
    text = value.strip("\x00 ").strip()[:19]
    dt = None
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            dt = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if dt is None or dt.year < 1800:
        return None
    ts = float(calendar.timegm(dt.timetuple()))
    if isinstance(subsec, bytes):
        subsec = subsec.decode("ascii", "ignore")
    if isinstance(subsec, str) and subsec.strip("\x00 ").isdigit():
        digits = subsec.strip("\x00 ")
        ts += int(digits) / 10 ** len(digits)
    return ts


# ----------------------------------------------------------------------------- conversion


def _convert(im: Image.Image) -> Image.Image:
    try:
        return _to_rgb(im)
    except DecodeError:
        raise
    except MemoryError as exc:
        raise DecodeError("out of memory converting image") from exc
    except Exception as exc:  # PIL raises many types on odd modes and damaged data
        raise DecodeError(f"cannot convert image to RGB ({_short(exc)})") from exc


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert a loaded image to a new, independent 8-bit RGB image."""
    im = _exif_transpose(im)
    mode = im.mode
    if mode == "RGB":
        return im.copy()
    if mode.startswith("I") or mode == "F":
        return _wide_to_rgb(im)
    if mode == "CMYK":
        return _cmyk_to_rgb(im)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or im.has_transparency_data:
        return _composite_on_white(im)
    try:
        return im.convert("RGB")
    except (ValueError, OSError) as exc:
        raise DecodeError(f"unsupported colour mode {mode}") from exc


def _exif_transpose(im: Image.Image) -> Image.Image:
    try:
        out = ImageOps.exif_transpose(im)
    except Exception as exc:  # a broken orientation tag must not reject a good image
        log.debug("EXIF transpose failed: %r", exc)
        return im
    return out if out is not None else im


def _composite_on_white(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    out = Image.new("RGB", rgba.size, _WHITE)
    out.paste(rgba, mask=rgba.getchannel("A"))
    return out


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    """CMYK through the embedded ICC profile when there is one, else PIL's formula."""
    icc = im.info.get("icc_profile")
    if icc:
        try:
            import io

            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
            if out is not None:
                return out
        except Exception as exc:  # bad profile: fall back to the plain conversion
            log.debug("ICC conversion failed: %r", exc)
    return im.convert("RGB")


def _wide_to_rgb(im: Image.Image) -> Image.Image:
    """16/32-bit integer and float greyscale to 8-bit, scaled rather than clipped.

    ``I;16*`` modes use the full 0..65535 range. ``I`` is usually a 16-bit file
    too, so it is read that way when its values fit; otherwise (and for ``F``
    outside 0..1) the actual min..max range is stretched to 0..255.
    """
    arr = np.asarray(im)
    if im.mode.startswith("I;16"):
        out: np.ndarray[Any, Any] = (arr.astype(np.int64) + 128) // 257
    elif im.mode == "I" and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        out = (arr.astype(np.int64) + 128) // 257
    elif im.mode == "F" and arr.size and np.nanmin(arr) >= 0 and np.nanmax(arr) <= 1:
        out = np.rint(np.nan_to_num(arr) * 255)
    else:
        out = _stretch(arr.astype(np.float64))
    grey = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    return grey.convert("RGB")


def _stretch(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    arr = np.nan_to_num(arr)
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if hi <= lo:
        return np.zeros_like(arr)
    return np.rint((arr - lo) * (255.0 / (hi - lo)))
