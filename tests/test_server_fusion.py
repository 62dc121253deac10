"""The HTTP API of issue #10 over a live server: hits that explain themselves (calibrated
score, evidence per source, marked words), the relevance cut-off and its note, relevance
feedback (like / unlike), near-duplicates folded, source weights, rank fusion for
comparison, rerankers chosen by name among those the server was started with, and
``POST /api/recommend``.

The library is ``build_fusion_library``: colour photos (``red-copy.png`` is ``red.png``
at twice the size), a captioned photo and three notes, indexed with the exact
ColourEncoder. Hostile values of the new fields are in test_server_hostile.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mmsearch.cli.main import main
from mmsearch.server import create_app
from mmsearch.server.config import ServerConfig
from test_server_support import (
    FUSION_NOTES,
    WordReranker,
    build_fusion_library,
    build_library,
    free_port,
    live_server,
)

from fakes import ColourEncoder, solid


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_fusion_library(tmp_path_factory.mktemp("fusion"))


@pytest.fixture(scope="module")
def site(library: tuple[Path, Path]) -> Iterator[str]:
    app = create_app(
        library[0], encoder=ColourEncoder(), rerankers=[WordReranker()], warm_worker=False
    )
    with live_server(app) as url:
        yield url


def search(site: str, **body: Any) -> dict[str, Any]:
    resp = httpx.post(site + "/api/search", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def names(answer: dict[str, Any]) -> list[str]:
    return [h["name"] for h in answer["hits"]]


def ids(site: str) -> dict[str, int]:
    """Every item's id by file name."""
    items = httpx.get(site + "/api/items", params={"limit": 100}, timeout=30).json()["items"]
    return {i["name"]: i["item_id"] for i in items}


# -- hits explain themselves ------------------------------------------------------------------
def test_a_hit_shows_its_calibrated_score_its_sources_and_the_marked_words(site: str) -> None:
    answer = search(site, text="zanzibar lighthouse")
    assert answer["mode"] == "hybrid" and answer["fusion"] == "calibrated"  # the defaults
    assert answer["note"] is None and answer["best_below"] is None
    hits = answer["hits"]
    assert hits[0]["name"] == "lighthouse.txt"
    scores = [h["score"] for h in hits]
    assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
    top = hits[0]
    sources = [e["source"] for e in top["evidence"]]
    assert "lexical" in sources and "main/text" in sources, sources
    words = next(e for e in top["evidence"] if e["source"] == "lexical")
    text = FUSION_NOTES["lighthouse.txt"]
    assert words["text"] == text
    assert [text[a:b] for a, b in words["highlights"]] == ["zanzibar", "lighthouse"]
    assert 0.0 < words["score"] <= 1.0 and "raw" in words and "evidence" in words
    moment = top["segments"][0]
    assert moment["source"] in sources and moment["text"] == text
    assert [text[a:b] for a, b in moment["highlights"]] == ["zanzibar", "lighthouse"]
    assert top["similar"] == []


def test_a_text_query_searches_pictures_and_texts(site: str) -> None:
    found = names(search(site, text="red", k=20))
    assert set(found[:2]) == {"red.png", "red-copy.png"}
    assert "fruit.txt" in found  # "cherries are red": the words match
    pictures = names(search(site, text="red", k=20, modality="image"))
    assert "fruit.txt" not in pictures and set(pictures[:2]) == {"red.png", "red-copy.png"}


def test_the_cut_off_keeps_good_matches_and_says_when_none_is_left(site: str) -> None:
    good = search(site, text="red", modality="image", min_score=0.5)
    assert sorted(names(good)) == ["red-copy.png", "red.png"]
    assert all(h["score"] >= 0.5 for h in good["hits"]) and good["note"] is None
    everything = search(site, text="zzz", k=20)
    assert everything["hits"] and max(h["score"] for h in everything["hits"]) < 1.0
    none = search(site, text="zzz", min_score=1.0)
    assert none["hits"] == []
    best = none["best_below"]
    assert best["name"] == everything["hits"][0]["name"] and best["score"] < 1.0
    assert best["media_url"].startswith("/api/media/")
    assert none["note"].startswith("no confident match; best was ")
    assert best["name"] in none["note"]


# -- feedback, near-duplicates -------------------------------------------------------------------
def test_liked_items_alone_are_more_like_these(site: str) -> None:
    item = ids(site)
    answer = search(site, like=item["red-copy.png"], k=5)
    assert names(answer)[0] == "red.png"  # the same picture, smaller
    assert "red-copy.png" not in names(answer)  # what was liked is not shown again
    listed = names(search(site, like=[item["red-copy.png"], item["green.png"]], k=5))
    assert listed[0] == "red.png" and not {"red-copy.png", "green.png"} & set(listed)


def test_feedback_refines_a_query_in_place(site: str) -> None:
    item = ids(site)
    plain = names(search(site, text="white", k=20))
    assert plain[0] == "lighthouse.txt"  # "on a white rock"
    liked = names(search(site, text="white", like=[item["blue.png"]], k=20))
    assert liked != plain and "blue.png" not in liked
    disliked = names(search(site, text="white", unlike=[item["lighthouse.txt"]], k=20))
    assert "lighthouse.txt" not in disliked and disliked
    missing = httpx.post(site + "/api/search", json={"text": "red", "like": [987654]})
    assert (
        missing.status_code == 404 and missing.json()["detail"] == "no item 987654 in this library"
    )
    alone = httpx.post(site + "/api/search", json={"unlike": [item["red.png"]]})
    assert alone.status_code == 400 and "nothing to search with" in alone.json()["detail"]


def test_dedupe_folds_a_resized_copy_into_one_hit(site: str) -> None:
    both = names(search(site, text="red", k=20))
    assert {"red.png", "red-copy.png"} <= set(both)
    answer = search(site, text="red", k=20, dedupe=True)
    found = names(answer)
    reds = [n for n in found if n.startswith("red")]
    assert len(reds) == 1, found
    hit = answer["hits"][found.index(reds[0])]
    other = "red.png" if reds[0] == "red-copy.png" else "red-copy.png"
    assert hit["similar"] == [ids(site)[other]]
    (twin,) = hit["similar_items"]
    assert twin["name"] == other and twin["item_modality"] == "image"
    assert httpx.get(site + twin["thumbnail_url"]).status_code == 200
    assert len(found) == len(both) - 1


# -- weights, fusion, rerankers ------------------------------------------------------------------
def test_source_weights_and_rank_fusion(site: str) -> None:
    base = search(site, text="zanzibar lighthouse")["hits"][0]
    no_words = search(site, text="zanzibar lighthouse", weights={"lexical": 0})["hits"]
    same = next(h for h in no_words if h["name"] == "lighthouse.txt")
    assert same["score"] < base["score"]
    lexical = next(e for e in same["evidence"] if e["source"] == "lexical")
    assert lexical["score"] == 0.0
    rrf = search(site, text="zanzibar lighthouse", fusion="rrf", k=20)
    assert rrf["fusion"] == "rrf" and "lighthouse.txt" in names(rrf)[:3]
    ranks = [h["signals"]["rrf"] for h in rrf["hits"]]
    assert len(ranks) > 3 and ranks == sorted(ranks, reverse=True)


def test_rerankers_are_chosen_by_name_among_those_the_server_runs(site: str) -> None:
    assert httpx.get(site + "/api/info").json()["rerankers"] == ["words"]
    texts = {"type": "text"}  # what this reranker reads
    for asked in (True, "words", ["words"]):
        answer = search(site, text="cherries red", filters=texts, rerank=asked, rerank_top=10)
        scores = [h["score"] for h in answer["hits"]]
        assert scores == sorted(scores, reverse=True)
        top = answer["hits"][0]
        assert top["name"] == "fruit.txt", names(answer)
        assert top["evidence"][0]["source"] == "rerank:words"
        assert top["evidence"][0]["raw"] == pytest.approx(0.95, abs=1e-4)
        assert top["signals"]["rerank"] == pytest.approx(0.95, abs=1e-4)
    for spec in ("hf:Salesforce/blip-itm-base-coco", "/etc", "cross-encoder:x"):
        refused = httpx.post(site + "/api/search", json={"text": "red", "rerank": spec})
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"] == (
            f"rerank: no reranker {spec!r} on this server; it offers words"
        )
    by_picture = httpx.post(site + "/api/search", json={"like": [1], "rerank": True})
    assert by_picture.status_code == 400 and "rerank needs words" in by_picture.json()["detail"]


def test_the_upload_form_takes_the_same_options(site: str, tmp_path: Path) -> None:
    solid("red", (64, 48)).save(tmp_path / "q.png")
    form = {"options": '{"dedupe": true}', "k": "5", "min_score": "0.5"}
    with open(tmp_path / "q.png", "rb") as f:
        resp = httpx.post(site + "/api/search/upload", files={"file": f}, data=form)
    assert resp.status_code == 200, resp.text
    reds = [n for n in names(resp.json()) if n.startswith("red")]
    assert len(reds) == 1 and resp.json()["hits"][0]["similar"]
    with open(tmp_path / "q.png", "rb") as f:
        bad = httpx.post(
            site + "/api/search/upload", files={"file": f}, data={"options": '{"fusion": "x"}'}
        )
    assert bad.status_code == 422 and bad.json()["detail"].startswith("fusion: Input should be")


# -- recommend -----------------------------------------------------------------------------------
def recommend(site: str, **body: Any) -> httpx.Response:
    return httpx.post(site + "/api/recommend", json=body, timeout=30)


def test_recommend_from_a_history(site: str) -> None:
    item = ids(site)
    resp = recommend(site, positive=[item["red-copy.png"]], k=4)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert names(answer)[0] == "red.png" and "red-copy.png" not in names(answer)
    assert len(answer["hits"]) == 4 and answer["note"] is None
    assert "evidence" in answer["hits"][0] and answer["hits"][0]["thumbnail_url"]
    seen = recommend(site, positive=[item["red-copy.png"]], exclude=[item["red.png"]], k=20)
    assert "red.png" not in names(seen.json())
    away = recommend(site, positive=[item["red-copy.png"]], negative=[item["lighthouse.txt"]])
    assert "lighthouse.txt" not in names(away.json())
    varied = recommend(site, positive=[item["red-copy.png"]], k=3, diversity=0.9, recency=0.5)
    assert varied.status_code == 200 and len(varied.json()["hits"]) == 3
    every = recommend(site, positive=[item["red-copy.png"]], k=20).json()["hits"]
    cut = recommend(site, positive=[item["red-copy.png"]], min_score=0.9, k=20).json()["hits"]
    assert cut[0]["name"] == "red.png" and all(h["score"] >= 0.9 for h in cut)
    assert len(cut) < len(every) and cut == every[: len(cut)]


def test_recommend_refuses_what_it_cannot_use(site: str) -> None:
    missing = recommend(site, positive=[987654])
    assert (
        missing.status_code == 404 and missing.json()["detail"] == "no item 987654 in this library"
    )
    for body, field in (
        ({"positive": []}, "positive"),
        ({}, "positive"),
        ({"positive": [1], "diversity": 1.5}, "diversity"),
        ({"positive": [1], "recency": 1}, "recency"),
        ({"positive": [1], "k": 0}, "k"),
        ({"positive": [1], "filters": {"type": "photo"}}, "filters"),
        ({"positive": ["a"]}, "positive"),
    ):
        resp = recommend(site, **body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["detail"].startswith(field + ":"), resp.json()["detail"]


# -- serve --reranker ----------------------------------------------------------------------------
def test_serve_loads_rerankers_at_start_and_a_bad_spec_is_one_line(
    library: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tiny_rerankers import make_tiny_cross_encoder

    folder = make_tiny_cross_encoder(tmp_path)
    config = ServerConfig(library[0], rerankers=[folder], warm_worker=False)
    with live_server(create_app(config, encoder=ColourEncoder())) as url:
        assert httpx.get(url + "/api/info").json()["rerankers"] == [folder]
        body = {"text": "cherries", "rerank": folder, "filters": {"type": "text"}}
        answer = httpx.post(url + "/api/search", json=body)
        assert answer.status_code == 200, answer.text
        reranked = [h for h in answer.json()["hits"] if h["signals"].get("rerank") is not None]
        assert reranked and all(h["evidence"][0]["source"].startswith("rerank:") for h in reranked)
    capsys.readouterr()  # what building the model printed
    code = main(
        ["serve", "--library", str(library[0]), "--port", str(free_port()), "--reranker", "nope:x"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "unknown reranker 'nope'" in err[0], err


def test_a_text_is_never_a_near_duplicate_of_a_picture(tmp_path: Path) -> None:
    """In the small library the note "Bananas are yellow and cherries are red." has the
    colour encoder's vector of yellow alone ("red." is not the word "red"): as close to
    yellow.png as a resized copy is. A note and a photo are still two things."""
    lib_dir, _ = build_library(tmp_path)
    with live_server(create_app(lib_dir, encoder=ColourEncoder(), warm_worker=False)) as url:
        answer = search(url, text="purple", k=20, dedupe=True)
        assert {"fruit.txt", "yellow.png"} <= set(names(answer)), names(answer)
        assert all(h["similar"] == [] for h in answer["hits"])


def test_a_text_space_answers_by_meaning_with_one_shared_model(tmp_path: Path) -> None:
    """A library with a sentence-embedding space (the real all-MiniLM-L6-v2, offline): the
    server loads that model once for all its readers, and a query in other words ("tropical
    fruit" for the note on bananas and cherries) finds the note by meaning."""
    from mmsearch.library import Library

    from tiny_st import real_minilm

    lib_dir, media = build_fusion_library(tmp_path)
    with Library.open(lib_dir, encoder=ColourEncoder(), text_model=str(real_minilm())) as lib:
        assert lib.add([media], workers=0).failed == 0
    app = create_app(lib_dir, encoder=ColourEncoder(), readers=2, warm_worker=False)
    with live_server(app) as url:
        pool = app.state.mm.readers()
        shared = pool.encoders["text_encoder"]
        assert all(r.lib.spaces["text"].encoder_obj is shared for r in pool._all)
        only_meaning = {"main/image": 0, "main/text": 0}  # the colour model knows no fruit
        answer = search(url, text="tropical fruit", mode="vector", weights=only_meaning)
        top = answer["hits"][0]
        assert top["name"] == "fruit.txt", names(answer)  # no word of the query in it
        assert top["evidence"][0]["source"] == "text/text"
        assert top["evidence"][0]["text"] == FUSION_NOTES["fruit.txt"]
        metrics = httpx.get(url + "/metrics").text
        assert 'mmsearch_encoder_duration_seconds_count{call="encode_text",space="text"}' in metrics
