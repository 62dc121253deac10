"""Helpers shared by the server tests: a small library and a live server on loopback.

The library holds six solid-colour photos (one with a caption), a text note and
a video of a black scene then a white one (3 s each), indexed with the exact
ColourEncoder, so "white" finds the video's second moment at 3.0 s. The audio
library adds two recordings and an audio space (the exact ToneEncoder): "880"
finds tones.flac at 5–8 s (see ``SOUNDS``). The fusion library (``build_fusion_library``)
has a near-duplicate (``red-copy.png``, ``red.png`` at twice the size) and notes whose
words a query can mark (``FUSION_NOTES``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import uvicorn
from fastapi import FastAPI

from mmsearch.library import Library
from mmsearch.search.rerank.base import Candidate

from fakes import ColourEncoder, ToneEncoder, solid
from media_gen import Sound, make_audio, make_video

PHOTOS = ("red", "green", "blue", "yellow", "purple", "orange")
SOUNDS: dict[str, list[tuple[Sound, float]]] = {
    "tones.flac": [(440.0, 3.0), ("silence", 2.0), (880.0, 3.0)],
    "hum.ogg": [(1320.0, 3.0), ("noise", 3.0)],
}
"""Recordings of the audio library: (tone in Hz, "silence" or "noise"; seconds) in order."""


def build_media(root: Path) -> Path:
    (root / "photos").mkdir(parents=True)
    (root / "notes").mkdir()
    (root / "clips").mkdir()
    for colour in PHOTOS:
        solid(colour, (48, 36)).save(root / "photos" / f"{colour}.png")
    (root / "photos" / "blue.txt").write_text("a blue sky over the harbour")
    (root / "notes" / "fruit.txt").write_text("Bananas are yellow and cherries are red.")
    make_video(root / "clips" / "night-day.mp4", [("black", 3.0), ("white", 3.0)])
    return root


def build_library(tmp: Path) -> tuple[Path, Path]:
    """(library folder, media folder), indexed."""
    media = build_media(tmp / "media")
    lib_dir = tmp / "lib"
    with Library.open(lib_dir, encoder=ColourEncoder()) as lib:
        report = lib.add([media], workers=0)
    assert report.failed == 0, report.failures
    return lib_dir, media


def build_audio_library(tmp: Path) -> tuple[Path, Path]:
    """(library folder, media folder): the photos, note and video plus ``SOUNDS`` under
    ``sounds/``, indexed with an audio space."""
    media = build_media(tmp / "media")
    (media / "sounds").mkdir()
    for name, parts in SOUNDS.items():
        make_audio(media / "sounds" / name, parts)
    lib_dir = tmp / "lib"
    with Library.open(lib_dir, encoder=ColourEncoder(), audio_encoder=ToneEncoder()) as lib:
        report = lib.add([media], workers=0)
    assert report.failed == 0, report.failures
    return lib_dir, media


FUSION_NOTES = {
    "fruit.txt": "Bananas are yellow and cherries are red",
    "lighthouse.txt": "The zanzibar lighthouse stands on a white rock by the harbour.",
    "markup.txt": "<img src=x onerror=alert(1)> <b>cherries</b> in bold",
}
"""Notes of the fusion library (markup.txt holds HTML that must show as text)."""


class WordReranker:
    """A reranker that reads texts and believes the ones holding more of the query's
    words: enough to see the server hand candidates to a reranker it was started with."""

    name = "words"
    kinds = frozenset({"text"})

    def score(self, query: str, candidates: Sequence[Candidate]) -> np.ndarray:
        words = query.lower().split()
        out = []
        for c in candidates:
            text = (c.text or "").lower()
            share = sum(w in text for w in words) / max(1, len(words))
            out.append(0.05 + 0.9 * share)
        return np.asarray(out, dtype=np.float32)


def build_fusion_library(tmp: Path) -> tuple[Path, Path]:
    """(library folder, media folder): solid-colour photos (red.png also as red-copy.png,
    resized: a near-duplicate), a captioned photo and ``FUSION_NOTES``, indexed."""
    media = tmp / "media"
    (media / "photos").mkdir(parents=True)
    (media / "notes").mkdir()
    for colour in PHOTOS:
        solid(colour, (48, 36)).save(media / "photos" / f"{colour}.png")
    solid("red", (96, 72)).save(media / "photos" / "red-copy.png")
    (media / "photos" / "blue.txt").write_text("a blue boat in the harbour at dawn")
    for name, text in FUSION_NOTES.items():
        (media / "notes" / name).write_text(text)
    lib_dir = tmp / "lib"
    with Library.open(lib_dir, encoder=ColourEncoder()) as lib:
        report = lib.add([media], workers=0)
    assert report.failed == 0, report.failures
    return lib_dir, media


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
