"""Small JPEG thumbnails of images and video frames, for result lists."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image


def make_thumbnail(image: Image.Image, max_side: int = 320, quality: int = 80) -> bytes:
    """JPEG bytes of ``image`` scaled so its longer side is at most ``max_side`` (never
    enlarged). Transparency is flattened onto white. Made for the 8-bit images the
    decoders return (:mod:`mmsearch.media.image`, :mod:`mmsearch.media.video`)."""
    from PIL import Image

    if max_side < 1:
        raise ValueError("max_side must be positive")
    thumb = image.copy()
    thumb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    thumb = _to_rgb(thumb)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def _to_rgb(image: Image.Image) -> Image.Image:
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")
