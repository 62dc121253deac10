"""Backend "st": sentence-transformers models, compared with sentence-transformers itself.

A tiny random-weight BERT is saved as a sentence-transformers model and loaded through
our registry; its query and document vectors must be the library's own (prompts
included), long documents the mean of windows that fit, and its identity must tell
different weights apart. Hub ids resolve through the cache, bare names as
sentence-transformers resolves them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mmsearch.encoders import registry, sentence
from mmsearch.encoders.sentence import CARD_PROMPTS, SentenceEncoder, select_files
from mmsearch.errors import MissingDependencyError, ModelMismatchError, ModelNotFoundError

from encoder_checks import (
    assert_close_rows,
    assert_matches_reference,
    fill_hub_cache,
    isolate_hub,
    offline_error,
)
from tiny_st import TEXTS, make_tiny_st, reference

QD = {"query": "query: ", "document": "passage: "}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model whose own config holds query and document prompts."""
    return make_tiny_st(tmp_path_factory.mktemp("st") / "tiny-st", prompts=QD)


def _load(spec: str | Path, **options: object) -> SentenceEncoder:
    enc = registry.load_encoder(str(spec), device="cpu", **options)
    assert isinstance(enc, SentenceEncoder)
    return enc


def test_query_and_document_sides_match_sentence_transformers(tiny: Path) -> None:
    enc, ref = _load(tiny), reference(tiny)
    shape = (len(TEXTS), enc.dim)
    assert_matches_reference(enc.encode_text(TEXTS), ref.encode_query(TEXTS), shape)
    assert_matches_reference(enc.encode_documents(TEXTS), ref.encode_document(TEXTS), shape)
    # The prompts are really applied: each side differs from the bare text's vector.
    bare = ref.encode(TEXTS, prompt="")
    assert np.abs(enc.encode_text(TEXTS) - bare).max() > 1e-3
    assert np.abs(enc.encode_documents(TEXTS) - bare).max() > 1e-3
    assert enc.info.backend == "st" and enc.info.dim == 32
    assert enc.info.preprocessing["prompts"] == QD
    assert enc.encode_text([]).shape == (0, 32)


def test_an_older_config_with_only_a_passage_prompt_keeps_it(tmp_path: Path) -> None:
    """sentence-transformers 6 fills an unset "document" prompt with "" and its
    encode_document then drops "passage: "; the model's prompt must be used."""
    folder = make_tiny_st(tmp_path / "old", prompts={"query": "query: ", "passage": "passage: "})
    enc, ref = _load(folder), reference(folder)
    shape = (len(TEXTS), enc.dim)
    assert_matches_reference(
        enc.encode_documents(TEXTS), ref.encode(TEXTS, prompt="passage: "), shape
    )
    assert_matches_reference(enc.encode_text(TEXTS), ref.encode_query(TEXTS), shape)


def test_card_prompts_for_e5_checkpoints_published_without_prompts(tmp_path: Path) -> None:
    folder = make_tiny_st(tmp_path / "e5", prompts={})
    ref = reference(folder)
    e5 = _load(folder, model_id="intfloat/multilingual-e5-base")
    assert CARD_PROMPTS["intfloat/multilingual-e5-base"].document == "passage: "
    shape = (len(TEXTS), e5.dim)
    assert_matches_reference(e5.encode_text(TEXTS), ref.encode(TEXTS, prompt="query: "), shape)
    assert_matches_reference(
        e5.encode_documents(TEXTS), ref.encode(TEXTS, prompt="passage: "), shape
    )
    plain = _load(folder)  # unknown identity, no prompts: both sides are the bare text
    assert plain.info.extra["prompt_source"] == "none"
    np.testing.assert_allclose(plain.encode_text(TEXTS), ref.encode(TEXTS), atol=1e-5)
    assert e5.info.fingerprint != plain.info.fingerprint


def test_a_long_document_is_the_mean_of_windows_that_fit(tiny: Path) -> None:
    enc, ref = _load(tiny), reference(tiny)
    long_text = " ".join(["the cat sat on the sofa by the lighthouse."] * 12)
    windows = enc.windows(long_text)
    assert len(windows) > 2 and enc.windows("dogs") == ["dogs"]
    tok = ref.tokenizer
    budget = enc.max_tokens - 2 - len(tok("passage: ", add_special_tokens=False)["input_ids"])
    assert all(len(tok(w, add_special_tokens=False)["input_ids"]) <= budget for w in windows)
    # Overlapping: each window starts inside the one before it.
    starts = [long_text.index(w) for w in windows]
    assert all(s < starts[i] + len(windows[i]) for i, s in enumerate(starts[1:]))
    mean = ref.encode_document(windows).mean(axis=0)
    expected = mean / np.linalg.norm(mean)
    got = enc.encode_documents(["dogs", long_text])
    np.testing.assert_allclose(got[1], expected, atol=1e-5)
    np.testing.assert_allclose(got[0], ref.encode_document(["dogs"])[0], atol=1e-5)
    truncated = ref.encode_document([long_text])[0]
    assert float(got[1] @ truncated) < 0.9999  # not what plain truncation gives


def test_identity_tells_different_weights_apart(tiny: Path, tmp_path: Path) -> None:
    a = _load(tiny).info
    assert _load(f"st:{tiny}").info.fingerprint == a.fingerprint  # prefix or folder: one space
    assert a.model_id.startswith("tiny-st@")
    other = make_tiny_st(tmp_path / "tiny-st", prompts=QD, seed=1)  # same name, other weights
    assert _load(other).info.fingerprint != a.fingerprint


@pytest.mark.parametrize("offline", [True, False])
def test_hub_ids_and_bare_names_load_from_the_cache(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: bool
) -> None:
    cache = isolate_hub(monkeypatch, tmp_path / "hub", offline=offline)
    fill_hub_cache(cache, "sentence-transformers/tiny-st", tiny)
    full = _load("st:sentence-transformers/tiny-st")
    bare = _load("st:tiny-st")  # as SentenceTransformer("all-MiniLM-L6-v2") resolves names
    assert full.info.model_id == bare.info.model_id == "sentence-transformers/tiny-st"
    assert full.info.fingerprint == bare.info.fingerprint
    np.testing.assert_allclose(full.encode_text(TEXTS), _load(tiny).encode_text(TEXTS), atol=1e-6)


def test_offline_without_the_model_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    msg = offline_error(monkeypatch, tmp_path / "hub", lambda: _load("st:BAAI/bge-m3"))
    assert "BAAI/bge-m3" in msg


def test_hub_files_are_the_modules_and_one_weight_format() -> None:
    files = [
        "config.json",
        "modules.json",
        "config_sentence_transformers.json",
        "sentence_bert_config.json",
        "tokenizer.json",
        "sentencepiece.bpe.model",
        "model.safetensors",
        "pytorch_model.bin",
        "README.md",
        "colbert_linear.pt",
        "1_Pooling/config.json",
        "2_Dense/config.json",
        "2_Dense/model.safetensors",
        "onnx/model.onnx",
        "onnx/config.json",
        "openvino/openvino_model.xml",
    ]
    assert sorted(select_files(files)) == sorted(
        [
            "config.json",
            "modules.json",
            "config_sentence_transformers.json",
            "sentence_bert_config.json",
            "tokenizer.json",
            "sentencepiece.bpe.model",
            "model.safetensors",
            "1_Pooling/config.json",
            "2_Dense/config.json",
            "2_Dense/model.safetensors",
        ]
    )
    with pytest.raises(ModelNotFoundError, match="neither modules.json nor config.json"):
        select_files(["README.md", "onnx/model.onnx"])
    with pytest.raises(ModelNotFoundError, match="no PyTorch weights"):
        select_files(["config.json", "modules.json", "onnx/model.onnx"])


def test_registry_recognises_sentence_transformers_folders(tmp_path: Path) -> None:
    for marker in ("modules.json", "config_sentence_transformers.json"):
        folder = tmp_path / marker
        folder.mkdir()
        (folder / marker).write_text("{}")
        (folder / "config.json").write_text("{}")  # its transformer's config is there too
        assert registry.split_spec(str(folder)) == ("st", str(folder.resolve()))
    assert registry.split_spec("st:BAAI/bge-m3") == ("st", "BAAI/bge-m3")
    with pytest.raises(ModelNotFoundError, match="neither a sentence-transformers model folder"):
        registry.load_encoder("st:./no/such/folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="not a sentence-transformers model folder"):
        registry.load_encoder(f"st:{empty}")


def test_a_text_only_model_refuses_pictures(tiny: Path) -> None:
    enc = _load(tiny)
    with pytest.raises(ModelMismatchError, match="--text-model"):
        enc.image_preprocessor()
    with pytest.raises(ModelMismatchError, match="text-only"):
        enc.encode_images([])


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch, tiny: Path) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependencyError, match=r"mmsearch\[text\]"):
        sentence.load(str(tiny), spec=str(tiny))


def test_half_precision_as_on_cuda_gives_float32_unit_rows(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    full = _load(tiny)
    monkeypatch.setattr(sentence, "pick_device", lambda device=None: ("cpu", torch.float16))
    half = _load(tiny)
    assert next(half.model.parameters()).dtype == torch.float16
    assert_close_rows(half.encode_text(TEXTS), full.encode_text(TEXTS), 0.99)
    assert_close_rows(half.encode_documents(TEXTS), full.encode_documents(TEXTS), 0.99)
