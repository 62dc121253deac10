"""Read caption–media pair datasets into one structure, :class:`PairSet`, whatever their format.

``read_pairs(path)`` detects the format from the file's content (see
:mod:`mmsearch.eval.formats` for the list), keeps the asked-for split,
resolves media paths against ``root`` (default: the file's folder), drops
pairs whose media file is missing (listed in ``PairSet.missing`` and logged,
not an error) and merges captions of the same media file, so an image with
five captions is one gallery item with five positives. An optional
``match_key`` field marks media that are interchangeable (generated images
with the same description): see ``PairSet.media_keys``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmsearch.errors import DecodeError
from mmsearch.eval.formats import DatasetError, RawPair, detect
from mmsearch.media.probe import (
    AUDIO_EXTENSIONS,
    EXTENSION_MODALITY,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
)
from mmsearch.media.text import read_text_file

__all__ = ["DatasetError", "PairSet", "read_pairs"]

log = logging.getLogger(__name__)

MATCH_KEY = "match_key"
"""Optional JSONL/CSV field: media with equal values fit each other's captions."""
ALL_SPLITS = ("all", "*")
"""Split names that mean "no split filter"."""
MAX_FILE_BYTES = 2_000_000_000
"""Largest annotation file read (COCO's Karpathy JSON is about 140 MB)."""
_MEDIA_EXTENSIONS = VIDEO_EXTENSIONS + AUDIO_EXTENSIONS + IMAGE_EXTENSIONS


@dataclass
class PairSet:
    """Media files and their captions: caption ``i`` describes ``media[caption_media[i]]``."""

    media: list[str]
    """Absolute media paths (images, videos or audio files), each once."""
    captions: list[str]
    caption_media: list[int]
    modality: str
    """``image``, ``video`` or ``audio``."""
    name: str
    extra: list[dict[str, Any]]
    """Per caption: the extra fields of its row (JSONL keys, dataset ids); may be empty dicts."""
    format: str = ""
    """The detected file format (``karpathy``, ``coco``, ``msrvtt``, ``jsonl``, ...)."""
    missing: list[str] = field(default_factory=list)
    """Media references whose file was not found (their captions were dropped)."""
    media_keys: list[str] | None = None
    """Per media item, its ``match_key`` when the file gives one: media with equal keys are
    interchangeable (each fits the other's captions). ``None``: every media item is distinct."""

    @property
    def n_media(self) -> int:
        return len(self.media)

    @property
    def n_captions(self) -> int:
        return len(self.captions)

    def captions_of(self) -> list[list[int]]:
        """Per media item, the indices of its captions."""
        out: list[list[int]] = [[] for _ in self.media]
        for t, m in enumerate(self.caption_media):
            out[m].append(t)
        return out

    def select_media(self, keep: Sequence[int]) -> PairSet:
        """A copy with only media ``keep`` (in that order) and their captions."""
        new_index = {old: new for new, old in enumerate(keep)}
        texts = [t for t, m in enumerate(self.caption_media) if m in new_index]
        return replace(
            self,
            media=[self.media[m] for m in keep],
            captions=[self.captions[t] for t in texts],
            caption_media=[new_index[self.caption_media[t]] for t in texts],
            extra=[self.extra[t] for t in texts],
            missing=list(self.missing),
            media_keys=None if self.media_keys is None else [self.media_keys[m] for m in keep],
        )


class _Resolver:
    """Turn row refs into existing absolute paths; ``name.*`` matches any media extension."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._stems: dict[str, dict[str, str]] = {}

    def resolve(self, refs: Sequence[str]) -> str | None:
        for ref in refs:
            p = Path(os.path.expanduser(ref))
            p = p if p.is_absolute() else self.base / p
            if ref.endswith(".*"):
                found = self._by_stem(str(p.parent)).get(p.name[:-2])
                if found:
                    return found
            elif p.is_file():
                return os.path.abspath(p)
        return None

    def _by_stem(self, folder: str) -> dict[str, str]:
        if folder not in self._stems:
            rank = {ext: i for i, ext in enumerate(_MEDIA_EXTENSIONS)}
            found: dict[str, tuple[int, str]] = {}
            try:
                entries = list(os.scandir(folder))
            except OSError:
                entries = []
            for e in entries:
                stem, ext = os.path.splitext(e.name)
                r = rank.get(ext.lower())
                if r is not None and e.is_file() and (stem not in found or r < found[stem][0]):
                    found[stem] = (r, os.path.abspath(e.path))
            self._stems[folder] = {stem: p for stem, (_, p) in found.items()}
        return self._stems[folder]


def _wanted_splits(split: str | None) -> set[str] | None:
    if split is None or split.strip().lower() in ALL_SPLITS:
        return None
    return {s.strip() for s in split.split(",") if s.strip()}


def _filter_split(rows: list[RawPair], split: str | None, source: str) -> list[RawPair]:
    wanted = _wanted_splits(split)
    if wanted is None or all(r.split is None for r in rows):
        return rows  # the file is the split (COCO captions, CSVs) or every split is wanted
    kept = [r for r in rows if r.split is None or r.split in wanted]
    if not kept:
        present = sorted({r.split for r in rows if r.split is not None})
        raise DatasetError(
            f"{source}: no pairs in split {split!r}; splits in the file: {', '.join(present)} "
            "(use split 'all' for every pair)"
        )
    return kept


def _modality(rows: list[RawPair], paths: list[str], source: str) -> str:
    seen: set[str] = set()
    for r, p in zip(rows, paths, strict=True):
        kind = r.modality or EXTENSION_MODALITY.get(os.path.splitext(p)[1].lower())
        if kind in ("image", "video", "audio"):
            seen.add(kind)
    if len(seen) > 1:
        raise DatasetError(
            f"{source}: mixes modalities ({', '.join(sorted(seen))}); use one per file"
        )
    return seen.pop() if seen else "image"


def read_pairs(
    path: str | os.PathLike[str],
    *,
    split: str | None = "test",
    root: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> PairSet:
    """Read a pairs dataset; the format is detected from the content.

    ``split`` keeps rows of that split (a comma-separated list is allowed;
    ``None`` or ``"all"`` keeps everything). Files without split information
    are the split themselves and are read whole. ``root`` is the folder media
    paths are relative to (default: the file's folder). ``limit`` keeps the
    first N media items (with all their captions) that exist.
    """
    src = Path(os.path.expanduser(os.fspath(path)))
    if not src.is_file():
        raise DatasetError(f"pairs file not found: {src}")
    try:
        text = read_text_file(src, max_bytes=MAX_FILE_BYTES)
    except DecodeError as exc:
        raise DatasetError(f"{src}: {exc.reason}") from exc
    parsed = detect(text, str(src))
    rows = _filter_split(parsed.rows, split, str(src))
    base = Path(os.path.expanduser(os.fspath(root))) if root is not None else src.parent
    if root is not None and not base.is_dir():
        raise DatasetError(f"media root is not a folder: {base}")
    resolver = _Resolver(base)
    index: dict[str, int] = {}
    media: list[str] = []
    missing: dict[str, None] = {}
    kept: list[RawPair] = []
    kept_paths: list[str] = []
    empty = 0
    for row in rows:
        if not row.caption:
            empty += 1
            continue
        found = resolver.resolve(row.refs)
        if found is None:
            missing[row.refs[0]] = None
            continue
        if found not in index:
            if limit is not None and len(media) >= limit:
                continue
            index[found] = len(media)
            media.append(found)
        kept.append(row)
        kept_paths.append(found)
    if empty:
        log.warning("%s: skipped %d rows with an empty caption", src, empty)
    if missing:
        log.warning(
            "%s: %d media files not found under %s (their pairs are dropped), e.g. %s",
            src,
            len(missing),
            base,
            next(iter(missing)),
        )
    if not kept:
        raise DatasetError(
            f"{src}: no usable pairs ({len(rows)} rows, {len(missing)} media files missing "
            f"under {base}; use --root to say where the media are)"
        )
    wanted = _wanted_splits(split)
    keys: dict[int, str] = {}
    for row, p in zip(kept, kept_paths, strict=True):
        if row.extra.get(MATCH_KEY) is not None:
            keys.setdefault(index[p], str(row.extra[MATCH_KEY]))
    name = src.stem + (f":{','.join(sorted(wanted))}" if wanted else "")
    return PairSet(
        media=media,
        captions=[r.caption for r in kept],
        caption_media=[index[p] for p in kept_paths],
        modality=_modality(kept, kept_paths, str(src)),
        name=name,
        extra=[r.extra for r in kept],
        format=parsed.format,
        missing=list(missing),
        media_keys=[keys.get(m, f"\0{p}") for m, p in enumerate(media)] if keys else None,
    )
