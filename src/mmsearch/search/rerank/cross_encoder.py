"""A sentence-transformers ``CrossEncoder`` as a reranker of texts (and of pictures, when
the model reads images).

The query and a candidate's text go through one transformer together (the query's
tokens attend to the caption's, subtitle's or transcript's), and a classification head
scores the pair. The score is read as sentence-transformers users read it:

* one label (the MS MARCO cross-encoders, bge-reranker): the logit is a log-odds of
  relevance, so the probability is ``sigmoid(logit)`` —
  ``predict(pairs, activation_fn=torch.nn.Sigmoid())``, whatever activation the model
  saved (``cross-encoder/ms-marco-MiniLM-L6-v2`` saves Identity, so its raw ``predict``
  returns logits such as 8.4);
* two labels (not relevant, relevant): ``softmax`` over the pair, class 1 —
  ``predict(pairs, activation_fn=Identity(), apply_softmax=True)[:, 1]``.

Models with more labels (NLI: contradiction / entailment / neutral) are refused: they
do not say "relevant". sentence-transformers' multimodal CrossEncoder takes an image as
the second element of a pair; when the model says it reads images
(``supports("image")``), this reranker scores pictures too (``kinds`` has ``picture``).
That path is not tested here: no multimodal CrossEncoder is small enough to build in a
test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mmsearch._lazy import require
from mmsearch.encoders.base import pick_device
from mmsearch.errors import ModelNotFoundError
from mmsearch.search.rerank.base import Candidate
from mmsearch.search.rerank.checkpoint import resolve_checkpoint

DEFAULT_BATCH = 32


class CrossEncoderReranker:
    """Scores (query, text) pairs — and (query, image) pairs for multimodal models."""

    name = "cross-encoder"

    def __init__(self, model: Any, *, batch_size: int, model_id: str) -> None:
        self.model = model
        self.batch_size = max(1, int(batch_size))
        self.model_id = model_id
        self.num_labels = int(model.num_labels)
        if self.num_labels not in (1, 2):
            raise ModelNotFoundError(
                f"{model_id!r} has {self.num_labels} labels; a reranker has 1 (a relevance "
                "logit) or 2 (not relevant, relevant)"
            )
        reads_images = bool(getattr(model, "supports", lambda _m: False)("image"))
        self.kinds: frozenset[str] = frozenset({"text", "picture"} if reads_images else {"text"})

    def score(self, query: str, candidates: Sequence[Candidate]) -> np.ndarray:
        pairs = [(query, self._second(c)) for c in candidates]
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        torch = require("torch")
        if self.num_labels == 1:
            out = self._predict(pairs, activation_fn=torch.nn.Sigmoid())
        else:
            out = self._predict(pairs, activation_fn=torch.nn.Identity(), apply_softmax=True)
            out = out[:, 1]
        return np.asarray(out, dtype=np.float32).reshape(len(pairs))

    def _predict(self, pairs: list[tuple[str, Any]], **kwargs: Any) -> np.ndarray:
        result: np.ndarray = self.model.predict(
            pairs,
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            **kwargs,
        )
        return result

    def _second(self, c: Candidate) -> Any:
        if c.kind not in self.kinds:
            raise ValueError(f"{self.model_id} does not read {c.kind} candidates")
        second = c.text if c.kind == "text" else c.image
        if second is None:
            raise ValueError(f"a {c.kind} candidate without its {c.kind}")
        return second


def load(
    name: str, *, device: str | None = None, batch_size: int | None = None, **_: Any
) -> CrossEncoderReranker:
    """Load a CrossEncoder from a folder or a hub id (``cross-encoder/ms-marco-MiniLM-L6-v2``)."""
    spec = f"cross-encoder:{name}"
    folder, model_id = resolve_checkpoint(name, spec=spec)
    st = require("sentence_transformers")
    device, dtype = pick_device(device)
    try:
        model = st.CrossEncoder(str(folder), device=device, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelNotFoundError(
            f"cannot load cross-encoder {spec!r} from {folder}: {exc}"
        ) from exc
    model = model.to(dtype).eval()
    return CrossEncoderReranker(model, batch_size=batch_size or DEFAULT_BATCH, model_id=model_id)
