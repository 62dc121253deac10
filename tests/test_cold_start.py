"""Cold one-off searches: what a fresh ``mmsearch search`` process loads and builds.

A search with the ONNX backend or the shipped demo model must not import torch (its
import alone costs more than the whole search), nor the web stack. ONNX exports keep
their weights in aligned side files that onnxruntime maps instead of copying, and a
query runs in a light session that an encoder which keeps encoding upgrades.
Timings are in benchmarks/bench_coldstart.py; these tests check the mechanisms.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mmsearch
from mmsearch.datasets import synthetic as syn
from mmsearch.encoders import onnx as onnx_backend
from mmsearch.encoders.onnx_weights import ALIGN, THRESHOLD, data_file, save_aligned

from tiny_models import make_tiny_openclip  # noqa: E402

TORCH_STACK = ("torch", "torchvision", "transformers", "open_clip")
WEB_STACK = ("fastapi", "starlette", "pydantic", "uvicorn")

# Runs the CLI in a fresh interpreter and reports which top-level packages it loaded.
CLI = """
import json, sys
from mmsearch.cli.main import main
code = main(sys.argv[1:])
loaded = sorted({m.split(".")[0] for m in sys.modules})
print("LOADED " + json.dumps(loaded), file=sys.stderr)
sys.exit(code)
"""


def cold_search(*argv: str) -> tuple[str, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", CLI, "search", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("LOADED "))
    return proc.stdout, set(json.loads(line[len("LOADED ") :]))


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i, sample in enumerate(syn.generate(6, seed=2, size=64)):
        sample.image.save(folder / f"shape{i}.png")
    return folder


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmsearch.encoders.onnx_export import export_onnx

    root = tmp_path_factory.mktemp("models")
    return export_onnx(make_tiny_openclip(root), root / "onnx")


def _library(folder: Path, model: str, photos: Path) -> str:
    with mmsearch.Library.open(folder, model=model) as lib:
        report = lib.add(photos)
    assert report.added == 6
    return str(folder)


@pytest.fixture(scope="module")
def libraries(
    tmp_path_factory: pytest.TempPathFactory, photos: Path, onnx_model: Path
) -> dict[str, str]:
    root = tmp_path_factory.mktemp("libs")
    return {
        "onnx": _library(root / "onnx", str(onnx_model), photos),
        "demo": _library(root / "demo", "builtin:demo", photos),
    }


@pytest.mark.parametrize(
    "kind,query",
    [
        ("onnx", ["a red circle"]),
        ("demo", ["a red circle"]),
        ("demo", ["--image", "shape0.png"]),
    ],
)
def test_a_cold_search_imports_no_torch(
    kind: str, query: list[str], libraries: dict[str, str], photos: Path
) -> None:
    argv = [str(photos / q) if q.endswith(".png") else q for q in query]
    # --no-dedupe: with random weights every picture looks alike and would fold into one
    out, loaded = cold_search(*argv, "-l", libraries[kind], "--json", "--no-dedupe")
    hits = json.loads(out)["hits"]
    assert len(hits) == 6 and all(Path(h["path"]).parent == photos for h in hits)
    assert not loaded & set(TORCH_STACK), sorted(loaded & set(TORCH_STACK))
    if query[0] != "--image":  # nor the image decoder and the ingest code's progress bars
        assert not loaded & {"PIL", "tqdm"}, sorted(loaded & {"PIL", "tqdm"})


def test_a_cold_search_imports_no_web_stack(libraries: dict[str, str]) -> None:
    _, loaded = cold_search("a red circle", "-l", libraries["demo"])
    assert not loaded & set(WEB_STACK), sorted(loaded & set(WEB_STACK))


# ---- ONNX sessions and files -------------------------------------------------------------------


def test_a_query_runs_in_a_light_session_and_bulk_work_in_the_full_one(onnx_model: Path) -> None:
    enc = mmsearch.load_encoder(str(onnx_model))
    text = enc._graphs["text"]  # type: ignore[attr-defined]
    one = enc.encode_text(["a red circle"])
    assert text.light and text.session is not None
    texts = [f"a photo of {n} dogs" for n in range(onnx_backend.LIGHT_INPUTS + 4)]
    many = enc.encode_text(texts)
    assert not text.light  # upgraded for throughput
    again = enc.encode_text(["a red circle"])
    np.testing.assert_allclose(one, again, atol=1e-5)
    ref = mmsearch.load_encoder(str(onnx_model))
    np.testing.assert_allclose(many[:3], ref.encode_text(texts[:3]), atol=1e-5)
    assert enc._graphs["image"].session is None  # type: ignore[attr-defined] # text only


def test_a_batch_larger_than_a_query_goes_to_the_full_session(onnx_model: Path) -> None:
    enc = mmsearch.load_encoder(str(onnx_model))
    enc.encode_text(["x"] * (onnx_backend.LIGHT_INPUTS + 1))
    assert not enc._graphs["text"].light  # type: ignore[attr-defined]


def test_exports_keep_their_weights_in_side_files(onnx_model: Path) -> None:
    import onnx

    for name in ("text.onnx", "image.onnx"):
        graph = onnx.load(str(onnx_model / name), load_external_data=False)
        assert data_file(onnx_model / name).is_file()
        for tensor in graph.graph.initializer:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                info = {e.key: e.value for e in tensor.external_data}
                assert info["location"] == f"{name}.data"
                assert int(info["offset"]) % ALIGN == 0


def _matmul_model(weight: np.ndarray, bias: np.ndarray, *, typed: bool) -> Any:
    import onnx
    from onnx import helper, numpy_helper

    w = (
        helper.make_tensor("w", onnx.TensorProto.FLOAT, weight.shape, weight.ravel().tolist())
        if typed  # kept in float_data, not raw_data
        else numpy_helper.from_array(weight, "w")
    )
    b = numpy_helper.from_array(bias, "b")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, weight.shape[0]])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, weight.shape[1]])],
        initializer=[w, b],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("typed", [False, True])
def test_save_aligned_round_trips_through_onnxruntime(tmp_path: Path, typed: bool) -> None:
    import onnx

    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(200, 180)).astype(np.float32) for _ in range(2)]
    bias = rng.normal(size=180).astype(np.float32)  # small: stays in the graph file
    x = rng.normal(size=(3, 200)).astype(np.float32)
    for i, weight in enumerate(weights):
        path = tmp_path / f"m{i}.onnx"
        save_aligned(_matmul_model(weight, bias, typed=typed), path)
        stored = onnx.load(str(path), load_external_data=False)
        kinds = {t.name: t.data_location for t in stored.graph.initializer}
        assert kinds == {"w": onnx.TensorProto.EXTERNAL, "b": onnx.TensorProto.DEFAULT}
        assert path.stat().st_size < THRESHOLD  # the graph file holds no large weight
        for light in (True, False):
            session = onnx_backend.make_session(path, ["CPUExecutionProvider"], 1, light=light)
            (got,) = session.run(None, {"x": x})
            np.testing.assert_allclose(got, x @ weight + bias, rtol=1e-4, atol=1e-4)


def test_exports_from_before_side_files_still_load(onnx_model: Path, tmp_path: Path) -> None:
    import shutil

    import onnx

    old = tmp_path / "old"
    shutil.copytree(onnx_model, old)
    for name in ("text.onnx", "image.onnx"):
        model = onnx.load(str(old / name))  # weights read from the side file
        data_file(old / name).unlink()
        onnx.save_model(model, str(old / name))  # one file, as exports used to be
    texts = ["a red circle", "一只狗"]
    np.testing.assert_allclose(
        mmsearch.load_encoder(str(old)).encode_text(texts),
        mmsearch.load_encoder(str(onnx_model)).encode_text(texts),
        atol=1e-5,
    )


# ---- text cleaning ---------------------------------------------------------------------------


def test_ftfy_is_skipped_only_where_it_would_change_nothing() -> None:
    import ftfy

    rng = random.Random(0)
    alphabet = [chr(c) for c in range(0x20, 0x7F)] + ["\t", "\n", "\r", "\x07", "é", "â€™"]
    checked = 0
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert onnx_backend._ftfy(text) == ftfy.fix_text(text), repr(text)
        checked += 1
    assert checked == 5000
    assert onnx_backend._ftfy("fish &amp; chips") == "fish & chips"
    assert onnx_backend._ftfy("don\u00e2\u20ac\u2122t") == "don't"
    assert onnx_backend._ftfy("a\x1b[31m red") == "a red"
