"""Model hub access shared by the ``hf`` and ``openclip`` backends.

``fetch_repo`` turns a hub repository id into a local folder holding the
files a backend needs:

* online: list the repository once (a short timeout, so an unreachable hub is
  noticed in seconds, not minutes), pick the files (one weight format, not
  every export the repository carries), download what is missing with
  huggingface_hub's progress bars into its usual cache;
* offline (``HF_HUB_OFFLINE=1``) or when the hub cannot be reached: use the
  cached copy;
* neither: raise :class:`ModelNotFoundError` with one message saying which
  model, why, and how to get it onto this machine.

Loading from the returned folder then needs no network at all.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from mmsearch._lazy import require
from mmsearch.errors import ModelNotFoundError

log = logging.getLogger(__name__)

FileSelector = Callable[[Sequence[str]], list[str]]
"""Picks the files to download from a repository's file list (raises ModelNotFoundError)."""

DEFAULT_TIMEOUT_S = 10.0
_TRUE = {"1", "on", "yes", "true"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_CACHE_LAYOUT = re.compile(
    r"models--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\][^/\\]+$"
)


def hub_timeout() -> float:
    """Seconds to wait for the hub before treating it as unreachable (``MMSEARCH_HUB_TIMEOUT``)."""
    try:
        return float(os.environ.get("MMSEARCH_HUB_TIMEOUT", DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def offline_requested() -> bool:
    """True when the user asked for offline use (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def is_hub_id(name: str) -> bool:
    """Whether ``name`` looks like ``org/repo`` (and is not an existing local path)."""
    return bool(_HUB_ID.match(name)) and not Path(name).exists()


def hub_id_from_folder(folder: Path) -> str | None:
    """``org/name`` for a folder inside the hub cache (``models--org--name/snapshots/<rev>``)."""
    m = _CACHE_LAYOUT.search(str(folder.resolve()))
    return f"{m['org']}/{m['name']}" if m else None


def fetch_repo(
    repo_id: str,
    select: FileSelector,
    *,
    spec: str,
    revision: str | None = None,
) -> Path:
    """Return a local snapshot folder of ``repo_id`` holding the files ``select`` picks.

    ``spec`` is what the user asked for; it names the model in error messages.
    """
    hub = require("huggingface_hub")
    errors = require("huggingface_hub.errors")
    if not offline_requested():
        try:
            info = hub.HfApi().model_info(repo_id, revision=revision, timeout=hub_timeout())
        except errors.GatedRepoError as exc:
            raise ModelNotFoundError(
                f"model {spec!r} is gated on the hub: accept its terms on the model page, "
                "then log in (`hf auth login`) or set HF_TOKEN"
            ) from exc
        except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError) as exc:
            raise ModelNotFoundError(
                f"model {spec!r} was not found on the hub ({_endpoint()}): check the name"
            ) from exc
        except errors.HFValidationError as exc:
            raise ModelNotFoundError(f"{spec!r} is not a valid model name: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - any transport failure means "unreachable"
            log.warning("model hub %s unreachable (%s); trying the local cache", _endpoint(), exc)
        else:
            try:
                files = select([s.rfilename for s in info.siblings or []])
            except ModelNotFoundError as exc:
                raise ModelNotFoundError(f"cannot load model {spec!r}: {exc}") from exc
            try:
                folder = hub.snapshot_download(
                    repo_id,
                    revision=info.sha or revision,
                    allow_patterns=files,
                    etag_timeout=hub_timeout(),
                )
                return Path(folder)
            except Exception as exc:  # noqa: BLE001 - lost the hub mid-download: try the cache
                log.warning("download of %s failed (%s); trying the local cache", repo_id, exc)
    return _cached_snapshot(repo_id, revision=revision, spec=spec)


def _cached_snapshot(repo_id: str, *, revision: str | None, spec: str) -> Path:
    hub = require("huggingface_hub")
    try:
        return Path(hub.snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - not cached, in whatever way the cache says it
        raise ModelNotFoundError(unreachable_message(spec, repo_id)) from exc


def unreachable_message(spec: str, repo_id: str) -> str:
    """The one message for "no hub and not cached": which model, why, and what to do."""
    why = (
        "offline mode is on (HF_HUB_OFFLINE)"
        if offline_requested()
        else f"the model hub ({_endpoint()}) could not be reached"
    )
    return (
        f"cannot load model {spec!r}: {why} and it is not in the local cache ({_cache_dir()}). "
        f"To use it without a hub: download it on a machine with network access "
        f"(e.g. `hf download {repo_id} --local-dir {repo_id.split('/')[-1]}`), copy the folder "
        "here and pass `--model /path/to/folder`; or set HF_ENDPOINT to a reachable mirror; "
        "or copy a filled cache here and set HF_HUB_OFFLINE=1; "
        "or run `mmsearch demo` to use the built-in offline model."
    )


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def _cache_dir() -> str:
    try:
        constants = require("huggingface_hub.constants")
        return str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers/open_clip
        return "~/.cache/huggingface/hub"


CARD_FILE = "mmsearch_card.json"


def card_model_id(folder: Path) -> str | None:
    """The identity ``mmsearch train`` wrote into a model folder's card, if it has one.

    A fine-tuned folder keeps its base's config (``_name_or_path`` names the base), so
    without this it would pass for the base model and share its space.
    """
    try:
        card = json.loads((folder / CARD_FILE).read_text())
    except (OSError, ValueError):
        return None
    ident = card.get("model_id") if isinstance(card, dict) else None
    return ident if isinstance(ident, str) and ident else None
