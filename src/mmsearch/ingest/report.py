"""What an ingest run did: counts and per-file failures with reasons."""

from __future__ import annotations

import errno
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mmsearch.errors import LibraryError


@dataclass(frozen=True)
class Failure:
    path: str
    stage: str
    reason: str


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0
    removed: int = 0
    previously_failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    skips: list[Failure] = field(default_factory=list)
    """Files passed over on purpose (``stage`` is ``skipped`` or ``excluded``): types
    mmsearch does not index, hidden files, second paths to one file, user exclusions."""
    seconds: float = 0.0
    interrupted: bool = False
    error: str | None = None
    """Why the run stopped early (a full disk, say); what it committed is kept."""
    reembed_pending: int = 0
    """Items still waiting to be re-embedded with the library's new model."""
    text_backfilled: int = 0
    """Text segments indexed earlier that got their text-space vector in this run (the
    library's text space is new, or a run stopped between a commit and its text vectors)."""

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def skipped(self) -> int:
        return len(self.skips)

    def fail(self, path: str, stage: str, reason: str) -> None:
        self.failures.append(Failure(path, stage, reason))

    def skip(self, path: str, kind: str, reason: str) -> None:
        self.skips.append(Failure(path, kind, reason))

    def reasons(self) -> dict[str, int]:
        """Failure counts by reason, most common first."""
        return dict(Counter(f.reason for f in self.failures).most_common())

    def skip_reasons(self) -> dict[str, int]:
        """Skip counts by reason, most common first."""
        return dict(Counter(_reason_kind(f.reason) for f in self.skips).most_common())

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "moved": self.moved,
            "removed": self.removed,
            "previously_failed": self.previously_failed,
            "failed": self.failed,
            "failure_reasons": self.reasons(),
            "failures": [f.__dict__ for f in self.failures],
            "skipped": self.skipped,
            "skip_reasons": self.skip_reasons(),
            "skipped_files": [f.__dict__ for f in self.skips],
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            "error": self.error,
            "reembed_pending": self.reembed_pending,
            "text_backfilled": self.text_backfilled,
        }

    def summary(self) -> str:
        parts = [
            f"{self.added} added",
            f"{self.updated} updated",
            f"{self.unchanged} unchanged",
            f"{self.moved} moved",
            f"{self.removed} removed",
            f"{self.failed} failed",
        ]
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if self.previously_failed:
            parts.append(f"{self.previously_failed} not retried (failed before, unchanged)")
        if self.text_backfilled:
            parts.append(f"{self.text_backfilled} earlier text segments added to the text space")
        return ", ".join(parts) + f" in {self.seconds:.1f}s"


def _reason_kind(reason: str) -> str:
    """A reason to count by: ``same file as /a/b.jpg`` counts as one kind of reason."""
    return "same file as another path" if reason.startswith("same file as ") else reason


class IngestAborted(LibraryError):
    """A run stopped for a reason outside the files (a full disk, a read-only library);
    ``report`` says what it did before (all of it committed)."""

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


def storage_problem(exc: BaseException) -> str | None:
    """A short reason when ``exc`` means the library cannot be written (full disk,
    read-only), or None for anything else."""
    text = str(exc).lower()
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk holding the library is full"
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"the library cannot be written ({exc.strerror})"
    if isinstance(exc, sqlite3.OperationalError):
        if "full" in text:
            return "the disk holding the library is full"
        if "readonly" in text or "read-only" in text:
            return "the library cannot be written (read-only)"
    if isinstance(exc, RuntimeError) and "no space left" in text:  # FAISS's write errors
        return "the disk holding the library is full"
    return None
