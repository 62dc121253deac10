"""File-opening helpers shared by the decoders: refuse special files, name OS errors briefly."""

from __future__ import annotations

import os
import stat

from mmsearch.errors import DecodeError


def stat_regular(path: str | os.PathLike[str]) -> os.stat_result:
    """``os.stat`` that refuses anything but a regular file, before it is opened.

    Opening a FIFO would block forever, and a device could be endless.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DecodeError(os_error_reason(exc)) from exc
    if not stat.S_ISREG(st.st_mode):
        raise DecodeError("not a regular file")
    return st


def os_error_reason(exc: OSError) -> str:
    """A short reason for an OS error met while opening or reading a file."""
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "not a regular file"
    return f"cannot read file ({exc.strerror or exc})"
