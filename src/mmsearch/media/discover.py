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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mmsearch.errors import DecodeError
from mmsearch.media.ignore import IGNORE_FILE, IgnoreRules
from mmsearch.media.probe import EXTENSION_MODALITY, HEAD_BYTES, classify, extension
from mmsearch.media.subtitles import SUBTITLE_EXTENSIONS, subtitle_sidecars
from mmsearch.media.text import EMPTY_TEXT, read_text_file
from mmsearch.pathargs import as_paths, resolves_within

log = logging.getLogger(__name__)

CAPTION_EXTENSIONS = (".txt", ".caption")
META_EXTENSIONS = (".json",)
_QUIET_EXTENSIONS = frozenset((".json", ".caption", *SUBTITLE_EXTENSIONS))
"""Sidecar kinds: never items themselves, and not worth a "skipped" line when orphaned."""

HIDDEN_REASON = "hidden (name starts with a dot)"
OUTSIDE_REASON = "symlink to outside the allowed folders"
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
    dev: int | None = None
    ino: int | None = None
    """Device and inode of the file reached (through symlinks)."""


SkipKind = Literal["failed", "skipped", "excluded"]


@dataclass(frozen=True)
class Skipped:
    """A file or folder that will not be indexed, and why (short, user-facing).

    ``kind``: ``failed`` (it should have been indexed but could not be read: a broken
    link, a loop, no permission), ``skipped`` (passed over on purpose: a type mmsearch
    does not index, a hidden file, a second path to a file already found, a link out of
    the allowed folders) or ``excluded`` (kept out by the user: a removed item, an
    ``--exclude`` pattern, a ``.mmsearchignore`` rule).
    """

    path: str
    reason: str
    kind: SkipKind = "failed"


@dataclass(frozen=True)
class WalkRules:
    """What a walk leaves out, beyond what cannot be indexed."""

    within: tuple[str, ...] = ()
    """Resolved folders the walk must not leave (server-side ingest): a symlink that
    resolves outside them is skipped. Empty: no limit (a user indexing their own files)."""
    excluded: Mapping[str, str] = field(default_factory=dict)
    """Exact paths kept out (removed items, orphaned sidecars) -> why."""
    patterns: tuple[str, ...] = ()
    """Gitignore-style patterns, relative to each root (``index --exclude``)."""


def discover(
    roots: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    follow_symlinks: bool = True,
    include_hidden: bool = False,
    rules: WalkRules | None = None,
) -> Iterator[Discovered | Skipped]:
    """Yield what to index under ``roots`` (files or folders), in a deterministic order.

    Folders are walked depth first with names sorted; each folder's files come
    before its subfolders. Roots named explicitly are used even when hidden or
    symlinked. With ``follow_symlinks`` (the default), symlinked folders are
    walked after the real folders of the same root, so a folder reachable both
    ways is listed under its real path; a link back to one of its own parent
    folders is reported once as a symlink loop. A folder is walked at most once
    per call, and a file at most once (a second path to it, through a link, is skipped).
    ``rules`` confine the walk to allowed folders and leave out what the user excluded;
    a root named explicitly is walked even when an exclusion names it.
    """
    walker = _Walker(
        follow_symlinks=follow_symlinks, include_hidden=include_hidden, rules=rules or WalkRules()
    )
    for root in as_paths(roots):  # one root given bare is one root
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


def caption_files(image_path: str) -> list[str]:
    """The caption sidecar files that exist beside ``image_path`` (as discovery pairs them)."""
    folder = os.path.dirname(image_path)
    names = _sidecars(
        os.path.basename(image_path), CAPTION_EXTENSIONS, functools.partial(_size_on_disk, folder)
    )
    return [os.path.join(folder, n) for n in names]


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
    rules: WalkRules = field(default_factory=WalkRules)
    visited: set[tuple[int, int]] = field(default_factory=set)
    file_roots: set[str] = field(default_factory=set)
    files_seen: dict[tuple[int, int], str] = field(default_factory=dict)

    def walk_root(self, root: str | os.PathLike[str]) -> Iterator[Discovered | Skipped]:
        path = os.path.abspath(os.path.expanduser(os.fsdecode(root)))
        try:
            st = os.stat(path)
        except OSError as exc:
            yield Skipped(path, _stat_reason(exc, os.path.islink(path)))
            return
        if not self._inside(path):
            yield Skipped(path, OUTSIDE_REASON, "skipped")
            return
        if stat.S_ISDIR(st.st_mode):
            ignore = IgnoreRules().with_patterns(path, self.rules.patterns, "--exclude")
            yield from self._once(self._walk_tree(path, st, ignore))
        elif stat.S_ISREG(st.st_mode):
            parent = os.path.dirname(path)
            if path in self.file_roots or _dir_key(parent) in self.visited:
                return  # already listed, alone or with its folder
            self.file_roots.add(path)
            entry = _Entry(os.path.basename(path), path, st)
            results = _emit_files(
                parent,
                [entry],
                functools.partial(self._size_on_disk, parent),
                functools.partial(_names_in, parent),
            )
            yield from self._once(results or [Skipped(path, _unsupported_reason(path), "skipped")])
        else:
            yield Skipped(path, "not a regular file")

    def _once(self, found: Iterable[Discovered | Skipped]) -> Iterator[Discovered | Skipped]:
        """``found``, with second paths to a file already listed skipped."""
        for f in found:
            if isinstance(f, Discovered) and f.dev is not None and f.ino is not None:
                first = self.files_seen.setdefault((f.dev, f.ino), f.path)
                if first != f.path:
                    yield Skipped(f.path, f"same file as {display_path(first)}", "skipped")
                    continue
            yield f

    def _inside(self, path: str) -> bool:
        """Whether ``path``, resolved, lies in the allowed folders (always, with no limit)."""
        return not self.rules.within or resolves_within(path, self.rules.within)

    def _walk_tree(
        self, top: str, st: os.stat_result, ignore: IgnoreRules
    ) -> Iterator[Discovered | Skipped]:
        if _key(st) in self.visited:
            return
        self.visited.add(_key(st))
        stack: list[tuple[str, frozenset[tuple[int, int]], IgnoreRules]] = [
            (top, frozenset({_key(st)}), ignore)
        ]
        linked: deque[tuple[str, os.stat_result, frozenset[tuple[int, int]], IgnoreRules]] = deque()
        while stack or linked:
            if not stack:  # symlinked folders last, so folders reachable both ways get real paths
                path, lst, ancestors, rules = linked.popleft()
                if _key(lst) in ancestors:
                    yield Skipped(path, "symlink loop")
                    continue
                if _key(lst) in self.visited:
                    log.debug("already walked: %s", display_path(path))
                    continue
                self.visited.add(_key(lst))
                stack.append((path, ancestors | {_key(lst)}, rules))
            dirpath, ancestors, rules = stack.pop()
            rules = rules.with_file(dirpath)
            results, folders = self._list_folder(dirpath, rules)
            yield from results
            subdirs = []
            for path, dst, is_link in folders:
                if is_link:
                    linked.append((path, dst, ancestors, rules))
                elif _key(dst) not in self.visited:
                    self.visited.add(_key(dst))
                    subdirs.append((path, ancestors | {_key(dst)}, rules))
            stack.extend(reversed(subdirs))

    def _list_folder(
        self, dirpath: str, rules: IgnoreRules
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
            if self.file_roots and e.path in self.file_roots:
                continue  # named as a root earlier and listed then
            passed = self._passed_over(e)
            if passed is not None:
                if passed.reason:
                    results.append(passed)
                continue
            is_link = e.is_symlink()
            try:
                st = e.stat(follow_symlinks=True)
            except OSError as exc:
                results.append(Skipped(e.path, _stat_reason(exc, is_link)))
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            why = rules.reason(e.path, is_dir)
            if why is not None:
                results.append(Skipped(e.path, why, "excluded"))
            elif is_dir:
                folders.append((e.path, st, is_link))
            elif stat.S_ISREG(st.st_mode):
                files.append(_Entry(e.name, e.path, st))
            else:
                results.append(Skipped(e.path, "not a regular file"))
        sizes = {f.name: f.st.st_size for f in files}
        results.extend(self._once(_emit_files(dirpath, files, sizes.get, lambda: list(sizes))))
        results.sort(key=lambda r: r.path)
        return results, folders

    def _passed_over(self, e: os.DirEntry[str]) -> Skipped | None:
        """A Skipped for an entry left out on purpose (reason '' = say nothing), or None."""
        if e.name.startswith(".") and not self.include_hidden:
            return Skipped(e.path, "" if e.name == IGNORE_FILE else HIDDEN_REASON, "skipped")
        why = self.rules.excluded.get(e.path)
        if why is not None:
            return Skipped(e.path, why, "excluded")
        if e.is_symlink():
            if not self.follow_symlinks:
                return Skipped(e.path, "symlink (not followed)", "skipped")
            if not self._inside(e.path):
                return Skipped(e.path, OUTSIDE_REASON, "skipped")
        return None

    def _size_on_disk(self, dirpath: str, name: str) -> int | None:
        path = os.path.join(dirpath, name)
        if self.rules.within and os.path.islink(path) and not self._inside(path):
            return None  # a sidecar that leads out of the allowed folders is no sidecar
        return _size_on_disk(dirpath, name)


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
            dev=f.st.st_dev,
            ino=f.st.st_ino,
        )
    out: list[Discovered | Skipped] = []
    for f in files:
        if f.name in paired:
            out.append(paired[f.name])
        elif f.name in captions:
            continue
        elif f.modality is not None:
            out.append(
                Discovered(
                    f.path,
                    f.modality,
                    f.st.st_size,
                    f.st.st_mtime,
                    dev=f.st.st_dev,
                    ino=f.st.st_ino,
                )
            )
        elif f.reason is not None:
            out.append(Skipped(f.path, f.reason, _skip_kind(f.name, f.reason)))
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


def _skip_kind(name: str, reason: str) -> SkipKind:
    """Types mmsearch does not index are skipped; bad files of indexed types failed."""
    if reason.startswith("unsupported file type") and extension(name) not in EXTENSION_MODALITY:
        return "skipped"
    return "failed"


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
