"""``GET /api/browse``: the library newest first, paged and filtered, and its refusals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mmsearch.server import create_app
from test_server_page_support import PHOTO_COUNT, DatedLibrary, build_dated_library

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> DatedLibrary:
    return build_dated_library(tmp_path_factory.mktemp("browse"))


@pytest.fixture(scope="module")
def client(dated: DatedLibrary) -> Iterator[TestClient]:
    with TestClient(create_app(dated.lib_dir, **dated.app_encoders()), base_url=BASE) as c:
        yield c


def browse(client: TestClient, **params: Any) -> dict[str, Any]:
    resp = client.get("/api/browse", params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def names(page: dict[str, Any]) -> list[str]:
    return [it["name"] for it in page["items"]]


def all_pages(client: TestClient, limit: int, **params: Any) -> list[str]:
    out: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = browse(client, offset=offset, limit=limit, **params)
        assert page["items"], "a page that says more follows is never empty"
        out += names(page)
        offset = page["next_offset"]
    return out


def test_pages_list_every_item_once_newest_first(client: TestClient, dated: DatedLibrary) -> None:
    expected = dated.newest_first()
    assert len(expected) == PHOTO_COUNT + 4
    first = browse(client, limit=10)
    assert names(first) == expected[:10]
    assert first["total"] == len(expected) and first["next_offset"] == 10
    assert all_pages(client, 7) == expected
    last = browse(client, offset=len(expected) - 3, limit=10)
    assert names(last) == expected[-3:] and last["next_offset"] is None
    assert browse(client, offset=len(expected) + 5)["items"] == []


def test_items_have_the_shape_of_api_items(client: TestClient) -> None:
    page = browse(client, limit=500)
    by_kind = {it["modality"]: it for it in page["items"]}
    assert set(by_kind) == {"image", "video", "audio", "text"}
    for item in by_kind.values():
        same = client.get(f"/api/items/{item['item_id']}").json()
        same.pop("segments")
        assert item == same
        assert item["media_url"] == f"/api/media/{item['item_id']}"
    assert client.get(by_kind["image"]["thumbnail_url"]).status_code == 200
    assert by_kind["audio"]["thumbnail_url"] is None


def test_type_folder_and_date_filters(client: TestClient, dated: DatedLibrary) -> None:
    sounds = browse(client, type="audio")
    assert names(sounds) == ["tones.flac", "hum.ogg"] and sounds["total"] == 2
    in_2023 = [n for n in dated.newest_first() if n.startswith("2023-")]
    folder = str(dated.media / "photos" / "2023")
    assert all_pages(client, 12, under=folder) == in_2023
    assert names(browse(client, under=folder + "/", limit=500)) == in_2023
    assert all_pages(client, 12, under=str(dated.media), type="image")[-len(in_2023) :] == in_2023
    # Whole days at both ends; the first photo of 2024 is on Jan 8th.
    june = browse(client, date_from="2024-06-01", date_to="2024-06-30", limit=500)
    expect = [
        n
        for n in dated.newest_first()
        if dt.date(2024, 6, 1) <= dated.dates[n].date() <= dt.date(2024, 6, 30)
    ]
    assert names(june) == expect and "tones.flac" in expect
    assert names(browse(client, date_from="2025-01-15")) == ["night-day.mp4"]
    assert names(browse(client, date_to="2022-05-01")) == ["fruit.txt"]
    assert browse(client, date_from="2030-01-01") == {
        "items": [],
        "offset": 0,
        "limit": 48,
        "next_offset": None,
        "total": 0,
        "filters": {"date_from": "2030-01-01"},
    }


def test_under_is_only_compared_as_text(
    client: TestClient, dated: DatedLibrary, tmp_path: Path
) -> None:
    link = tmp_path / "link-to-media"
    link.symlink_to(dated.media, target_is_directory=True)
    assert browse(client, under=str(link))["total"] == 0  # never resolved on disk
    assert browse(client, under="/no/such/folder")["total"] == 0
    dotted = str(dated.media / "photos" / "2023" / ".." / "2024")
    assert browse(client, under=dotted)["filters"]["path_prefix"] == str(
        dated.media / "photos" / "2024"
    )


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"offset": -1}, 422, "offset"),
        ({"offset": "99999999999999999999999"}, 422, "offset"),
        ({"limit": 0}, 422, "limit"),
        ({"limit": 501}, 422, "limit"),
        ({"type": "pdf"}, 422, "type"),
        ({"under": "photos/2023"}, 400, "absolute"),
        ({"under": "~someone/photos"}, 400, "absolute"),
        ({"under": "/a\x00b"}, 400, "NUL"),
        ({"under": "/" + "x" * 5000}, 422, "under"),
        ({"date_from": "2024-13-01"}, 400, "2024-13-01"),
        ({"date_to": "yesterday"}, 400, "yesterday"),
    ],
)
def test_bad_parameters_are_refused_with_a_message(
    client: TestClient, params: dict[str, Any], status: int, says: str
) -> None:
    resp = client.get("/api/browse", params=params)
    assert resp.status_code == status, resp.text
    assert says in str(resp.json()["detail"])


def test_home_folder_prefix(
    client: TestClient, dated: DatedLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(dated.media))
    assert names(browse(client, under="~/notes")) == ["fruit.txt"]
    monkeypatch.delenv("HOME")
    resp = client.get("/api/browse", params={"under": "~/notes"})
    assert resp.status_code == 400 and "absolute path" in resp.json()["detail"]
