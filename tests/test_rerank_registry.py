"""Reranker specs: prefixes, folders judged by their files, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmsearch.errors import ModelNotFoundError, UnknownBackendError
from mmsearch.search.rerank.registry import (
    backends,
    detect_folder_backend,
    load_reranker,
    split_spec,
)


def test_known_prefixes() -> None:
    assert backends() == ["blip", "cross-encoder", "hf", "trained"]
    assert split_spec("blip:Salesforce/blip-itm-base-coco") == (
        "blip",
        "Salesforce/blip-itm-base-coco",
    )
    assert split_spec("cross-encoder:cross-encoder/ms-marco-MiniLM-L6-v2") == (
        "cross-encoder",
        "cross-encoder/ms-marco-MiniLM-L6-v2",
    )
    assert split_spec("trained:/models/shapes-reranker") == ("trained", "/models/shapes-reranker")


@pytest.mark.parametrize("spec", ["colbert:foo/bar", "nonsense", "", "  "])
def test_unknown_spec_names_the_known_ones(spec: str) -> None:
    with pytest.raises(UnknownBackendError) as err:
        load_reranker(spec)
    for prefix in ("blip:", "cross-encoder:", "trained:", "hf:"):
        assert prefix in str(err.value)


@pytest.mark.parametrize("spec", ["./no-such-reranker", "/no/such/reranker", "~/no-such-rr"])
def test_missing_folder_is_model_not_found(spec: str) -> None:
    with pytest.raises(ModelNotFoundError, match="reranker folder not found"):
        load_reranker(spec)


def test_uncached_hub_model_offline_is_model_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for spec in ("hf:nobody-here/no-such-reranker", "nobody-here/no-such-reranker"):
        with pytest.raises(ModelNotFoundError, match="offline mode is on"):
            load_reranker(spec)


@pytest.mark.parametrize(
    ("files", "backend"),
    [
        ({"mmsearch_reranker.json": {}, "config.json": {"model_type": "blip"}}, "trained"),
        ({"config.json": {"model_type": "blip"}}, "blip"),
        ({"config_sentence_transformers.json": {"model_type": "CrossEncoder"}}, "cross-encoder"),
        (
            {"config.json": {"architectures": ["XLMRobertaForSequenceClassification"]}},
            "cross-encoder",
        ),
    ],
)
def test_folders_are_judged_by_their_files(
    tmp_path: Path, files: dict[str, dict[str, object]], backend: str
) -> None:
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))
    assert detect_folder_backend(tmp_path) == backend
    assert split_spec(str(tmp_path)) == (backend, str(tmp_path.resolve()))


@pytest.mark.parametrize(
    "files",
    [{}, {"config.json": {"model_type": "clip", "architectures": ["CLIPModel"]}}],
)
def test_a_folder_that_holds_no_reranker(tmp_path: Path, files: dict[str, object]) -> None:
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))
    with pytest.raises(ModelNotFoundError, match="not a reranker folder"):
        load_reranker(str(tmp_path))


def test_a_trained_folder_loads_through_the_registry(tmp_path: Path) -> None:
    from mmsearch.encoders.tiny import TinyTokenizer
    from mmsearch.search.rerank import trained

    config = trained.RerankerConfig(width=32, heads=2, layers=1)
    tok = TinyTokenizer.build(["a red circle left of a blue square"], config.context_length)
    folder = tmp_path / "shapes-reranker"
    trained.save_reranker(trained.build_reranker(config), tok, folder, metadata=None)
    for spec in (str(folder), f"trained:{folder}"):
        reranker = load_reranker(spec, device="cpu", batch_size=8)
        assert isinstance(reranker, trained.TrainedReranker), spec
        assert reranker.kinds == frozenset({"picture"})


def test_hub_files_one_weight_format_and_module_subfolders() -> None:
    from mmsearch.search.rerank.checkpoint import select_files

    blip_repo = [
        ".gitattributes",
        "README.md",
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "pytorch_model.bin",
        "special_tokens_map.json",
        "tf_model.h5",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    assert sorted(select_files(blip_repo)) == [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    st_repo = [
        "config.json",
        "modules.json",
        "config_sentence_transformers.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "1_LogitScore/config.json",
        "onnx/model.onnx",
        "openvino/openvino_model.bin",
        "tokenizer.json",
    ]
    kept = select_files(st_repo)
    assert "1_LogitScore/config.json" in kept and "model.safetensors.index.json" in kept
    assert not [f for f in kept if f.startswith(("onnx/", "openvino/"))]
    assert "pytorch_model.bin" in select_files(["config.json", "pytorch_model.bin", "vocab.txt"])
    with pytest.raises(ModelNotFoundError, match="no PyTorch weights"):
        select_files(["config.json", "onnx/model.onnx"])
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        select_files(["open_clip_config.json", "open_clip_model.safetensors"])
