"""Decide which modality a file is from its first bytes and its extension.

Magic bytes win over the extension (a PNG named ``.txt`` is an image); the
extension decides when the bytes are not conclusive (a damaged ``.jpg`` is
still an image, and its decoder will say what is wrong with it).

Containers that hold either sound or pictures (MP4/MOV, Matroska/WebM, Ogg)
are video unless their header or an audio extension (``.m4a``, ``.mka``,
``.ogg``...) says audio; an ``.mp4`` with only a sound track is still
"video" here, and ingest falls back to audio when it finds no video stream.
Every modality here is indexed; a new one is one entry in
``INDEXED_MODALITIES`` (and a decoder for it).
"""

from __future__ import annotations

import os
import re

from mmsearch.media.text import TEXT_EXTENSIONS

HEAD_BYTES = 64
"""How many leading bytes :func:`classify` looks at."""

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".heic",
    ".heif",
    ".avif",
)
VIDEO_EXTENSIONS = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".wmv",
    ".flv",
    ".mpg",
    ".mpeg",
    ".ts",
    ".m2ts",
    ".mts",
    ".3gp",
    ".ogv",
)
AUDIO_EXTENSIONS = (
    ".mp3",
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".m4a",
    ".aac",
    ".wma",
    ".aiff",
    ".aif",
    ".mka",
    ".weba",
)

INDEXED_MODALITIES: frozenset[str] = frozenset({"image", "text", "video", "audio"})
"""Modalities that ingest can decode today."""

NOT_INDEXED_REASONS: dict[str, str] = {}
"""Reasons for modalities that are recognised but not indexed (none at present)."""

EXTENSION_MODALITY: dict[str, str] = {
    **dict.fromkeys(IMAGE_EXTENSIONS, "image"),
    **dict.fromkeys(TEXT_EXTENSIONS, "text"),
    **dict.fromkeys(VIDEO_EXTENSIONS, "video"),
    **dict.fromkeys(AUDIO_EXTENSIONS, "audio"),
}
"""Lower-case extension -> modality, used when the magic bytes say nothing."""

# ISO base media ("ftyp" box at offset 4): the major brand says what is inside.
_FTYP_BRANDS: dict[bytes, str] = {
    **dict.fromkeys(
        (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"), "image"
    ),
    **dict.fromkeys((b"avif", b"avis"), "image"),
    **dict.fromkeys((b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "), "audio"),
}

# (regex over the head bytes, modality). "document" and "archive" are never indexed.
_STRONG_MAGIC: tuple[tuple[re.Pattern[bytes], str], ...] = tuple(
    (re.compile(p, re.DOTALL), m)
    for p, m in (
        (rb"\xff\xd8\xff", "image"),
        (rb"\x89PNG\r\n\x1a\n", "image"),
        (rb"GIF8[79]a", "image"),
        (rb"RIFF....WEBP", "image"),
        (rb"II\*\x00|MM\x00\*", "image"),
        (rb"RIFF....(AVI |AMV )", "video"),
        (rb"\x1a\x45\xdf\xa3", "video"),  # Matroska / WebM
        (rb"FLV\x01", "video"),
        (rb"\x00\x00\x01[\xb3\xba]", "video"),  # MPEG-PS / MPEG video
        (rb"RIFF....WAVE", "audio"),
        (rb"ID3[\x02-\x04]\x00", "audio"),
        (rb"fLaC", "audio"),
        (rb"FORM....AIF[FC]", "audio"),
        (rb"%PDF-", "document"),
        (rb"PK\x03\x04", "archive"),
    )
)

# Containers of either sound or pictures: an audio extension makes them audio.
_EITHER_CONTAINERS = (re.compile(rb"....ftyp", re.DOTALL), re.compile(rb"\x1a\x45\xdf\xa3"))

# Ogg: the first packet names the codec (at byte 28 when the first page has one segment).
_OGG_CODECS: tuple[tuple[bytes, str], ...] = (
    (b"\x80theora", "video"),
    (b"\x01video", "video"),  # OGM
    (b"OpusHead", "audio"),
    (b"\x01vorbis", "audio"),
    (b"\x7fFLAC", "audio"),
    (b"Speex   ", "audio"),
)

_ISO_BOX = rb"....(moov|mdat|wide|free|skip|pnot)"  # QuickTime files without 'ftyp'

# Too short to trust alone: they count only when the extension agrees.
_WEAK_MAGIC: dict[str, re.Pattern[bytes]] = {
    ".bmp": re.compile(rb"BM"),
    ".mp3": re.compile(rb"\xff[\xe0-\xff]"),
    ".aac": re.compile(rb"\xff[\xf0-\xff]"),
    ".ogg": re.compile(rb"OggS"),
    ".oga": re.compile(rb"OggS"),
    ".opus": re.compile(rb"OggS"),
    ".ogv": re.compile(rb"OggS"),
    **{ext: re.compile(_ISO_BOX, re.DOTALL) for ext in (".mov", ".mp4", ".m4v", ".m4a", ".3gp")},
}

# Extensions shared with other kinds of file: without the magic they are not media
# (``.ts`` is also TypeScript source).
_TS_PACKET = rb"\x47[\x00-\x1f\x40-\x5f].[\x10-\x3f]"  # sync byte, flags+PID, PID, control
_REQUIRED_MAGIC: dict[str, re.Pattern[bytes]] = {
    ".ts": re.compile(_TS_PACKET, re.DOTALL),
    ".m2ts": re.compile(rb"(....)?" + _TS_PACKET, re.DOTALL),  # Blu-ray: 4-byte time code first
    ".mts": re.compile(rb"(....)?" + _TS_PACKET, re.DOTALL),
}


def extension(path: str) -> str:
    """The lower-case extension of ``path``, with its dot ('' if none)."""
    return os.path.splitext(path)[1].lower()


def sniff_magic(head: bytes) -> str | None:
    """The kind of content the leading bytes announce, or None if they say nothing."""
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12], "video")
    if head.startswith(b"OggS"):
        for codec_id, kind in _OGG_CODECS:
            if codec_id in head[26:]:
                return kind
        return None
    for pattern, kind in _STRONG_MAGIC:
        if pattern.match(head):
            return kind
    return None


def classify(path: str, head: bytes) -> tuple[str | None, str | None]:
    """Return ``(modality, None)`` for a file to index, or ``(None, reason)``.

    ``head`` is the first :data:`HEAD_BYTES` bytes of the file (``b""`` means
    the file is empty).
    """
    if not head:
        return None, "empty file"
    ext = extension(path)
    required = _REQUIRED_MAGIC.get(ext)
    if required is not None and not required.match(head):
        return None, _unsupported(ext, None)
    kind = sniff_magic(head)
    if (
        kind == "video"
        and EXTENSION_MODALITY.get(ext) == "audio"
        and any(p.match(head) for p in _EITHER_CONTAINERS)
    ):
        kind = "audio"
    if kind is None:
        weak = _WEAK_MAGIC.get(ext)
        if weak is not None and weak.match(head):
            kind = EXTENSION_MODALITY[ext]
    if kind is None:
        kind = EXTENSION_MODALITY.get(ext)
    if kind is None or kind in ("document", "archive"):
        return None, _unsupported(ext, kind)
    if kind not in INDEXED_MODALITIES:
        return None, NOT_INDEXED_REASONS.get(kind, f"{kind} files are not indexed")
    return kind, None


def sniff_modality(path: str, head: bytes) -> str | None:
    """The modality to index ``path`` as, or None when it is not indexed."""
    return classify(path, head)[0]


def _unsupported(ext: str, kind: str | None) -> str:
    label = ext if ext else "no extension"
    if kind == "document":
        return f"unsupported file type ({label}: PDF document)"
    if kind == "archive":
        return f"unsupported file type ({label}: ZIP archive)"
    return f"unsupported file type ({label})"
