"""Parsers for the caption-pair formats people have, each yielding raw (media refs, caption) rows.

A parser only reads the annotation file; it does not touch media. Each row
names its media by one or more candidate paths (``refs``), relative to the
media root or absolute, tried in order. A ref ending in ``.*`` means "this
name with any media extension" (MSR-VTT videos and AudioCaps/Clotho audio
come in several containers). :mod:`mmsearch.eval.datasets` resolves refs,
filters splits and assembles the :class:`~mmsearch.eval.datasets.PairSet`.

Formats (detected from content by :func:`detect`):

- ``karpathy``: Flickr30k/COCO Karpathy-split JSON,
  ``{"images": [{"filename", "filepath"?, "split", "sentences": [{"raw"}]}]}``.
- ``coco``: COCO captions JSON, ``{"images": [{"id", "file_name"}],
  "annotations": [{"image_id", "caption"}]}`` (the file is the split).
- ``msrvtt``: ``MSRVTT_data.json``, ``{"videos": [{"video_id", "split"}],
  "sentences": [{"video_id", "caption"}]}``; media ``<video_id>.<ext>``.
- ``msrvtt-csv``: JSFusion / 1k-A test CSV ``key,vid_key,video_id,sentence``.
- ``audiocaps``: CSV ``audiocap_id,youtube_id,start_time,caption``; the media
  file is the first found of ``<youtube_id>_<start>``, ``<youtube_id>``,
  ``Y<youtube_id>_<start>``, ``Y<youtube_id>``, ``Y<youtube_id>_<s.000>_<s+10.000>``
  (AudioSet naming) or ``<audiocap_id>``, each with any audio extension
  (``<start>`` as written in the CSV or as an integer).
- ``clotho``: CSV ``file_name,caption_1,...,caption_5`` (five rows per clip).
- ``jsonl``: one ``{"media": path, "caption": text, ...extra}`` per line
  (``image``/``video``/``audio``/``path`` are aliases of ``media``, ``text``
  of ``caption``; ``caption`` may be a list of captions; an optional
  ``split`` field); a JSON list of such objects is read the same way.
- ``csv``: a CSV (or TSV) with a header holding a media column and a caption
  column (same aliases); other columns become extra fields.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mmsearch.errors import MMSearchError


class DatasetError(MMSearchError):
    """A pairs file could not be read: unknown format, missing fields, nothing left to use."""


MEDIA_KEYS: tuple[str, ...] = ("media", "image", "video", "audio", "path")
"""Accepted names of the media column/field, in order of preference."""
CAPTION_KEYS: tuple[str, ...] = ("caption", "text")
KEY_MODALITY: dict[str, str] = {"image": "image", "video": "video", "audio": "audio"}
"""Media keys that say the modality themselves."""


@dataclass
class RawPair:
    """One caption of one media item, before its media path is resolved."""

    refs: tuple[str, ...]
    caption: str
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    modality: str | None = None
    """Set when the format (or the media key) says it; else judged from the extension."""


@dataclass(frozen=True)
class Parsed:
    """A parsed annotation file: its format name and rows."""

    format: str
    rows: list[RawPair]


# ----------------------------------------------------------------------------- detection


def detect(text: str, source: str) -> Parsed:
    """Parse ``text`` (the content of ``source``) in whichever supported format it is."""
    body = text.lstrip("\ufeff").strip()
    if not body:
        raise DatasetError(f"{source}: empty file")
    if body[0] in "[{":
        first = body.split("\n", 1)[0].strip()
        try:
            head = json.loads(first)
        except json.JSONDecodeError:
            head = None
        if isinstance(head, dict) and _media_key(head) is not None:
            return Parsed("jsonl", list(_jsonl_rows(body, source)))
        try:
            doc = json.loads(body)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{source}: not valid JSON or JSONL ({exc})") from None
        return _from_json(doc, source)
    return _from_csv(body, source)


def _from_json(doc: Any, source: str) -> Parsed:
    if isinstance(doc, list):
        return Parsed("jsonl", [r for i, d in enumerate(doc, 1) for r in _pair_rows(d, source, i)])
    if not isinstance(doc, dict):
        raise DatasetError(f"{source}: expected a JSON object or list")
    images = doc.get("images")
    if isinstance(images, list) and isinstance(doc.get("annotations"), list):
        return Parsed("coco", list(_coco_rows(doc, source)))
    if isinstance(images, list) and all(
        isinstance(im, dict) and "sentences" in im for im in images
    ):
        return Parsed("karpathy", list(_karpathy_rows(images, source)))
    if isinstance(doc.get("videos"), list) and isinstance(doc.get("sentences"), list):
        return Parsed("msrvtt", list(_msrvtt_rows(doc, source)))
    if _media_key(doc) is not None:
        return Parsed("jsonl", list(_pair_rows(doc, source, 1)))
    raise DatasetError(
        f"{source}: unknown JSON layout (top-level keys: {', '.join(sorted(doc)[:8])}); "
        "expected Karpathy split, COCO captions, MSR-VTT or JSONL pairs"
    )


def _from_csv(body: str, source: str) -> Parsed:
    header_line = body.split("\n", 1)[0]
    delimiter = "\t" if header_line.count("\t") > header_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(body), delimiter=delimiter)
    columns = {c.strip().lower() for c in reader.fieldnames or []}
    records = ({(k or "").strip().lower(): v for k, v in r.items()} for r in reader)
    if {"video_id", "sentence"} <= columns:
        return Parsed("msrvtt-csv", list(_msrvtt_csv_rows(records)))
    if {"youtube_id", "start_time", "caption"} <= columns:
        return Parsed("audiocaps", list(_audiocaps_rows(records)))
    if "file_name" in columns and "caption_1" in columns:
        caption_cols = sorted(c for c in columns if c.startswith("caption_"))
        return Parsed("clotho", list(_clotho_rows(records, caption_cols)))
    if _media_key(dict.fromkeys(columns)) is not None and _caption_key(columns) is not None:
        return Parsed(
            "csv", [r for i, d in enumerate(records, 2) for r in _pair_rows(d, source, i)]
        )
    raise DatasetError(
        f"{source}: unknown format (CSV columns: {', '.join(sorted(columns)[:8]) or 'none'}); "
        "expected Karpathy/COCO/MSR-VTT JSON, MSR-VTT/AudioCaps/Clotho CSV, "
        "or JSONL/CSV with media and caption"
    )


# ----------------------------------------------------------------------------- plain pairs


def _media_key(d: dict[str, Any]) -> str | None:
    return next((k for k in MEDIA_KEYS if k in d), None)


def _caption_key(d: Any) -> str | None:
    return next((k for k in CAPTION_KEYS if k in d), None)


def _jsonl_rows(body: str, source: str) -> Iterator[RawPair]:
    for lineno, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{source}:{lineno}: not valid JSON ({exc.msg})") from None
        yield from _pair_rows(d, source, lineno)


def _pair_rows(d: Any, source: str, where: int) -> Iterator[RawPair]:
    if not isinstance(d, dict):
        raise DatasetError(f"{source}:{where}: expected an object with media and caption")
    mkey, ckey = _media_key(d), _caption_key(d)
    if mkey is None or ckey is None or not d[mkey]:
        raise DatasetError(
            f"{source}:{where}: needs a media field ({'/'.join(MEDIA_KEYS)}) "
            f"and a caption field ({'/'.join(CAPTION_KEYS)})"
        )
    captions = d[ckey] if isinstance(d[ckey], list) else [d[ckey]]
    split = d.get("split")
    extra = {k: v for k, v in d.items() if k not in (mkey, ckey)}
    for caption in captions:
        if not isinstance(caption, str):
            raise DatasetError(f"{source}:{where}: caption is not text")
        yield RawPair(
            (str(d[mkey]),),
            caption.strip(),
            str(split) if split not in (None, "") else None,
            dict(extra),
            KEY_MODALITY.get(mkey),
        )


# ----------------------------------------------------------------------------- images


def _karpathy_rows(images: list[dict[str, Any]], source: str) -> Iterator[RawPair]:
    for i, im in enumerate(images):
        name = im.get("filename")
        if not name:
            raise DatasetError(f"{source}: images[{i}] has no filename")
        refs = (f"{im['filepath']}/{name}", name) if im.get("filepath") else (name,)
        for s in im.get("sentences") or []:
            caption = s.get("raw") or " ".join(s.get("tokens") or [])
            extra = {"image_id": im.get("imgid", im.get("cocoid")), "sentid": s.get("sentid")}
            yield RawPair(refs, caption.strip(), im.get("split"), extra, "image")


def _coco_rows(doc: dict[str, Any], source: str) -> Iterator[RawPair]:
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for ann in doc["annotations"]:
        by_image.setdefault(ann.get("image_id"), []).append(ann)
    for i, im in enumerate(doc["images"]):
        if "file_name" not in im or "id" not in im:
            raise DatasetError(f"{source}: images[{i}] needs id and file_name")
        for ann in by_image.get(im["id"], []):
            extra = {"image_id": im["id"], "annotation_id": ann.get("id")}
            yield RawPair((im["file_name"],), str(ann["caption"]).strip(), None, extra, "image")


# ----------------------------------------------------------------------------- video


def _msrvtt_rows(doc: dict[str, Any], source: str) -> Iterator[RawPair]:
    split_of = {v["video_id"]: v.get("split") for v in doc["videos"] if "video_id" in v}
    by_video: dict[str, list[dict[str, Any]]] = {}
    for s in doc["sentences"]:
        by_video.setdefault(s.get("video_id"), []).append(s)
    for vid, split in split_of.items():
        for s in by_video.get(vid, []):
            extra = {"video_id": vid, "sen_id": s.get("sen_id")}
            yield RawPair((f"{vid}.*",), str(s["caption"]).strip(), split, extra, "video")


def _msrvtt_csv_rows(records: Iterator[dict[str, Any]]) -> Iterator[RawPair]:
    for r in records:
        vid = (r.get("video_id") or "").strip()
        extra = {"key": r.get("key"), "video_id": vid}
        yield RawPair((f"{vid}.*",), (r.get("sentence") or "").strip(), None, extra, "video")


# ----------------------------------------------------------------------------- audio


def _audiocaps_refs(ytid: str, start: str, audiocap_id: str) -> tuple[str, ...]:
    stems = [f"{ytid}_{start}", f"Y{ytid}_{start}"]
    try:
        s = float(start)
        stems += [f"{ytid}_{int(s)}", f"Y{ytid}_{int(s)}", f"Y{ytid}_{s:.3f}_{s + 10:.3f}"]
    except ValueError:
        pass
    stems += [ytid, f"Y{ytid}"]
    if audiocap_id:
        stems.append(audiocap_id)
    return tuple(f"{stem}.*" for stem in dict.fromkeys(stems))


def _audiocaps_rows(records: Iterator[dict[str, Any]]) -> Iterator[RawPair]:
    for r in records:
        ytid, start = (r.get("youtube_id") or "").strip(), (r.get("start_time") or "").strip()
        acid = (r.get("audiocap_id") or "").strip()
        extra = {"audiocap_id": acid, "youtube_id": ytid, "start_time": start}
        refs = _audiocaps_refs(ytid, start, acid)
        yield RawPair(refs, (r.get("caption") or "").strip(), None, extra, "audio")


def _clotho_rows(records: Iterator[dict[str, Any]], caption_cols: list[str]) -> Iterator[RawPair]:
    for r in records:
        name = (r.get("file_name") or "").strip()
        for col in caption_cols:
            caption = (r.get(col) or "").strip()
            if caption:
                yield RawPair((name,), caption, None, {"caption_field": col}, "audio")
