"""BLIP image–text matching reranker: parity with transformers on tiny random weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mmsearch.errors import ModelNotFoundError
from mmsearch.search.rerank.base import Candidate, Reranker
from mmsearch.search.rerank.blip import BlipItmReranker
from mmsearch.search.rerank.registry import load_reranker

from tiny_models import make_images
from tiny_rerankers import QUERIES, make_tiny_blip_itm


@pytest.fixture(scope="module")
def blip_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_tiny_blip_itm(tmp_path_factory.mktemp("blip"))


def _reference(folder: str, query: str, images: list) -> np.ndarray:  # type: ignore[type-arg]
    """What transformers' own recipe says: processor(images, text) → ITM head → softmax[:, 1]."""
    from transformers import BlipForImageTextRetrieval, BlipProcessor

    model = BlipForImageTextRetrieval.from_pretrained(folder).eval()
    processor = BlipProcessor.from_pretrained(folder)
    out = []
    for image in images:
        inputs = processor(images=image, text=query, return_tensors="pt")
        with torch.no_grad():
            logits = model(**inputs, use_itm_head=True).itm_score
        out.append(torch.softmax(logits, dim=1)[0, 1].item())
    return np.array(out, dtype=np.float32)


def test_parity_with_transformers(blip_dir: str) -> None:
    reranker = load_reranker(blip_dir, device="cpu", batch_size=3)  # 4 images: two batches
    assert isinstance(reranker, BlipItmReranker) and isinstance(reranker, Reranker)
    assert reranker.kinds == frozenset({"picture"}) and reranker.name == "blip-itm"
    images = make_images()
    cands = [Candidate("picture", image=im) for im in images]
    seen = []
    for query in QUERIES:
        got = reranker.score(query, cands)
        want = _reference(blip_dir, query, images)
        assert got.dtype == np.float32 and got.shape == (len(images),)
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert np.all((got >= 0) & (got <= 1))
        seen.append(got)
    # The scores depend on both the picture and the text: a parity test that can fail.
    assert np.ptp(seen[0]) > 1e-3
    assert np.abs(seen[0] - seen[1]).max() > 1e-3


def test_prefixes_load_the_same_model(blip_dir: str) -> None:
    image = make_images()[:1]
    cands = [Candidate("picture", image=im) for im in image]
    base = load_reranker(blip_dir, device="cpu").score("cat", cands)
    for spec in (f"blip:{blip_dir}", f"hf:{blip_dir}"):
        np.testing.assert_allclose(load_reranker(spec, device="cpu").score("cat", cands), base)


def test_no_candidates_and_wrong_kind(blip_dir: str) -> None:
    reranker = load_reranker(blip_dir, device="cpu")
    assert reranker.score("cat", []).shape == (0,)
    with pytest.raises(ValueError, match="pictures"):
        reranker.score("cat", [Candidate("text", text="a cat")])


def test_a_blip_without_the_matching_head_is_refused(blip_dir: str, tmp_path: Path) -> None:
    captioner = tmp_path / "blip-captioning"
    shutil.copytree(blip_dir, captioner)
    config = json.loads((captioner / "config.json").read_text())
    config["architectures"] = ["BlipForConditionalGeneration"]
    (captioner / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotFoundError, match="image-text matching head"):
        load_reranker(str(captioner), device="cpu")
