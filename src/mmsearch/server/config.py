"""Server settings, and the rules that make a server safe to leave running.

Defaults are safe: bind 127.0.0.1, no CORS, no server-side paths, bounded uploads.
:func:`check_bind` refuses to listen on a non-loopback address without a token.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from mmsearch.errors import MMSearchError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
TOKEN_ENV = "MMSEARCH_TOKEN"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


class ServerConfigError(MMSearchError):
    """The server was asked to start in an unsafe or impossible way."""


@dataclass
class ServerConfig:
    """Everything ``create_app`` needs besides the encoders."""

    library: Path
    model: str | None = None
    """Model spec, for a new library (an existing one uses its recorded model)."""
    token: str | None = None
    """API token; when set every request but ``GET /health`` must carry it."""
    allow_roots: list[Path] = field(default_factory=list)
    """Folders under which server-side paths may be added; none = the feature is off."""
    cors_origins: list[str] = field(default_factory=list)
    """Origins allowed to call the API from a browser page of another site; none = off."""
    allowed_hosts: list[str] = field(default_factory=list)
    """Extra ``Host`` header names accepted (loopback names always are); see security."""
    max_upload_bytes: int = 100 * 1024 * 1024
    """Largest request body (an upload, a query image as base64 JSON)."""
    max_pixels: int = 50_000_000
    """Largest image (width x height) accepted as an upload or a query."""
    max_duration_s: float = 3 * 3600.0
    """Longest video or audio file accepted as an upload."""
    max_query_clip_s: float = 120.0
    """Longest video or audio clip accepted as a query."""
    max_k: int = 1000
    readers: int = 0
    """Read-only library instances searching in parallel; 0 = by CPU count (2 to 4)."""
    upload_dir: Path | None = None
    """Where uploaded files are kept (they become items); default ``<library>/uploads``."""
    thumb_cache_bytes: int = 64 * 1024 * 1024
    job_workers: int | None = 0
    """Decode processes of an ingest job (IngestOptions.workers); 0 = in the job process."""
    job_batch_size: int = 64
    """Files per commit in ingest jobs (searches see each commit)."""
    rerankers: list[str] = field(default_factory=list)
    """Reranker specs loaded at start (``--reranker``); requests choose among them by name."""
    warm_worker: bool = True
    """Start the job worker (loading its copy of the models) with the server, so the
    first upload is as quick as the next; False: at the first job (it stays warm after)."""

    def __post_init__(self) -> None:
        self.library = Path(os.path.expanduser(os.fspath(self.library))).absolute()
        self.allow_roots = [Path(os.path.realpath(os.path.expanduser(r))) for r in self.allow_roots]
        if self.token is not None and not self.token.strip():
            raise ServerConfigError("the API token is empty")
        if self.upload_dir is None:
            self.upload_dir = self.library / "uploads"
        else:
            self.upload_dir = Path(os.path.expanduser(os.fspath(self.upload_dir))).absolute()

    @property
    def uploads(self) -> Path:
        assert self.upload_dir is not None
        return self.upload_dir

    def reader_count(self) -> int:
        if self.readers > 0:
            return self.readers
        return max(2, min(4, os.cpu_count() or 1))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only reaches this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token (anyone on the network could
    read the library and, with writes, change it)."""
    if not is_loopback(host) and not token:
        raise ServerConfigError(
            f"refusing to listen on {host} without an API token: anyone who can reach it "
            f"could search and change the library. Set one with --token or ${TOKEN_ENV}, "
            f"or bind {DEFAULT_HOST}."
        )
