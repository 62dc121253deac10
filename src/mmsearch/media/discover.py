"""Walk files and folders and say what to index, with sidecars attached and reasons for the rest.

:func:`discover` yields a :class:`Discovered` for every image, text, video or
audio file to index and a :class:`Skipped` (with a short, user-facing reason) for every file
that cannot be: unsupported type, unreadable, broken symlink, symlink loop,
special file, empty file. It never raises for a bad file, and it never opens a
FIFO or device.

Sidecars: an image ``cat.jpg`` takes its caption from ``cat.jpg.txt``,
``cat.txt``, ``cat.jpg.caption`` or ``cat.caption`` and its metadata from
``cat.jpg.json`` or ``cat.json`` in the same folder (the first non-empty one
wins). Files named like an image's caption are never indexed as text items
themselves; JSON files are never items. Videos and audio files take metadata
the same way; a video ``clip.mp4`` also takes its subtitle files (``clip.srt``,
``clip.vtt``, ``clip.en.srt``, ``clip.zh-CN.vtt``: see
:func:`mmsearch.media.subtitles.subtitle_sidecars`). Subtitle files are never
items themselves, and one with no video is passed over quietly, like an
orphaned caption.

Paths are absolute but symlinks are not resolved, so results name files the
way the user reached them. Non-UTF-8 names survive as surrogate escapes
(``os.fsdecode``); use :func:`display_path` to print them.
"""

from __future__ import annotations

import bisect
import errno
import functools
import json
import logging
import os
import stat
import sys
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmsearch.errors import DecodeError
from mmsearch.media.probe import HEAD_BYTES, classify, extension
from mmsearch.media.subtitles import SUBTITLE_EXTENSIONS, subtitle_sidecars
from mmsearch.media.text import EMPTY_TEXT, read_text_file

log = logging.getLogger(__name__)

CAPTION_EXTENSIONS = (".txt", ".caption")
META_EXTENSIONS = (".json",)
_QUIET_EXTENSIONS = frozenset((".json", ".caption", *SUBTITLE_EXTENSIONS))
"""Sidecar kinds: never items themselves, and not worth a "skipped" line when orphaned."""

MAX_META_BYTES = 1_000_000
MAX_CAPTION_BYTES = 1_000_000


@dataclass(frozen=True)
class Discovered:
    """A file to index."""

    path: str
    """Absolute, normalised, symlinks not resolved; may hold surrogate escapes."""
    modality: str
    size: int
    mtime: float
    caption_path: str | None = None
    meta_path: str | None = None
    subtitle_paths: tuple[str, ...] = ()
    """Subtitle files of a video, untagged names first (``clip.srt``, then ``clip.en.srt``)."""


@dataclass(frozen=True)
class Skipped:
    """A file or folder that will not be indexed, and why (short, user-facing)."""

    path: str
    reason: str


def discover(
    roots: Sequence[str | os.PathLike[str]],
    *,
    follow_symlinks: bool = True,
    include_hidden: bool = False,
) -> Iterator[Discovered | Skipped]:
    """Yield what to index under ``roots`` (files or folders), in a deterministic order.

    Folders are walked depth first with names sorted; each folder's files come
    before its subfolders. Roots named explicitly are used even when hidden or
    symlinked. With ``follow_symlinks`` (the default), symlinked folders are
    walked after the real folders of the same root, so a folder reachable both
    ways is listed under its real path; a link back to one of its own parent
    folders is reported once as a symlink loop. A folder is walked at most once
    per call.
    """
    if isinstance(roots, (str, bytes, os.PathLike)):  # one root given bare, not in a list
        roots = [roots]  # type: ignore[list-item]
    walker = _Walker(follow_symlinks=follow_symlinks, include_hidden=include_hidden)
    for root in roots:
        yield from walker.walk_root(root)


def display_path(path: str) -> str:
    """A printable form of ``path``: undecodable bytes and control characters as escapes."""
    try:
        raw = os.fsencode(path)
        text = raw.decode(sys.getfilesystemencoding(), "backslashreplace")
    except UnicodeError:  # lone surrogates that are not byte escapes
        text = path.encode("utf-8", "backslashreplace").decode("utf-8")
    if any(unicodedata.category(c) == "Cc" for c in text):
        text = "".join(
            c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) == "Cc" else c
            for c in text
        )
    return text


def read_sidecar_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON metadata sidecar; it must hold one JSON object."""
    text = read_text_file(path, max_bytes=MAX_META_BYTES)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(
            f"invalid JSON in metadata sidecar (line {exc.lineno}: {exc.msg})"
        ) from exc
    if not isinstance(data, dict):
        raise DecodeError(f"metadata sidecar must hold a JSON object, not {type(data).__name__}")
    return data


def read_caption(path: str | os.PathLike[str]) -> str:
    """Read a caption sidecar as stripped text ('' when it holds only whitespace).

    Raises :class:`DecodeError` for a missing, binary or oversized file.
    """
    try:
        return read_text_file(path, max_bytes=MAX_CAPTION_BYTES).strip()
    except DecodeError as exc:
        if exc.reason == EMPTY_TEXT:
            return ""
        raise


# ----------------------------------------------------------------------------- walking


@dataclass
class _Entry:
    """One regular file in a folder being processed."""

    name: str
    path: str
    st: os.stat_result
    modality: str | None = None
    reason: str | None = None


@dataclass
class _Walker:
    follow_symlinks: bool
    include_hidden: bool
    visited: set[tuple[int, int]] = field(default_factory=set)
    file_roots: set[str] = field(default_factory=set)

    def walk_root(self, root: str | os.PathLike[str]) -> Iterator[Discovered | Skipped]:
        path = os.path.abspath(os.path.expanduser(os.fsdecode(root)))
        try:
            st = os.stat(path)
        except OSError as exc:
            yield Skipped(path, _stat_reason(exc, os.path.islink(path)))
            return
        if stat.S_ISDIR(st.st_mode):
            yield from self._walk_tree(path, st)
        elif stat.S_ISREG(st.st_mode):
            parent = os.path.dirname(path)
            if path in self.file_roots or _dir_key(parent) in self.visited:
                return  # already listed, alone or with its folder
            self.file_roots.add(path)
            entry = _Entry(os.path.basename(path), path, st)
            results = _emit_files(
                parent,
                [entry],
                functools.partial(_size_on_disk, parent),
                functools.partial(_names_in, parent),
            )
            yield from results or [Skipped(path, _unsupported_reason(path))]
        else:
            yield Skipped(path, "not a regular file")

    def _walk_tree(self, top: str, st: os.stat_result) -> Iterator[Discovered | Skipped]:
        if _key(st) in self.visited:
            return
        self.visited.add(_key(st))
        stack: list[tuple[str, frozenset[tuple[int, int]]]] = [(top, frozenset({_key(st)}))]
        linked: deque[tuple[str, os.stat_result, frozenset[tuple[int, int]]]] = deque()
        while stack or linked:
            if not stack:  # symlinked folders last, so folders reachable both ways get real paths
                path, lst, ancestors = linked.popleft()
                if _key(lst) in ancestors:
                    yield Skipped(path, "symlink loop")
                    continue
                if _key(lst) in self.visited:
                    log.debug("already walked: %s", display_path(path))
                    continue
                self.visited.add(_key(lst))
                stack.append((path, ancestors | {_key(lst)}))
            dirpath, ancestors = stack.pop()
            results, folders = self._list_folder(dirpath)
            yield from results
            subdirs = []
            for path, dst, is_link in folders:
                if is_link:
                    linked.append((path, dst, ancestors))
                elif _key(dst) not in self.visited:
                    self.visited.add(_key(dst))
                    subdirs.append((path, ancestors | {_key(dst)}))
            stack.extend(reversed(subdirs))

    def _list_folder(
        self, dirpath: str
    ) -> tuple[list[Discovered | Skipped], list[tuple[str, os.stat_result, bool]]]:
        """Results for the folder's files, and (path, stat, is_symlink) of its subfolders."""
        try:
            with os.scandir(dirpath) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            return [Skipped(dirpath, _folder_reason(exc))], []
        results: list[Discovered | Skipped] = []
        files: list[_Entry] = []
        folders: list[tuple[str, os.stat_result, bool]] = []
        for e in entries:
            if not self.include_hidden and e.name.startswith("."):
                continue
            if self.file_roots and e.path in self.file_roots:
                continue  # named as a root earlier and listed then
            is_link = e.is_symlink()
            if is_link and not self.follow_symlinks:
                log.debug("symlink not followed: %s", display_path(e.path))
                continue
            try:
                st = e.stat(follow_symlinks=True)
            except OSError as exc:
                results.append(Skipped(e.path, _stat_reason(exc, is_link)))
                continue
            if stat.S_ISDIR(st.st_mode):
                folders.append((e.path, st, is_link))
            elif stat.S_ISREG(st.st_mode):
                files.append(_Entry(e.name, e.path, st))
            else:
                results.append(Skipped(e.path, "not a regular file"))
        sizes = {f.name: f.st.st_size for f in files}
        results.extend(_emit_files(dirpath, files, sizes.get, lambda: list(sizes)))
        results.sort(key=lambda r: r.path)
        return results, folders


def _emit_files(
    dirpath: str,
    files: list[_Entry],
    size_of: Callable[[str], int | None],
    names: Callable[[], list[str]],
) -> list[Discovered | Skipped]:
    """Classify the regular files of one folder and pair media with their sidecars.

    ``size_of(name)`` is the size of the regular file ``name`` in the folder, or None;
    ``names()`` lists the folder's file names (asked only when a video needs subtitles).
    """
    for f in files:
        _classify_entry(f)
    sorted_names: list[str] | None = None
    captions: set[str] = set()
    paired: dict[str, Discovered] = {}
    for f in files:
        if f.modality not in ("image", "video", "audio"):
            continue
        caption = None
        if f.modality == "image":
            caps = _sidecars(f.name, CAPTION_EXTENSIONS, size_of)
            captions.update(caps)  # all of them: a caption is never indexed as a text item
            caption = next((c for c in caps if size_of(c)), None)  # empty ones not attached
        meta = next((m for m in _sidecars(f.name, META_EXTENSIONS, size_of) if size_of(m)), None)
        subs: list[str] = []
        if f.modality == "video":
            if sorted_names is None:
                sorted_names = sorted(names())
            nearby = _with_prefix(sorted_names, os.path.splitext(f.name)[0])
            subs = [s for s in subtitle_sidecars(f.name, nearby) if size_of(s)]
        paired[f.name] = Discovered(
            f.path,
            f.modality,
            f.st.st_size,
            f.st.st_mtime,
            caption_path=os.path.join(dirpath, caption) if caption else None,
            meta_path=os.path.join(dirpath, meta) if meta else None,
            subtitle_paths=tuple(os.path.join(dirpath, s) for s in subs),
        )
    out: list[Discovered | Skipped] = []
    for f in files:
        if f.name in paired:
            out.append(paired[f.name])
        elif f.name in captions:
            continue
        elif f.modality is not None:
            out.append(Discovered(f.path, f.modality, f.st.st_size, f.st.st_mtime))
        elif f.reason is not None:
            out.append(Skipped(f.path, f.reason))
    return out


def _classify_entry(f: _Entry) -> None:
    ext = extension(f.name)
    if ext in _QUIET_EXTENSIONS:
        return
    if f.st.st_size == 0:
        f.reason = "empty file"
        return
    try:
        with open(f.path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as exc:
        f.reason = _stat_reason(exc, False)
        return
    f.modality, f.reason = classify(f.name, head)


def _sidecars(
    image_name: str, extensions: Iterable[str], size_of: Callable[[str], int | None]
) -> list[str]:
    """Names of the sidecars of ``image_name`` present in its folder, best first."""
    stem = os.path.splitext(image_name)[0]
    found: list[str] = []
    for ext in extensions:
        for base in (image_name, stem):
            for candidate in (base + ext, base + ext.upper()):
                if (
                    candidate != image_name
                    and candidate not in found
                    and size_of(candidate) is not None
                ):
                    found.append(candidate)
    return found


def _with_prefix(sorted_names: list[str], prefix: str) -> list[str]:
    """The names that start with ``prefix``, found by bisection (folders can be large)."""
    lo = bisect.bisect_left(sorted_names, prefix)
    hi = lo
    while hi < len(sorted_names) and sorted_names[hi].startswith(prefix):
        hi += 1
    return sorted_names[lo:hi]


def _names_in(dirpath: str) -> list[str]:
    try:
        return os.listdir(dirpath)
    except OSError:
        return []


def _size_on_disk(dirpath: str, name: str) -> int | None:
    try:
        st = os.stat(os.path.join(dirpath, name))
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _unsupported_reason(path: str) -> str:
    ext = extension(path)
    return f"unsupported file type ({ext or 'no extension'})"


def _key(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def _dir_key(path: str) -> tuple[int, int] | None:
    try:
        return _key(os.stat(path))
    except OSError:
        return None


def _stat_reason(exc: OSError, is_link: bool) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(exc, FileNotFoundError):
        return "broken symlink" if is_link else "no such file or directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot access ({exc.strerror or exc})"


def _folder_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, NotADirectoryError):
        return "not a folder"
    return f"cannot read folder ({exc.strerror or exc})"
