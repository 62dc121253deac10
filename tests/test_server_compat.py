"""clip-retrieval compatibility, tested with clip-retrieval's own ``ClipClient`` over HTTP.

The client module is loaded from the installed ``clip_retrieval`` package by file,
because the package's ``__init__`` imports its whole back end (Flask, torch, ...)
while the client itself needs only ``requests``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import requests

from mmsearch.server import create_app
from test_server_support import build_library, live_server

from fakes import ColourEncoder, solid


def load_clip_client() -> ModuleType:
    spec = importlib.util.find_spec("clip_retrieval")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "clip_client.py"
    module_spec = importlib.util.spec_from_file_location("clip_retrieval_clip_client", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


clip_client = load_clip_client()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    lib_dir, media = build_library(tmp_path_factory.mktemp("compat"))
    with live_server(create_app(lib_dir, encoder=ColourEncoder(), warm_worker=False)) as url:
        yield url, media


def client(url: str, **kw: object) -> object:
    return clip_client.ClipClient(url=url + "/knn-service", indice_name="lib", **kw)


def test_indices_list_names_the_library(server: tuple[str, Path]) -> None:
    url, _ = server
    assert requests.get(url + "/indices-list", timeout=10).json() == ["lib"]


def test_clip_client_text_image_and_embedding_queries(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    url, media = server
    c = client(url, num_images=3)
    hits = c.query(text="red")  # type: ignore[attr-defined]
    assert len(hits) == 3
    top = hits[0]
    assert set(top) >= {"id", "similarity", "url", "image_path"}
    assert top["image_path"] == str(media / "photos" / "red.png")
    assert top["similarity"] > 0.9 and hits[1]["similarity"] <= top["similarity"]
    assert (
        requests.get(top["url"], timeout=10).content == (media / "photos" / "red.png").read_bytes()
    )
    query = tmp_path / "query.png"
    solid("blue").save(query)
    by_image = c.query(image=str(query))  # type: ignore[attr-defined]
    assert by_image[0]["image_path"].endswith("blue.png")
    assert by_image[0]["caption"] == "a blue sky over the harbour"
    vec = ColourEncoder().encode_text(["green"])[0].tolist()
    by_vector = c.query(embedding_input=vec)  # type: ignore[attr-defined]
    assert by_vector[0]["image_path"].endswith("green.png")


def test_text_modality_searches_texts(server: tuple[str, Path]) -> None:
    url, _ = server
    c = client(url, modality=clip_client.Modality.TEXT, num_images=2)
    hits = c.query(text="yellow")  # type: ignore[attr-defined]
    assert hits[0]["image_path"].endswith("fruit.txt")
    assert hits[0]["caption"].startswith("Bananas are yellow")


def test_num_result_ids_beyond_num_images_carry_no_metadata(server: tuple[str, Path]) -> None:
    url, _ = server
    body = {
        "text": "orange",
        "modality": "image",
        "num_images": 2,
        "num_result_ids": 5,
        "indice_name": "lib",
        "aesthetic_score": 9,
        "use_safety_model": True,
    }
    # no JSON content type, as the client sends it; unknown keys are ignored
    hits = requests.post(url + "/knn-service", data=json.dumps(body), timeout=10).json()
    assert len(hits) == 5
    assert all("url" in h for h in hits[:2]) and all(
        set(h) == {"id", "similarity"} for h in hits[2:]
    )


def test_metadata_maps_ids_to_columns(server: tuple[str, Path]) -> None:
    url, media = server
    top = client(url, num_images=1).query(text="blue")[0]  # type: ignore[attr-defined]
    body = json.dumps({"ids": [top["id"], 987654], "indice_name": "lib"})
    meta = requests.post(url + "/metadata", data=body, timeout=10).json()
    assert meta[0]["id"] == top["id"]
    assert meta[0]["metadata"]["image_path"] == str(media / "photos" / "blue.png")
    assert meta[0]["metadata"]["caption"] == "a blue sky over the harbour"
    assert meta[1] == {"id": 987654, "metadata": {}}


def test_refusals_are_clear(server: tuple[str, Path]) -> None:
    url, _ = server
    post = lambda body: requests.post(url + "/knn-service", data=json.dumps(body), timeout=10)  # noqa: E731
    no_fetch = post(
        {"image_url": "http://example.org/cat.jpg", "modality": "image", "num_images": 3}
    )
    assert no_fetch.status_code == 400 and "fetches nothing" in no_fetch.json()["detail"]
    other = post({"text": "red", "indice_name": "laion5B", "modality": "image", "num_images": 3})
    assert other.status_code == 404 and "lib" in other.json()["detail"]
    assert post({"modality": "image", "num_images": 3}).status_code == 400
    assert requests.post(url + "/knn-service", data=b"[1, 2", timeout=10).status_code == 400


def test_similarity_is_the_models_cosine_best_first(server: tuple[str, Path]) -> None:
    """clip-retrieval clients read ``similarity`` as a cosine (the native API's score is a
    calibrated 0–1 relevance): the cosine of the query's and the picture's vectors."""
    url, media = server
    hits = client(url, num_images=8).query(text="red")  # type: ignore[attr-defined]
    enc = ColourEncoder()
    text = enc.encode_text(["red"])[0]
    photos = [h for h in hits if h["image_path"].endswith(".png")]
    assert len(photos) == 6
    for hit in photos:
        picture = enc.encode_images([hit["image_path"]])[0]
        assert hit["similarity"] == pytest.approx(float(text @ picture), abs=1e-5)
    similarities = [h["similarity"] for h in hits]
    assert similarities == sorted(similarities, reverse=True) and similarities[0] < 1.0
