"""What an ingest run did: counts and per-file failures with reasons."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


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
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return len(self.failures)

    def fail(self, path: str, stage: str, reason: str) -> None:
        self.failures.append(Failure(path, stage, reason))

    def reasons(self) -> dict[str, int]:
        """Failure counts by reason, most common first."""
        return dict(Counter(f.reason for f in self.failures).most_common())

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
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
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
        if self.previously_failed:
            parts.append(f"{self.previously_failed} skipped (failed before, unchanged)")
        return ", ".join(parts) + f" in {self.seconds:.1f}s"
