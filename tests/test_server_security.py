"""Safe to leave running: binding, tokens, hosts, origins, upload limits, no path traversal."""

from __future__ import annotations

import argparse
import base64
import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mmsearch.cli import cmd_serve
from mmsearch.errors import LibraryError
from mmsearch.server import ServerConfigError, check_bind, create_app
from test_server_support import build_library

from fakes import ColourEncoder, solid
from media_gen import make_video

BASE = "http://127.0.0.1"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_library(tmp_path_factory.mktemp("security"))[0]


@pytest.fixture(scope="module")
def open_client(lib_dir: Path) -> Iterator[TestClient]:
    app = create_app(
        lib_dir,
        encoder=ColourEncoder(),
        max_upload_bytes=300_000,
        max_pixels=1_000_000,
        max_query_clip_s=2.0,
        max_duration_s=2.0,
        warm_worker=False,
    )
    with TestClient(app, base_url=BASE) as c:
        yield c


@pytest.fixture(scope="module")
def token_client(lib_dir: Path) -> Iterator[TestClient]:
    with TestClient(
        create_app(lib_dir, encoder=ColourEncoder(), token=TOKEN, warm_worker=False),
        base_url="http://0.0.0.0:8000",
    ) as c:
        yield c


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


# -- binding -------------------------------------------------------------------------------
def test_binding_beyond_loopback_needs_a_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, None)
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        with pytest.raises(ServerConfigError, match="without an API token"):
            check_bind(host, None)
        check_bind(host, TOKEN)
    parser = argparse.ArgumentParser()
    cmd_serve.add_arguments(parser)
    monkeypatch.delenv("MMSEARCH_TOKEN", raising=False)
    args = parser.parse_args(["--library", str(tmp_path), "--host", "0.0.0.0"])
    with pytest.raises(ServerConfigError):
        cmd_serve.run(args)  # refused before anything is opened or bound
    monkeypatch.setenv("MMSEARCH_TOKEN", TOKEN)
    config = cmd_serve.config_from_args(args)
    assert config.token == TOKEN and config.max_upload_bytes == 100 * 1024 * 1024
    args = parser.parse_args(
        [
            "--library",
            str(tmp_path),
            "--token",
            "other",
            "--allow-root",
            str(tmp_path),
            "--cors",
            "http://app.example",
            "--max-upload-mb",
            "2",
        ]
    )
    config = cmd_serve.config_from_args(args)
    assert config.token == "other" and config.allow_roots == [tmp_path.resolve()]
    assert config.cors_origins == ["http://app.example"] and config.max_upload_bytes == 2 * 1048576


def test_a_missing_library_is_refused_unless_a_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="no library"):
        create_app(tmp_path / "none")
    with TestClient(create_app(tmp_path / "new", encoder=ColourEncoder()), base_url=BASE) as c:
        assert c.get("/api/info").json()["items"] == 0
        assert c.post("/api/search", json={"text": "red"}).json()["hits"] == []


# -- token -----------------------------------------------------------------------------------
def test_with_a_token_every_request_but_health_needs_it(token_client: TestClient) -> None:
    c = token_client
    for method, path in [
        ("GET", "/"),
        ("GET", "/static/app.js"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("GET", "/metrics"),
        ("GET", "/api/info"),
        ("POST", "/api/search"),
        ("GET", "/api/media/1"),
        ("DELETE", "/api/items/1"),
        ("POST", "/knn-service"),
        ("GET", "/indices-list"),
        ("GET", "/no/such/route"),
    ]:
        resp = c.request(method, path)
        assert resp.status_code == 401, (method, path)
        assert resp.headers["www-authenticate"].startswith("Basic")
    assert c.get("/health").status_code == 200
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert c.post("/api/search", json={"text": "red"}, headers=bearer).status_code == 200
    assert c.get("/", headers=bearer).status_code == 200
    wrong = {"Authorization": "Bearer nope"}
    assert c.post("/api/search", json={"text": "red"}, headers=wrong).status_code == 401
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    assert c.get("/api/info", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    bad_basic = base64.b64encode(b"anyone:guess").decode()
    assert c.get("/api/info", headers={"Authorization": f"Basic {bad_basic}"}).status_code == 401
    assert c.get("/api/info", headers={"Authorization": "Basic !!!"}).status_code == 401
    # the host check is for token-less loopback servers; a token server may have any name
    assert c.get("/api/info", headers={**bearer, "Host": "search.example"}).status_code == 200


# -- browsers: hosts, origins, CORS, headers ----------------------------------------------
def test_unknown_host_names_are_refused_without_a_token(
    lib_dir: Path, open_client: TestClient
) -> None:
    rebound = open_client.get("/api/info", headers={"Host": "attacker.example"})
    assert rebound.status_code == 403 and "not served" in rebound.json()["detail"]
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert open_client.get("/api/info", headers={"Host": host}).status_code == 200
    app = create_app(
        lib_dir, encoder=ColourEncoder(), allowed_hosts=["search.lan"], warm_worker=False
    )
    with TestClient(app, base_url="http://search.lan") as c:
        assert c.get("/api/info").status_code == 200


def test_cross_site_writes_are_refused_and_cors_is_off_by_default(
    lib_dir: Path, open_client: TestClient
) -> None:
    evil = {"Origin": "http://evil.example"}
    refused = open_client.post("/api/search", json={"text": "red"}, headers=evil)
    assert refused.status_code == 403 and "cross-site" in refused.json()["detail"]
    assert open_client.delete("/api/items/1", headers=evil).status_code == 403
    same = open_client.post("/api/search", json={"text": "red"}, headers={"Origin": BASE})
    assert same.status_code == 200
    read = open_client.get("/api/info", headers=evil)
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers
    assert read.headers["x-content-type-options"] == "nosniff"
    app = create_app(
        lib_dir, encoder=ColourEncoder(), cors_origins=["http://app.example"], warm_worker=False
    )
    with TestClient(app, base_url=BASE) as c:
        pre = c.options(
            "/api/search",
            headers={
                "Origin": "http://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "http://app.example"
        ok = c.post("/api/search", json={"text": "red"}, headers={"Origin": "http://app.example"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "http://app.example"
        assert c.post("/api/search", json={"text": "red"}, headers=evil).status_code == 403


# -- limits ------------------------------------------------------------------------------------
def test_upload_limits_answer_413_and_422_with_reasons(
    open_client: TestClient, tmp_path: Path
) -> None:
    c = open_client
    big = png_bytes(Image.effect_noise((400, 400), 64).convert("RGB"))
    assert len(big) > 300_000
    declared = c.post("/api/search/upload", files={"file": ("big.png", big, "image/png")})
    assert declared.status_code == 413 and "MiB" in declared.json()["detail"]
    streamed = c.post(
        "/api/search",
        content=(big[i : i + 65536] for i in range(0, len(big), 65536)),
        headers={"Content-Type": "application/json"},
    )
    assert streamed.status_code == 413 and "too large" in streamed.json()["detail"]
    as_json = c.post("/api/search", json={"image": base64.b64encode(big).decode()})
    assert as_json.status_code == 413
    too_many = png_bytes(Image.new("L", (1200, 1000)))
    resp = c.post("/api/search/upload", files={"file": ("wide.png", too_many, "image/png")})
    assert resp.status_code == 422 and "1,200,000 pixels" in resp.json()["detail"]
    bomb = c.post("/api/search", json={"image": base64.b64encode(bomb_png()).decode()})
    assert bomb.status_code == 422 and "too large" in bomb.json()["detail"]
    upload = c.post("/api/items/upload", files=[("files", ("bomb.png", bomb_png(), "image/png"))])
    assert upload.status_code == 422
    clip = make_video(tmp_path / "long.mp4", [("red", 3.0)])
    for path in ("/api/search/upload", "/api/items/upload"):
        field = "file" if path.endswith("search/upload") else "files"
        resp = c.post(path, files={field: ("long.mp4", clip.read_bytes(), "video/mp4")})
        assert resp.status_code == 422 and "too long" in resp.json()["detail"], resp.text
    exe = c.post(
        "/api/items/upload",
        files={"files": ("tool.exe", b"MZ\x90\x00" * 50, "application/x-msdownload")},
    )
    assert exe.status_code == 415 and "unsupported file type" in exe.json()["detail"]
    assert c.get("/api/jobs").json()["jobs"] == []  # nothing refused was queued


# -- paths -----------------------------------------------------------------------------------
def test_no_parameter_reaches_outside_the_library(open_client: TestClient, tmp_path: Path) -> None:
    c = open_client
    for path in (
        "/api/media/..%2F..%2Fetc%2Fpasswd",
        "/api/media/1%2F..%2F..",
        "/static/../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/api/thumbs/items/abc",
        "/api/media/-1",
    ):
        resp = c.get(path)
        assert resp.status_code in (404, 422), path
        assert b"root:" not in resp.content
    secret = tmp_path / "secret.png"
    solid("red").save(secret)
    as_text = c.post("/api/search", json={"text": str(secret), "k": 1})
    assert as_text.status_code == 200  # a file name in the text is only text, never opened
    assert as_text.json()["hits"][0]["name"] != "secret.png"
    far = c.get("/api/items", params={"under": "/etc"}).json()
    assert far["items"] == []


def test_originals_are_never_served_as_active_content(open_client: TestClient) -> None:
    items = open_client.get("/api/items", params={"modality": "text"}).json()["items"]
    note = open_client.get(items[0]["media_url"])
    assert note.status_code == 200
    assert note.headers["content-type"] == "text/plain; charset=utf-8"
    assert note.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in note.headers["content-security-policy"]
