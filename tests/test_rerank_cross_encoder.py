"""sentence-transformers CrossEncoder reranker: parity on tiny random weights, label rules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import CrossEncoder

from mmsearch.errors import ModelNotFoundError
from mmsearch.search.rerank.base import Candidate, Reranker
from mmsearch.search.rerank.cross_encoder import CrossEncoderReranker
from mmsearch.search.rerank.registry import detect_folder_backend, load_reranker

from tiny_rerankers import PASSAGES, QUERIES, make_tiny_cross_encoder


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ce")


def _texts() -> list[Candidate]:
    return [Candidate("text", text=t) for t in PASSAGES]


def _logits(folder: str, query: str) -> np.ndarray:
    """The classifier's raw logits from transformers itself (no sentence-transformers)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    inputs = tok(
        [query] * len(PASSAGES), PASSAGES, padding=True, truncation=True, return_tensors="pt"
    )
    with torch.no_grad():
        return model(**inputs).logits.numpy()


def test_one_label_is_the_sigmoid_of_the_logit(models: Path) -> None:
    folder = make_tiny_cross_encoder(models, labels=1)
    reranker = load_reranker(folder, device="cpu", batch_size=3)
    assert isinstance(reranker, CrossEncoderReranker) and isinstance(reranker, Reranker)
    assert reranker.kinds == frozenset({"text"}) and reranker.name == "cross-encoder"
    st = CrossEncoder(folder, device="cpu")
    for query in QUERIES:
        got = reranker.score(query, _texts())
        assert got.dtype == np.float32 and got.shape == (len(PASSAGES),)
        pairs = [(query, t) for t in PASSAGES]
        want = st.predict(pairs, activation_fn=torch.nn.Sigmoid())
        np.testing.assert_allclose(got, want, atol=1e-6)
        logits = _logits(folder, query)[:, 0]
        np.testing.assert_allclose(got, 1 / (1 + np.exp(-logits)), atol=1e-5)
        assert np.ptp(got) > 1e-3 and np.all((got > 0) & (got < 1))


def test_a_saved_identity_activation_still_gives_probabilities(models: Path) -> None:
    # cross-encoder/ms-marco-MiniLM-L6-v2 saves Identity: predict() returns raw logits.
    folder = make_tiny_cross_encoder(models, labels=1, activation_fn=torch.nn.Identity())
    raw = CrossEncoder(folder, device="cpu").predict([(QUERIES[0], t) for t in PASSAGES])
    got = load_reranker(f"cross-encoder:{folder}", device="cpu").score(QUERIES[0], _texts())
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-raw)), atol=1e-6)


def test_two_labels_is_the_softmax_of_the_positive_class(models: Path) -> None:
    folder = make_tiny_cross_encoder(models, labels=2)
    reranker = load_reranker(folder, device="cpu")
    for query in QUERIES:
        got = reranker.score(query, _texts())
        logits = _logits(folder, query)
        want = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert np.ptp(got) > 1e-3


def test_a_plain_transformers_classifier_folder_loads(models: Path) -> None:
    folder = make_tiny_cross_encoder(models, labels=1, st_files=False)
    assert detect_folder_backend(Path(folder)) == "cross-encoder"
    got = load_reranker(folder, device="cpu").score("cat", _texts())
    want = 1 / (1 + np.exp(-_logits(folder, "cat")[:, 0]))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_more_than_two_labels_is_refused(models: Path) -> None:
    folder = make_tiny_cross_encoder(models, labels=3)
    with pytest.raises(ModelNotFoundError, match="3 labels"):
        load_reranker(folder, device="cpu")


def test_an_embedding_model_is_not_a_reranker(models: Path, tmp_path: Path) -> None:
    folder = tmp_path / "embedder"
    shutil.copytree(make_tiny_cross_encoder(models, labels=1), folder)
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"model_type": "SentenceTransformer"})
    )
    with pytest.raises(
        ModelNotFoundError, match=r"embedding model \(SentenceTransformer\), not a reranker"
    ):
        load_reranker(str(folder))


def test_no_candidates_and_wrong_kind(models: Path) -> None:
    reranker = load_reranker(make_tiny_cross_encoder(models, labels=1), device="cpu")
    assert reranker.score("cat", []).shape == (0,)
    with pytest.raises(ValueError, match="does not read picture"):
        reranker.score("cat", [Candidate("picture", image=None)])
