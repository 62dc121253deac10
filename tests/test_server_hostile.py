"""Hostile input never gets a 5xx: every request below is answered 4xx with a message.

Ids beyond SQLite's integer range, filters of the wrong shape, NaN and Infinity in
JSON, lone surrogates, nesting deep enough to exhaust the parser's stack, empty
multipart bodies: each is refused where it enters (404 for an id that names
nothing, 422 for a value of the wrong shape, 400/413/415 where a route says why).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from mmsearch.server import create_app
from test_server_support import build_library

from fakes import ColourEncoder, solid

BASE = "http://127.0.0.1"
HUGE = "99999999999999999999999"
JSON = {"content-type": "application/json"}
DEEP = "[" * 100_000 + "]" * 100_000
MULTIPART = {"content-type": "multipart/form-data; boundary=x"}
NON_UTF8_PART = (
    b'--x\r\nContent-Disposition: form-data; name="file"; filename="\xff\xfe.png"\r\n'
    b"Content-Type: image/png\r\n\r\nx\r\n--x--\r\n"
)


def raw(body: str) -> dict[str, Any]:
    """A JSON body sent as written (NaN, Infinity, escapes Python's json would refuse)."""
    return {"content": body.encode(), "headers": JSON}


def search(**body: Any) -> tuple[str, str, dict[str, Any]]:
    return ("POST", "/api/search", {"json": {"text": "red", **body}})


def upload_form(**data: str) -> dict[str, Any]:
    return {"files": {"files": ("a.png", b"x", "image/png")}, "data": data}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_library(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def client(built: tuple[Path, Path]) -> Iterator[TestClient]:
    app = create_app(built[0], encoder=ColourEncoder(), allow_roots=[built[1]], warm_worker=False)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        yield c


# (method, url, request keywords, the status expected)
EXACT: list[tuple[str, str, dict[str, Any], int]] = [
    # ids too large for SQLite, or below the first id
    ("GET", f"/api/media/{HUGE}", {}, 404),
    ("HEAD", f"/api/media/{HUGE}", {}, 404),
    ("GET", "/api/media/9223372036854775808", {}, 404),
    ("GET", "/api/media/-9223372036854775809", {}, 404),
    ("GET", f"/api/items/{HUGE}", {}, 404),
    ("GET", "/api/items/-5", {}, 404),
    ("GET", f"/api/thumbs/items/{HUGE}", {}, 404),
    ("GET", f"/api/thumbs/segments/{HUGE}", {}, 404),
    ("DELETE", f"/api/items/{HUGE}", {}, 404),
    ("POST", "/api/search", {"json": {"like": int(HUGE)}}, 422),
    ("POST", "/api/search", {"json": {"like": 0}}, 422),
    ("POST", "/api/search", {"json": {"parts": [{"kind": "item", "value": int(HUGE)}]}}, 422),
    ("POST", "/metadata", {"json": {"ids": [int(HUGE)]}}, 422),
    ("POST", "/metadata", {"json": {"ids": [True]}}, 422),
    ("GET", f"/api/items?offset={HUGE}", {}, 422),
    # filters of the wrong shape
    search(filters={"brand": {"x": 1}}) + (422,),
    search(filters={"price": {"gte": "abc"}}) + (422,),
    search(filters={"price": {"gte": None}}) + (422,),
    search(filters={"price": {}}) + (422,),
    search(filters={"price": ["a", "b"]}) + (422,),
    search(filters={"price": [1, 2, 3]}) + (422,),
    search(filters={"price": {"gte": int("9" * 400)}}) + (422,),
    search(filters={"price": [{"a": 1}]}) + (422,),
    search(filters={"type": 5}) + (422,),
    search(filters={"type": "photo"}) + (422,),
    search(filters={"type": [{"a": 1}]}) + (422,),
    search(filters={"path_prefix": {"a": 1}}) + (422,),
    search(filters={"path_prefix": "a\x00b"}) + (422,),
    search(filters={"path_prefix": "relative/folder"}) + (422,),
    search(filters={"date_from": {"a": 1}}) + (422,),
    search(filters={"date_from": "soon"}) + (422,),
    search(filters={"date_to": [2020]}) + (422,),
    search(filters={"modality": {"a": 1}}) + (422,),
    search(filters={"modality": "bogus"}) + (422,),
    search(filters={"": 1}) + (422,),
    search(modality="bogus") + (422,),
    ("POST", "/api/search", raw('{"text": "red", "filters": {"price": {"lte": NaN}}}'), 422),
    ("POST", "/api/search", raw('{"text": "red", "filters": {"price": Infinity}}'), 422),
    # non-finite numbers, lone surrogates, deep nesting
    ("POST", "/api/search", raw('{"text": "red", "min_score": NaN}'), 422),
    ("POST", "/api/search", raw('{"text": "red", "min_score": Infinity}'), 422),
    ("POST", "/api/search", raw('{"parts": [{"kind": "text", "value": "a", "weight": NaN}]}'), 422),
    (
        "POST",
        "/api/search",
        raw('{"parts": [{"kind": "text", "value": "a", "weight": Infinity}]}'),
        422,
    ),
    (
        "POST",
        "/api/search",
        raw(
            '{"parts": [{"kind": "text", "value": "a", "weight": 1e308},'
            ' {"kind": "text", "value": "b", "weight": 1e308}]}'
        ),
        422,
    ),
    ("POST", "/api/search", raw('{"text": "\\ud800"}'), 422),
    ("POST", "/api/search", raw('{"parts": [{"kind": "text", "value": "\\udfff x"}]}'), 422),
    ("POST", "/api/search", {"json": {"text": "red", "k": 10**30}}, 422),
    (
        "POST",
        "/api/search/upload",
        {"files": {"file": ("q.png", b"x")}, "data": {"filters": DEEP}},
        422,
    ),
    (
        "POST",
        "/api/search/upload",
        {"files": {"file": ("q.png", b"x")}, "data": {"weight": "nan"}},
        422,
    ),
    (
        "POST",
        "/api/search/upload",
        {"files": {"file": ("q.png", b"x")}, "data": {"filters": '{"price": {"gte": "abc"}}'}},
        422,
    ),
    ("POST", "/api/items/upload", upload_form(metadata=DEEP), 422),
    ("POST", "/api/items/upload", upload_form(metadata='{"a": NaN}'), 422),
    ("POST", "/api/items/upload", upload_form(metadata='{"a": {"b": 1}}'), 422),
    ("POST", "/api/items/paths", raw('{"paths": ["/x"], "metadata": {"a": NaN}}'), 422),
    ("POST", "/api/items/paths", raw('{"paths": ["/tmp/\\ud800"]}'), 422),
    # issue #10's fields: the cut-off, fusion, weights, feedback, dedupe, rerankers
    search(min_score=1.5) + (422,),
    search(min_score=-0.1) + (422,),
    search(min_score="high") + (422,),
    search(fusion="borda") + (422,),
    search(mode="fuzzy") + (422,),
    search(weights={"bogus": 1}) + (422,),
    search(weights={"main/image": -1}) + (422,),
    search(weights={"main/image": "x"}) + (422,),
    search(weights={"main/image": True}) + (422,),
    search(weights={"main/image": 10**400}) + (422,),
    search(weights=[1, 2]) + (422,),
    ("POST", "/api/search", raw('{"text": "red", "weights": {"lexical": NaN}}'), 422),
    ("POST", "/api/search", raw('{"text": "red", "weights": {"lexical": Infinity}}'), 422),
    search(like=[0]) + (422,),
    search(like="red") + (422,),
    search(like=[True]) + (422,),
    search(like=[1.5]) + (422,),
    search(like=list(range(1, 1100))) + (422,),
    search(unlike=[int(HUGE)]) + (422,),
    search(exclude=[-1]) + (422,),
    search(like=[987654]) + (404,),
    ("POST", "/api/search", {"json": {"unlike": [1]}}, 400),
    search(dedupe="maybe") + (422,),
    search(rerank=True) + (422,),  # this server was started without rerankers
    search(rerank="hf:Salesforce/blip-itm-base-coco") + (422,),
    search(rerank="/etc/passwd") + (422,),
    search(rerank="") + (422,),
    search(rerank="x" * 500) + (422,),
    search(rerank=["a"] * 9) + (422,),
    search(rerank={"spec": "blip:x"}) + (422,),
    search(rerank_top=0) + (422,),
    search(rerank_top=10**6) + (422,),
    ("POST", "/api/search", raw('{"text": "red", "rerank": "\\ud800"}'), 422),
    ("POST", "/api/recommend", {"json": {}}, 422),
    ("POST", "/api/recommend", {"json": {"positive": []}}, 422),
    ("POST", "/api/recommend", {"json": {"positive": [int(HUGE)]}}, 422),
    ("POST", "/api/recommend", {"json": {"positive": 0}}, 422),
    ("POST", "/api/recommend", {"json": {"positive": [1], "negative": "x"}}, 422),
    ("POST", "/api/recommend", {"json": {"positive": [1], "diversity": 2}}, 422),
    ("POST", "/api/recommend", {"json": {"positive": [1], "recency": 1}}, 422),
    ("POST", "/api/recommend", {"json": {"positive": [1], "min_score": 2}}, 422),
    ("POST", "/api/recommend", {"json": {"positive": [1], "k": 10**30}}, 422),
    ("POST", "/api/recommend", {"json": {"positive": [1], "filters": {"type": 5}}}, 422),
    ("POST", "/api/recommend", {"json": {"positive": [1], "rerank": True}}, 422),
    ("POST", "/api/recommend", raw('{"positive": [1], "diversity": NaN}'), 422),
    ("POST", "/api/recommend", {"json": {"positive": [987654]}}, 404),
    ("POST", "/api/recommend", {"json": {"positive": [1], "negative": [987654]}}, 404),
    (
        "POST",
        "/api/search/upload",
        {"files": {"file": ("q.png", b"x")}, "data": {"options": DEEP}},
        422,
    ),
    (
        "POST",
        "/api/search/upload",
        {"files": {"file": ("q.png", b"x")}, "data": {"options": "[1]"}},
        422,
    ),
    (
        "POST",
        "/api/search/upload",
        {"files": {"file": ("q.png", b"x")}, "data": {"options": '{"k": 3}'}},
        422,
    ),
    (
        "POST",
        "/api/search/upload",
        {"files": {"file": ("q.png", b"x")}, "data": {"options": '{"weights": {"x": 1}}'}},
        422,
    ),
    (
        "POST",
        "/api/search/upload",
        {"files": {"file": ("q.png", b"x")}, "data": {"min_score": "2"}},
        422,
    ),
    ("POST", "/knn-service", {"content": DEEP.encode()}, 400),
    ("POST", "/knn-service", raw('{"text": "red", "num_images": Infinity}'), 400),
    ("POST", "/knn-service", {"json": {"text": {"a": 1}}}, 400),
    ("POST", "/knn-service", raw('{"text": "\\ud800"}'), 400),
]


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    EXACT,
    ids=[f"{i:02d}-{m}-{u.split('?')[0][:30]}" for i, (m, u, _, _) in enumerate(EXACT)],
)
def test_hostile_requests_are_refused_with_a_reason(
    client: TestClient, method: str, url: str, kwargs: dict[str, Any], status: int
) -> None:
    resp = client.request(method, url, **kwargs)
    assert resp.status_code == status, resp.text
    if method != "HEAD":
        detail = resp.json()["detail"]
        assert isinstance(detail, str) and len(detail) > 5, detail


# Requests whose exact answer may vary (4xx of several kinds) but never 5xx.
ANY_4XX: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/media/-1", {}),
    ("GET", "/api/media/1.5", {}),
    ("GET", "/api/media/%00", {}),
    ("GET", "/api/items?limit=" + HUGE, {}),
    ("GET", "/api/items?under=%00", {}),
    ("GET", "/api/items?modality=bogus", {}),
    ("GET", "/api/thumbs/items/1?size=" + HUGE, {}),
    ("GET", "/api/jobs/x?wait=nan", {}),
    ("GET", "/api/jobs/" + "a" * 5000, {}),
    ("DELETE", "/api/jobs/nope", {}),
    ("POST", "/api/search", raw('{"text": ' + DEEP + "}")),
    ("POST", "/api/search", {"content": b'{"text": "\xff\xfe red"}', "headers": JSON}),
    ("POST", "/api/search", {"content": b"\xff\xfe", "headers": JSON}),
    ("POST", "/api/search", {"content": b"", "headers": JSON}),
    ("POST", "/api/search", {"json": [1, 2]}),
    ("POST", "/api/search", raw('{"embedding": [NaN, 1, 2]}')),
    ("POST", "/api/search", raw('{"embedding": [1e400, 1, 2]}')),
    ("POST", "/api/search", raw('{"text": "red", "like": [1e400]}')),
    ("POST", "/api/search", raw('{"text": "red", "weights": ' + DEEP + "}")),
    ("POST", "/api/recommend", raw('{"positive": ' + DEEP + "}")),
    ("POST", "/api/recommend", {"content": b"\xff\xfe", "headers": JSON}),
    ("POST", "/api/search", {"json": {"parts": [{"kind": "vector", "value": "x"}]}}),
    ("POST", "/api/search", {"json": {"image": "AAAA"}}),
    ("POST", "/api/search/upload", {"files": {}, "data": {}}),
    (
        "POST",
        "/api/search/upload",
        {"content": b"", "headers": {"content-type": "multipart/form-data"}},
    ),
    (
        "POST",
        "/api/search/upload",
        {"content": b"--x--\r\n", "headers": {"content-type": "multipart/form-data; boundary=x"}},
    ),
    ("POST", "/api/search/upload", {"files": {"file": ("q.png", b"")}}),
    ("POST", "/api/search/upload", {"content": NON_UTF8_PART, "headers": MULTIPART}),
    (
        "POST",
        "/api/items/upload",
        {"content": NON_UTF8_PART.replace(b'"file"', b'"files"'), "headers": MULTIPART},
    ),
    ("POST", "/api/items/upload", {"files": {}, "data": {}}),
    (
        "POST",
        "/api/items/upload",
        {"content": b"--x--\r\n", "headers": {"content-type": "multipart/form-data; boundary=x"}},
    ),
    ("POST", "/api/items/upload", {"files": {"files": ("", b"x")}}),
    ("POST", "/api/items/upload", upload_form(wait="inf")),
    ("POST", "/api/items/paths", {"json": {"paths": ["/etc"]}}),
    ("POST", "/api/items/paths", {"json": {"paths": []}}),
    ("POST", "/api/items/paths?wait=nan", {"json": {"paths": ["/x"]}}),
    ("POST", "/knn-service", raw('{"text": "red", "num_images": NaN}')),
    ("POST", "/knn-service", {"json": {"embedding_input": [[1, 2], [3]]}}),
    ("POST", "/knn-service", {"json": {"image": {"a": 1}}}),
    ("POST", "/knn-service", {"content": b"\xff\xfe"}),
    ("POST", "/metadata", {"json": {"ids": "abc"}}),
    ("POST", "/metadata", {"content": DEEP.encode()}),
]


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    ANY_4XX,
    ids=[f"{i:02d}-{m}-{u.split('?')[0][:30]}" for i, (m, u, _) in enumerate(ANY_4XX)],
)
def test_hostile_requests_never_get_a_server_error(
    client: TestClient, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    resp = client.request(method, url, **kwargs)
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])


def test_server_side_names_that_are_not_utf8_come_back_as_json(
    client: TestClient, built: tuple[Path, Path]
) -> None:
    """A path holding bytes that are not UTF-8 (sent as a surrogate escape) is answered
    with JSON whose text stands for those bytes, never with a 500."""
    media = built[1]
    resp = client.post(
        "/api/items/paths", **raw('{"paths": ["' + str(media) + '/\\udcff-missing"]}')
    )
    assert resp.status_code == 404, resp.text
    assert "missing" in resp.json()["detail"]


def test_names_that_are_not_utf8_never_break_an_answer(tmp_path: Path) -> None:
    """A folder whose name is not UTF-8 (Latin-1 bytes) can be added; the job's answer,
    its report and the hits name it with JSON escapes that stand for the same bytes."""
    lib_dir, _ = build_library(tmp_path)
    root = tmp_path / "incoming"
    odd = os.path.join(os.fsencode(root), b"caf\xe9")
    os.makedirs(odd)
    with open(os.path.join(odd, b"snow.png"), "wb") as f:
        solid("white", (41, 31)).save(f, "PNG")
    with open(os.path.join(odd, b"\xff.png"), "wb") as f:
        solid("white", (43, 33)).save(f, "PNG")
    app = create_app(lib_dir, encoder=ColourEncoder(), allow_roots=[root])
    with TestClient(app, base_url=BASE) as c:
        body = json.dumps({"paths": [os.fsdecode(odd)]})  # "\udce9" escapes the byte
        resp = c.post("/api/items/paths", params={"wait": 60}, **raw(body))
        assert resp.status_code == 200, resp.text
        job = resp.json()["job"]
        assert job["paths"] == [os.fsdecode(odd)] and job["state"] == "done", job
        again = c.get(f"/api/jobs/{job['id']}")
        assert again.status_code == 200 and again.json()["job"]["paths"] == [os.fsdecode(odd)]
        assert c.get("/api/jobs").status_code == 200
        hits = c.post(
            "/api/search", json={"text": "white", "k": 50, "filters": {"path_prefix": str(root)}}
        )
        assert hits.status_code == 200, hits.text
        found = {h["path"] for h in hits.json()["hits"]}
        added = job["report"]["added"]
        assert len(found) == added == 2, (found, job["report"])
        shown = odd.decode("utf-8", "replace")  # hits show paths for people
        assert all(p.startswith(shown) for p in found), found
        listed = c.get("/api/items?under=" + quote(odd))  # the bytes, percent-encoded
        assert listed.status_code == 200
