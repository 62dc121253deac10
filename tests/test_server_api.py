"""The HTTP API over a real library: search in every form, media, items, jobs, metrics."""

from __future__ import annotations

import base64
import io
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from mmsearch.library import Library
from mmsearch.server import create_app
from mmsearch.server.readers import ReaderPool
from test_server_support import build_library

from fakes import ColourEncoder, solid

BASE = "http://127.0.0.1"


def png(colour: str, size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    solid(colour, size).save(buf, "PNG")
    return buf.getvalue()


def names(resp) -> list[str]:  # type: ignore[no-untyped-def]
    assert resp.status_code == 200, resp.text
    return [h["name"] for h in resp.json()["hits"]]


def mean_rgb(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), np.float32).mean(axis=(0, 1))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_library(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def client(built: tuple[Path, Path]) -> Iterator[TestClient]:
    """A read-only use of the shared library (tests here never write)."""
    app = create_app(built[0], encoder=ColourEncoder(), warm_worker=False)
    with TestClient(app, base_url=BASE) as c:
        yield c


@pytest.fixture
def fresh(tmp_path: Path) -> tuple[Path, Path]:
    return build_library(tmp_path)


# -- search ------------------------------------------------------------------------------
def test_text_search_returns_expected_hit_with_thumbnail(client: TestClient) -> None:
    resp = client.post("/api/search", json={"text": "red", "k": 3})
    hits = resp.json()["hits"]
    assert names(resp)[0] == "red.png"
    top = hits[0]
    assert top["item_modality"] == "image" and top["score"] > 0.9
    assert top["media_url"] == f"/api/media/{top['item_id']}"
    thumb = client.get(top["thumbnail_url"], params={"size": 100})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    r, g, b = mean_rgb(thumb.content)
    assert r > 180 and g < 80 and b < 80
    again = client.get(
        top["thumbnail_url"], params={"size": 100}, headers={"If-None-Match": thumb.headers["etag"]}
    )
    assert again.status_code == 304


def test_image_search_by_base64_data_url_and_upload(client: TestClient) -> None:
    blue = png("blue")
    b64 = base64.b64encode(blue).decode()
    assert names(client.post("/api/search", json={"image": b64}))[0] == "blue.png"
    data_url = "data:image/png;base64," + b64
    assert names(client.post("/api/search", json={"image": data_url}))[0] == "blue.png"
    up = client.post(
        "/api/search/upload", files={"file": ("q.png", blue, "image/png")}, data={"k": "2"}
    )
    assert names(up)[0] == "blue.png" and len(up.json()["hits"]) == 2
    mixed = client.post(
        "/api/search/upload",
        files={"file": ("q.png", png("green"), "image/png")},
        data={"text": "purple", "weight": "0.2"},
    )
    assert names(mixed)[0] == "purple.png"


def test_weighted_parts_vectors_like_and_filters(
    client: TestClient, built: tuple[Path, Path]
) -> None:
    both = names(
        client.post(
            "/api/search",
            json={
                "parts": [{"kind": "text", "value": "red"}, {"kind": "text", "value": "yellow"}],
                "k": 2,
            },
        )
    )
    assert sorted(both) == ["red.png", "yellow.png"]
    steer = names(
        client.post(
            "/api/search",
            json={
                "parts": [
                    {"kind": "text", "value": "red orange"},
                    {"kind": "text", "value": "red", "weight": -0.9},
                ],
                "k": 1,
            },
        )
    )
    assert steer == ["orange.png"]
    vec = ColourEncoder().encode_text(["green"])[0].tolist()
    assert names(client.post("/api/search", json={"embedding": vec}))[0] == "green.png"
    red_id = client.post("/api/search", json={"text": "red", "k": 1}).json()["hits"][0]["item_id"]
    like = client.post("/api/search", json={"like": red_id, "k": 20}).json()["hits"]
    assert red_id not in [h["item_id"] for h in like] and like
    texts = names(
        client.post(
            "/api/search", json={"text": "yellow", "modality": "text", "filters": {"type": "text"}}
        )
    )
    assert texts[0] == "fruit.txt"
    media = built[1]
    under = client.post(
        "/api/search", json={"text": "white", "filters": {"path_prefix": str(media / "photos")}}
    ).json()["hits"]
    assert under and all(h["path"].startswith(str(media / "photos")) for h in under)
    lexical = names(client.post("/api/search", json={"text": "harbour", "mode": "lexical"}))
    assert lexical[:1] == ["blue.png"]
    pictures = {"text": "red", "min_score": 0.5, "modality": "image"}
    assert names(client.post("/api/search", json=pictures)) == ["red.png"]
    # A text query searches texts too: the note saying "cherries are red" is found.
    assert "fruit.txt" in names(client.post("/api/search", json={"text": "red"}))


def test_video_moment_plays_from_its_start_with_range_requests(
    client: TestClient, built: tuple[Path, Path]
) -> None:
    top = client.post("/api/search", json={"text": "white"}).json()["hits"][0]
    assert top["name"] == "night-day.mp4" and top["item_modality"] == "video"
    assert top["play_from"] == pytest.approx(3.0, abs=0.6)
    seg = top["segments"][0]
    assert seg["play_from"] == top["play_from"] and seg["t_end"] >= 5.0
    frame = client.get(top["thumbnail_url"])
    assert frame.status_code == 200 and mean_rgb(frame.content).mean() > 180  # the white scene
    item_thumb = client.get(f"/api/thumbs/items/{top['item_id']}")
    assert item_thumb.status_code == 200 and mean_rgb(item_thumb.content).mean() < 90  # opens black
    data = (built[1] / "clips" / "night-day.mp4").read_bytes()
    part = client.get(top["media_url"], headers={"Range": "bytes=100-299"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-299/{len(data)}"
    assert part.content == data[100:300]
    whole = client.get(top["media_url"])
    assert whole.headers["content-type"] == "video/mp4" and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    head = client.head(top["media_url"])
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(data)


def test_items_paging_detail_and_missing(client: TestClient) -> None:
    first = client.get("/api/items", params={"limit": 3}).json()
    assert len(first["items"]) == 3 and first["next_offset"] == 3 and first["total"] == 8
    rest = client.get("/api/items", params={"offset": 3, "limit": 50}).json()
    assert rest["next_offset"] is None and len(rest["items"]) == 5
    ids = [i["item_id"] for i in first["items"] + rest["items"]]
    assert len(set(ids)) == 8
    videos = client.get("/api/items", params={"modality": "video"}).json()["items"]
    assert [v["name"] for v in videos] == ["night-day.mp4"]
    detail = client.get(f"/api/items/{videos[0]['item_id']}").json()
    timed = [s for s in detail["segments"] if s["t_start"] is not None]
    assert timed and all("thumbnail_url" in s for s in timed)
    assert client.get("/api/items/99999").status_code == 404
    assert client.get("/api/media/99999").status_code == 404
    assert client.get("/api/thumbs/segments/99999").status_code == 404
    note = next(i for i in rest["items"] + first["items"] if i["name"] == "fruit.txt")
    assert client.get(f"/api/thumbs/items/{note['item_id']}").status_code == 404


def test_bad_searches_answer_with_clear_errors(client: TestClient) -> None:
    empty = client.post("/api/search", json={"k": 3})
    assert empty.status_code == 400 and "nothing to search" in empty.json()["detail"]
    assert client.post("/api/search", json={"text": "red", "colour": 1}).status_code == 422
    assert client.post("/api/search", json={"text": "red", "k": 0}).status_code == 422
    bad64 = client.post("/api/search", json={"image": "not base64!"})
    assert bad64.status_code == 400 and "base64" in bad64.json()["detail"]
    wrong_dim = client.post("/api/search", json={"embedding": [0.1, 0.2, 0.3]})
    assert wrong_dim.status_code == 400
    bad_mode = client.post("/api/search", json={"text": "red", "mode": "fuzzy"})
    assert bad_mode.status_code == 422
    bad_date = client.post("/api/search", json={"text": "red", "filters": {"date_from": "soon"}})
    assert bad_date.status_code == 422
    assert bad_date.json()["detail"] == (
        "filters: date_from: not a date: 'soon' (use YYYY-MM-DD or an ISO date-time)"
    )
    bad_range = client.post("/api/search", json={"text": "red", "filters": {"price": {"gte": "x"}}})
    assert bad_range.status_code == 422
    assert bad_range.json()["detail"] == "filters: price: the gte bound must be a number, not 'x'"
    bad_type = client.post("/api/search", json={"text": "red", "filters": {"type": "photo"}})
    assert "unknown 'photo'; known: image, text, video, audio" in bad_type.json()["detail"]
    huge = "99999999999999999999999"
    for url in (f"/api/items/{huge}", f"/api/media/{huge}", f"/api/thumbs/items/{huge}"):
        assert client.get(url).json()["detail"] == f"no item {huge}"
    assert client.get(f"/api/thumbs/segments/{huge}").json()["detail"] == f"no segment {huge}"
    like = client.post("/api/search", json={"like": int(huge)})
    assert like.status_code == 422
    assert like.json()["detail"].startswith("like: an item id must be an integer from 1")


def test_head_answers_every_get_route_like_get_without_a_body(client: TestClient) -> None:
    head = client.head("/health")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(client.get("/health").content)
    video = client.get("/api/items", params={"modality": "video"}).json()["items"][0]
    segment = client.get(f"/api/items/{video['item_id']}").json()["segments"][0]
    values = {"item_id": video["item_id"], "segment_id": segment["segment_id"], "job_id": "none"}
    paths = [p for p, ops in client.get("/openapi.json").json()["paths"].items() if "get" in ops]
    paths += ["/", "/docs"]
    assert len(paths) > 10
    for path in paths:
        url = path.format(**values)
        got, head = client.get(url), client.head(url)
        assert head.status_code == got.status_code, (url, head.status_code, got.status_code)
        assert head.content == b"", url
        if got.status_code == 200 and path != "/metrics":  # metrics change between calls
            assert int(head.headers["content-length"]) == len(got.content), url


def test_health_info_docs_and_metrics(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/api/info").json()
    assert info["items"] == 8 and info["library"] == "lib" and "path" not in info
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/search",
        "/api/search/upload",
        "/api/recommend",
        "/api/items/upload",
        "/api/items/paths",
        "/api/jobs/{job_id}",
        "/api/media/{item_id}",
        "/knn-service",
        "/metadata",
    ):
        assert path in spec["paths"], path
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    client.post("/api/search", json={"text": "blue"})
    text = client.get("/metrics").text
    assert 'mmsearch_http_requests_total{method="POST",route="/api/search",status="200"}' in text
    assert (
        'mmsearch_http_request_duration_seconds_bucket{le="0.001",method="POST",route="/api/search"}'
        in text
    )
    assert 'mmsearch_encoder_duration_seconds_count{call="encode_text",space="main"}' in text
    assert 'mmsearch_search_duration_seconds_count{kind="text"}' in text
    assert 'mmsearch_items{modality="image"} 6.0' in text
    assert 'mmsearch_index_vectors{modality="image",space="main"}' in text
    assert "process_resident_memory_bytes" in text
    client.get("/no/such/page/123")
    assert 'route="other",status="404"' in client.get("/metrics").text


# -- writing: jobs ---------------------------------------------------------------------------
def test_upload_job_adds_items_and_delete_removes_them(fresh: tuple[Path, Path]) -> None:
    lib_dir, _ = fresh
    with TestClient(create_app(lib_dir, encoder=ColourEncoder()), base_url=BASE) as c:
        resp = c.post(
            "/api/items/upload",
            files=[
                ("files", ("new white.png", png("white"), "image/png")),
                ("files", ("new white.txt", b"a snowfield at noon", "text/plain")),
            ],
            data={"metadata": '{"album": "winter", "year": 2024}', "wait": "60"},
        )
        assert resp.status_code == 200, resp.text
        job = resp.json()["job"]
        assert job["state"] == "done" and job["report"]["added"] == 1 and job["source"] == "upload"
        hit = c.post("/api/search", json={"text": "white", "filters": {"album": "winter"}}).json()[
            "hits"
        ]
        assert [h["name"] for h in hit] == ["new white.png"]
        assert hit[0]["metadata"]["caption"] == "a snowfield at noon"
        assert hit[0]["metadata"]["year"] == 2024
        assert any(j["id"] == job["id"] for j in c.get("/api/jobs").json()["jobs"])
        assert c.get(f"/api/jobs/{job['id']}").json()["job"]["state"] == "done"
        stored = Path(hit[0]["path"])
        assert stored.is_file() and stored.parent.parent == lib_dir / "uploads"
        gone = c.delete(f"/api/items/{hit[0]['item_id']}")
        assert gone.json() == {"removed": 1, "item_id": hit[0]["item_id"]}
        assert not stored.exists()
        assert names(c.post("/api/search", json={"text": "white", "k": 1})) == ["night-day.mp4"]
        assert c.delete(f"/api/items/{hit[0]['item_id']}").status_code == 404
        assert c.get("/api/jobs/no-such-job").status_code == 404


def test_add_server_paths_only_under_allowed_roots(
    fresh: tuple[Path, Path], tmp_path: Path
) -> None:
    lib_dir, _ = fresh
    allowed = tmp_path / "incoming"
    (allowed / "day").mkdir(parents=True)
    solid("white").save(allowed / "day" / "snow.png")
    secret = tmp_path / "secret"
    secret.mkdir()
    solid("black").save(secret / "hidden.png")
    (allowed / "escape").symlink_to(secret)
    with TestClient(
        create_app(lib_dir, encoder=ColourEncoder(), allow_roots=[allowed]), base_url=BASE
    ) as c:
        ok = c.post(
            "/api/items/paths",
            params={"wait": 60},
            json={"paths": [str(allowed / "day")], "metadata": {"batch": "b1"}},
        )
        assert ok.status_code == 200 and ok.json()["job"]["report"]["added"] == 1
        hits = c.post("/api/search", json={"text": "white", "filters": {"batch": "b1"}}).json()[
            "hits"
        ]
        assert [h["name"] for h in hits] == ["snow.png"]
        for bad, status in [
            (str(secret), 403),
            (str(allowed / ".." / "secret"), 403),
            (str(allowed / "escape"), 403),
            (str(allowed / "escape" / "hidden.png"), 403),
            ("incoming/day", 400),
            (str(allowed / "nothing-here"), 404),
        ]:
            resp = c.post("/api/items/paths", json={"paths": [bad]})
            assert resp.status_code == status, (bad, resp.text)
            assert resp.json()["detail"]
        assert (
            c.post("/api/search", json={"text": "black", "k": 1}).json()["hits"][0]["name"]
            == "night-day.mp4"
        )
    with TestClient(create_app(lib_dir, encoder=ColourEncoder()), base_url=BASE) as c:
        off = c.post("/api/items/paths", json={"paths": [str(allowed / "day")]})
        assert off.status_code == 403 and "--allow-root" in off.json()["detail"]


def _many(folder: Path, n: int, colour: str = "white") -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        solid(colour, (40 + i, 30)).save(folder / f"{colour}-{i:02d}.png")
    return folder


def _slow_jobs(
    fresh: tuple[Path, Path], tmp_path: Path, n: int, *, delay_s: float, batch: int, **options: Any
) -> tuple[FastAPI, Path]:
    """An app over ``fresh`` allowed to add a folder of ``n`` white images, slowly: the
    encoder takes ``delay_s`` a call and a job commits every ``batch`` files."""
    lib_dir, _ = fresh
    incoming = _many(tmp_path / "incoming", n)
    app = create_app(
        lib_dir,
        encoder=ColourEncoder(delay_s=delay_s),
        allow_roots=[incoming],
        job_batch_size=batch,
        **options,
    )
    return app, incoming


def _add(c: TestClient, folder: Path, **params: Any) -> dict[str, Any]:
    """The job adding ``folder`` (``wait=S``: once it ended, within S seconds)."""
    return c.post("/api/items/paths", params=params, json={"paths": [str(folder)]}).json()["job"]


def _whites(incoming: Path) -> dict[str, Any]:
    """The search for every white image under ``incoming``."""
    return {"text": "white", "k": 40, "filters": {"path_prefix": str(incoming)}}


def test_searches_stay_consistent_while_a_job_runs(
    fresh: tuple[Path, Path], tmp_path: Path
) -> None:
    app, incoming = _slow_jobs(fresh, tmp_path, 24, delay_s=0.04, batch=3, readers=2)
    with TestClient(app, base_url=BASE) as c:
        job = _add(c, incoming)
        seen_counts, blue_scores, progress = [], set(), []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            blue = c.post("/api/search", json={"text": "blue", "k": 1}).json()["hits"][0]
            assert blue["name"] == "blue.png"
            blue_scores.add(blue["score"])
            whites = c.post("/api/search", json=_whites(incoming))
            found = [h["name"] for h in whites.json()["hits"]]
            assert len(found) == len(set(found))
            seen_counts.append(len(found))
            state = c.get(f"/api/jobs/{job['id']}").json()["job"]
            progress.append(state["progress"].get("net_new_items"))
            if state["state"] != "running" and state["state"] != "queued":
                break
        assert state["state"] == "done", state
        final = c.post("/api/search", json=_whites(incoming)).json()["hits"]
    assert len(final) == 24
    assert len(blue_scores) == 1
    assert seen_counts == sorted(seen_counts)  # commits only ever add
    assert any(0 < n < 24 for n in seen_counts), seen_counts  # searched between commits
    assert any(p for p in progress if p), progress


def test_a_killed_job_keeps_what_it_committed_and_a_rerun_finishes(
    fresh: tuple[Path, Path], tmp_path: Path
) -> None:
    app, incoming = _slow_jobs(fresh, tmp_path, 20, delay_s=0.1, batch=2)
    query = _whites(incoming)
    with TestClient(app, base_url=BASE) as c:
        job = _add(c, incoming)
        deadline = time.monotonic() + 60
        while len(c.post("/api/search", json=query).json()["hits"]) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        pid = app.state.mm.job_manager().running_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # a crash, not a polite cancel
        dead = c.get(f"/api/jobs/{job['id']}", params={"wait": 30}).json()["job"]
        assert dead["state"] == "failed" and "ended unexpectedly" in dead["error"]
        kept = len(c.post("/api/search", json=query).json()["hits"])
        assert 4 <= kept < 20
        again = _add(c, incoming, wait=60)
        assert again["state"] == "done"
        assert again["report"]["added"] == 20 - kept and again["report"]["unchanged"] == kept
        assert len(c.post("/api/search", json=query).json()["hits"]) == 20


def test_cancel_stops_a_job_politely(fresh: tuple[Path, Path], tmp_path: Path) -> None:
    app, incoming = _slow_jobs(fresh, tmp_path, 30, delay_s=0.1, batch=2)
    with TestClient(app, base_url=BASE) as c:
        first = _add(c, incoming)
        queued = _add(c, incoming)
        assert queued["state"] == "queued"
        assert c.delete(f"/api/jobs/{queued['id']}").json()["job"]["state"] == "cancelled"
        while c.get(f"/api/jobs/{first['id']}").json()["job"]["state"] == "queued":
            time.sleep(0.05)
        time.sleep(0.5)
        c.delete(f"/api/jobs/{first['id']}")
        done = c.get(f"/api/jobs/{first['id']}", params={"wait": 30}).json()["job"]
        assert done["state"] == "cancelled"
        items = c.get("/api/items", params={"under": str(incoming), "limit": 100}).json()["items"]
        assert len(items) < 30


def test_an_idle_reader_sees_commits_made_across_a_checkpoint(
    fresh: tuple[Path, Path], tmp_path: Path
) -> None:
    """A writer that closes saves the index files and trims the journal they absorbed;
    a long-lived reader that was idle meanwhile must still see every commit."""
    lib_dir, _ = fresh
    incoming = _many(tmp_path / "incoming", 3)
    pool = ReaderPool(lib_dir, 1, {"encoder": ColourEncoder()})
    query = {"k": 20, "filters": {"path_prefix": str(incoming)}}
    try:
        with pool.library() as lib:
            assert lib.search("white", k=1)[0].path.endswith("night-day.mp4")  # indexes loaded
            assert lib.search("white", **query) == []  # type: ignore[arg-type]
        with Library.open(lib_dir, encoder=ColourEncoder()) as writer:
            assert writer.add([incoming], workers=0).added == 3
        with pool.library() as lib:
            assert len(lib.search("white", **query)) == 3  # type: ignore[arg-type]
    finally:
        pool.close()
