"""The path rule: a file is read or served only if its resolved path lies under an allowed
root and it is still the file that was indexed (issue #9, "Security").

Attacks tried here: symlinks planted in an allowed folder that lead out of it (to a file,
to a folder, as a caption sidecar, as subtitles), an indexed file swapped for a symlink to
a secret or for another file, and files reached through links when the CLI indexes (it
may follow links, but never twice into one file, never round a loop).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mmsearch.library import Library
from mmsearch.server import create_app

from fakes import ColourEncoder, solid

BASE = "http://127.0.0.1"
SECRET = "TOPSECRET launch codes 0000"


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """An allowed folder with planted links out, a secret folder outside, a library."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    solid("purple").save(outside / "private.png")
    allowed = tmp_path / "allowed"
    album = allowed / "album"
    album.mkdir(parents=True)
    solid("red").save(album / "red.png")
    solid("green").save(album / "green.png")
    (album / "note.txt").write_text("a note about the sea")
    os.symlink(outside / "secret.txt", album / "leak.txt")  # a file outside
    os.symlink(outside, album / "elsewhere")  # a folder outside
    os.symlink(outside / "secret.txt", album / "green.txt")  # a caption sidecar outside
    solid("blue").save(album / "inside_link_target.png")
    os.symlink(album / "inside_link_target.png", album / "zz_inside.png")  # stays inside
    return {"outside": outside, "allowed": allowed, "album": album, "lib": tmp_path / "lib"}


@pytest.fixture
def client(world: dict[str, Path]) -> Iterator[TestClient]:
    Library.open(world["lib"], encoder=ColourEncoder()).close()
    app = create_app(world["lib"], encoder=ColourEncoder(), allow_roots=[world["allowed"]])
    with TestClient(app, base_url=BASE) as c:
        yield c


def _add(c: TestClient, path: Path) -> dict:  # type: ignore[type-arg]
    resp = c.post("/api/items/paths", params={"wait": 60}, json={"paths": [str(path)]})
    assert resp.status_code == 200, resp.text
    job = resp.json()["job"]
    assert job["state"] == "done", job
    return job["report"]  # type: ignore[no-any-return]


def _items(c: TestClient) -> list[dict]:  # type: ignore[type-arg]
    resp = c.get("/api/items", params={"limit": 500})
    assert resp.status_code == 200
    return resp.json()["items"]  # type: ignore[no-any-return]


def test_server_ingest_does_not_follow_links_out_of_allowed_roots(
    client: TestClient, world: dict[str, Path]
) -> None:
    report = _add(client, world["album"])  # the parent folder, not the link itself
    skipped = {os.path.basename(s["path"]): s["reason"] for s in report["skipped_files"]}
    assert skipped["leak.txt"] == "symlink to outside the allowed folders"
    assert skipped["elsewhere"] == "symlink to outside the allowed folders"
    assert skipped["zz_inside.png"].startswith("same file as")  # a link inside: fine, once
    paths = sorted(os.path.basename(i["path"]) for i in _items(client))
    assert paths == ["green.png", "inside_link_target.png", "note.txt", "red.png"]
    # The outside caption was not attached, and nothing of the secret is searchable.
    green = next(i for i in _items(client) if i["path"].endswith("green.png"))
    assert "caption" not in green.get("metadata", {})
    lexical = client.post("/api/search", json={"text": "TOPSECRET", "mode": "lexical"})
    assert lexical.status_code == 200 and lexical.json()["hits"] == []
    # No item's file resolves outside the allowed folder, so none can be served from there.
    for item in _items(client):
        real = os.path.realpath(item["path"])
        assert real.startswith(str(world["allowed"]) + os.sep), real


def test_media_refuses_a_file_swapped_for_a_link_or_another_file(
    client: TestClient, world: dict[str, Path]
) -> None:
    _add(client, world["album"])
    ids = {os.path.basename(i["path"]): i["item_id"] for i in _items(client)}
    note, red = ids["note.txt"], ids["red.png"]
    assert client.get(f"/api/media/{note}").text == "a note about the sea"
    assert client.get(f"/api/thumbs/items/{red}").status_code == 200
    # Swapped for a link to a secret: the secret is never served.
    (world["album"] / "note.txt").unlink()
    os.symlink(world["outside"] / "secret.txt", world["album"] / "note.txt")
    resp = client.get(f"/api/media/{note}")
    assert resp.status_code == 404 and SECRET not in resp.text
    assert client.head(f"/api/media/{note}").status_code == 404
    # Swapped for another regular file (a new inode): not the file indexed either.
    (world["album"] / "red.png").unlink()
    solid("purple").save(world["album"] / "red.png")
    assert client.get(f"/api/media/{red}").status_code == 404
    assert client.get(f"/api/thumbs/items/{red}?size=128").status_code == 404
    # Edited in place (same inode): not what was indexed until it is indexed again.
    green = ids["green.png"]
    ranged = client.get(f"/api/media/{green}", headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == b"\x89PNG"
    with open(world["album"] / "green.png", "r+b") as fh:
        fh.seek(0, os.SEEK_END)
        fh.write(b"\0")
    assert client.get(f"/api/media/{green}").status_code == 404
    _add(client, world["album"])
    green = next(i for i in _items(client) if i["path"].endswith("green.png"))["item_id"]
    assert client.get(f"/api/media/{green}").status_code == 200


def test_items_indexed_through_links_are_served_only_under_allowed_roots(
    tmp_path: Path, world: dict[str, Path]
) -> None:
    # The CLI (a user's own files) follows links: the purple photo is indexed through
    # album/elsewhere -> outside/. The server serves it only when its real folder is allowed.
    with Library.open(world["lib"], encoder=ColourEncoder()) as lib:
        lib.add(world["album"], workers=0)
        hit = next(h for h in lib.search("purple", k=10) if h.path.endswith("private.png"))
    app = create_app(world["lib"], encoder=ColourEncoder())
    with TestClient(app, base_url=BASE) as c:
        assert c.get(f"/api/media/{hit.item_id}").status_code == 404
        red = next(i for i in _items(c) if i["path"].endswith("red.png"))
        assert c.get(f"/api/media/{red['item_id']}").status_code == 200  # under an indexed root
    app = create_app(world["lib"], encoder=ColourEncoder(), allow_roots=[world["outside"]])
    with TestClient(app, base_url=BASE) as c:
        assert c.get(f"/api/media/{hit.item_id}").status_code == 200


def test_cli_follows_links_but_never_twice_into_one_file_nor_round_a_loop(
    tmp_path: Path,
) -> None:
    root = tmp_path / "photos"
    (root / "trip").mkdir(parents=True)
    solid("red").save(root / "trip" / "a.png")
    os.symlink(root / "trip" / "a.png", root / "trip" / "b.png")  # the same file again
    os.symlink(root / "trip", root / "trip_again")  # the same folder again
    os.symlink(root, root / "trip" / "up")  # a loop
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        report = lib.add(root, workers=0)
        assert report.added == 1, report.to_dict()
        reasons = {os.path.relpath(s.path, root): s.reason for s in report.skips}
        assert reasons == {"trip/b.png": f"same file as {root / 'trip' / 'a.png'}"}
        assert [os.path.relpath(f.path, root) for f in report.failures] == ["trip/up"]
        assert report.failures[0].reason == "symlink loop"
        assert [h.path for h in lib.search("red", k=5)] == [str(root / "trip" / "a.png")]
