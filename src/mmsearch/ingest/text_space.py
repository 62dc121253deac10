"""The ``text`` space during ingest: a sentence vector for every text segment.

Text-file chunks, captions, subtitle cues and transcript spans are the same segment rows
in both spaces: the image–text space embeds a segment when it is committed, and the text
space gives the same row a second vector (modality ``text``) right after. One row per
piece of text keeps one hit, one set of highlights and one moment per match whichever
space found it, and lets the evidence of both spaces (and the full-text index, which reads
the same rows) add up on the same segment. The pieces suit both models: text files are cut
into 300-character chunks with overlap (about 75 tokens, inside CLIP's 77 and far inside a
sentence model's 256–8192), and a longer segment (a long caption) is embedded by the
sentence model as the mean of overlapping windows that fit its context
(``SentenceEncoder.encode_documents``) rather than truncated.

Each run also fills in text segments that have no text vector yet: those indexed before
the library had a text space (adding ``--text-model`` to a library backfills its existing
text on the next ``add``, without reading any file again), and any left by a run that
stopped between a commit and its text vectors, or by a text model that ran out of memory.
Segment ids only grow, so a finished backfill records the highest id it saw (catalog meta
``text_space_filled``, with the space's fingerprint) and later runs look only above it: the
check costs a range of the primary key, not a scan of every segment. The text model is
loaded only when there is something to embed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from mmsearch.spaces import TEXT, Space
from mmsearch.store.catalog import Catalog
from mmsearch.store.segment_vectors import (
    add_segment_vectors,
    count_lacking,
    max_segment_id,
    segments_lacking,
)
from mmsearch.types import Vectors

log = logging.getLogger(__name__)

MODALITY = "text"
BATCH = 64
"""Segments embedded and committed together while backfilling."""
FILLED_META_KEY = "text_space_filled"
"""Catalog meta: ``{"fingerprint": ..., "upto": segment id}``, every text segment up to
which had its text vector when the last backfill of that model finished."""


class TextSpaceFiller:
    """Embeds text segments into the library's ``text`` space (one filler per ingest run)."""

    def __init__(self, catalog: Catalog, space: Space, batch: int = BATCH) -> None:
        if space.name != TEXT:
            raise ValueError(f"expected the text space, got {space.name!r}")
        self.catalog = catalog
        self.space = space
        self.batch = max(1, int(batch))

    def fill_items(self, item_ids: Iterable[int]) -> int:
        """Embed the text segments of these (just committed) items; returns how many."""
        rows = segments_lacking(self.catalog, self.space.id, MODALITY, item_ids=item_ids)
        return sum(self._store(rows[i : i + self.batch]) for i in range(0, len(rows), self.batch))

    def backfill(self, progress: Callable[[int], Any] | None = None) -> int:
        """Embed every text segment of the library that has no text vector yet; returns how
        many. ``progress(n)`` is called after each batch of ``n``."""
        after = self.checked_upto()
        top = max_segment_id(self.catalog)
        done = 0
        while True:
            rows = segments_lacking(
                self.catalog, self.space.id, MODALITY, after=after, limit=self.batch
            )
            if not rows:
                break
            done += self._store(rows)
            after = rows[-1][0]
            if progress is not None:
                progress(len(rows))
        marker = {"fingerprint": self.space.row["fingerprint"], "upto": top}
        self.catalog.set_meta(FILLED_META_KEY, json.dumps(marker))
        return done

    def pending(self) -> int:
        """Text segments still without a text vector."""
        return count_lacking(self.catalog, self.space.id, MODALITY, after=self.checked_upto())

    def checked_upto(self) -> int:
        """Every text segment up to this id had its vector at the last finished backfill
        with this space's model (0: look at all of them)."""
        try:
            marker = json.loads(self.catalog.get_meta(FILLED_META_KEY) or "{}")
        except ValueError:
            return 0
        if (
            not isinstance(marker, dict)
            or marker.get("fingerprint") != self.space.row["fingerprint"]
        ):
            return 0
        upto = marker.get("upto")
        return int(upto) if isinstance(upto, int) else 0

    def _store(self, rows: list[tuple[int, str]]) -> int:
        if not rows:
            return 0
        vecs = self._embed([text for _, text in rows])
        return add_segment_vectors(
            self.catalog, self.space.id, MODALITY, [seg for seg, _ in rows], vecs
        )

    def _embed(self, texts: list[str]) -> Vectors:
        enc = self.space.encoder()
        # A sentence model embeds stored text as documents (its passage prompt, windows for
        # long text); any other text encoder given as the text model has one side only.
        encode = getattr(enc, "encode_documents", None) or enc.encode_text
        vecs: Vectors = encode(texts)
        return vecs
