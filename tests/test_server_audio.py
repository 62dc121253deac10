"""Audio hits end to end: the HTTP API and the web page over a library with an audio space.

The library (tests/test_server_support.py) holds tones.flac — 440 Hz for 3 s,
2 s of silence, then 880 Hz for 3 s — and hum.ogg (1320 Hz, then noise), indexed
with the exact ToneEncoder, so each moment's time is known.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from scipy.io import wavfile
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from mmsearch.media.audio import load_audio
from mmsearch.server import create_app
from test_server_browser import (
    answer,
    card_names,
    chips,
    fresh_page,
    renders,
    search_for,
    wait,
)
from test_server_support import build_audio_library, live_server

from fakes import ColourEncoder, ToneEncoder
from media_gen import make_audio

BASE = "http://127.0.0.1"
RATE = 16000
TONE_880 = (5.0, 8.0)  # where tones.flac plays 880 Hz
TONE_440 = (0.0, 3.0)
EPS = 1e-6


def app(lib_dir: Path):  # type: ignore[no-untyped-def]
    return create_app(
        lib_dir, encoder=ColourEncoder(), audio_encoder=ToneEncoder(), warm_worker=False
    )


def excerpt(src: Path, t0: float, t1: float, dst: Path) -> Path:
    """Seconds ``t0``–``t1`` of ``src``, decoded and written as a 16-bit WAV."""
    samples = load_audio(src, sample_rate=RATE)[int(t0 * RATE) : int(t1 * RATE)]
    wavfile.write(dst, RATE, (samples * 32767).astype("int16"))
    return dst


def hit_named(hits: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [h for h in hits if h["name"] == name]
    assert found, [h["name"] for h in hits]
    return found[0]


def assert_moment(hit: dict[str, Any], span: tuple[float, float], slack: float) -> None:
    """The hit's best moment covers ``span`` and reaches at most ``slack`` s past it;
    playback starts inside the moment, no later than the span's start."""
    seg = hit["segments"][0]
    t0, t1 = seg["t_start"], seg["t_end"]
    assert span[0] - slack - EPS <= t0 <= span[0] + EPS, (t0, t1)
    assert span[1] - EPS <= t1 <= span[1] + slack + EPS, (t0, t1)
    assert hit["play_from"] == seg["play_from"]
    assert t0 - EPS <= hit["play_from"] <= span[0] + EPS


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_audio_library(tmp_path_factory.mktemp("audio"))


@pytest.fixture(scope="module")
def client(built: tuple[Path, Path]) -> Iterator[TestClient]:
    with TestClient(app(built[0]), base_url=BASE) as c:
        yield c


def search(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    resp = client.post("/api/search", json=body)
    assert resp.status_code == 200, resp.text
    hits: list[dict[str, Any]] = resp.json()["hits"]
    return hits


def upload(client: TestClient, clip: Path, **form: str) -> list[dict[str, Any]]:
    files = {"file": (clip.name, clip.read_bytes(), "application/octet-stream")}
    resp = client.post("/api/search/upload", files=files, data=form)
    assert resp.status_code == 200, resp.text
    hits: list[dict[str, Any]] = resp.json()["hits"]
    return hits


# -- API -------------------------------------------------------------------------------------
def test_text_finds_the_recording_at_its_moment(client: TestClient) -> None:
    hits = search(client, text="880")
    # Text searches every space and fuses the rankings by rank: the recording leads the
    # audio list, a photo the image list; the tie goes to the far better cosine.
    assert hits[0]["name"] == "tones.flac"
    tones = hit_named(hits, "tones.flac")
    assert tones["item_modality"] == "audio" and tones["modality"] == "audio"
    assert tones["thumbnail_url"] is None and "thumbnail_url" not in tones["segments"][0]
    assert tones["media_url"] == f"/api/media/{tones['item_id']}"
    assert_moment(tones, TONE_880, slack=1.0)
    in_audio = search(client, text="a tone of 880 Hz", modality="audio", k=2)
    assert [h["name"] for h in in_audio] == ["tones.flac", "hum.ogg"]
    assert in_audio[0]["score"] > 0.99 > 0.1 > in_audio[1]["score"]
    assert_moment(in_audio[0], TONE_880, slack=1.0)
    low = search(client, text="440", modality="audio", k=1)[0]
    assert low["name"] == "tones.flac" and low["segments"][0]["t_start"] == pytest.approx(0.0)
    assert low["segments"][0]["t_end"] <= TONE_440[1] + 1.0 + EPS


def test_media_url_serves_the_recording_with_ranges(
    client: TestClient, built: tuple[Path, Path]
) -> None:
    tones = hit_named(search(client, text="880", filters={"type": "audio"}), "tones.flac")
    data = (built[1] / "sounds" / "tones.flac").read_bytes()
    whole = client.get(tones["media_url"])
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "audio/flac"
    assert whole.headers["accept-ranges"] == "bytes"
    part = client.get(tones["media_url"], headers={"Range": "bytes=100-299"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-299/{len(data)}"
    assert part.content == data[100:300] and part.headers["content-length"] == "200"
    tail = client.get(tones["media_url"], headers={"Range": f"bytes={len(data) - 50}-"})
    assert tail.status_code == 206 and tail.content == data[-50:]
    assert tail.headers["content-range"] == f"bytes {len(data) - 50}-{len(data) - 1}/{len(data)}"
    head = client.head(tones["media_url"])
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(data)
    hum = hit_named(search(client, text="1320", modality="audio"), "hum.ogg")
    assert client.get(hum["media_url"]).headers["content-type"] == "audio/ogg"
    assert client.get(f"/api/thumbs/items/{hum['item_id']}").status_code == 404


def test_an_uploaded_clip_finds_its_source_at_the_right_time(
    client: TestClient, built: tuple[Path, Path], tmp_path: Path
) -> None:
    source = built[1] / "sounds" / "tones.flac"
    high = upload(client, excerpt(source, 5.5, 7.5, tmp_path / "high.wav"), k="2")
    assert [h["name"] for h in high] == ["tones.flac", "hum.ogg"]
    assert high[0]["score"] > 0.99 and "audio_audio_cosine" in high[0]["signals"]
    assert_moment(high[0], TONE_880, slack=1.0)
    assert high[0]["play_from"] >= TONE_880[0] - 1.0 - EPS
    low = upload(client, excerpt(source, 0.5, 2.5, tmp_path / "low.wav"), k="1")
    assert low[0]["name"] == "tones.flac"
    assert low[0]["segments"][0]["t_end"] <= TONE_440[1] + 1.0 + EPS
    noise = excerpt(built[1] / "sounds" / "hum.ogg", 3.5, 5.5, tmp_path / "noise.wav")
    found = upload(client, noise, k="1")[0]
    assert found["name"] == "hum.ogg" and found["segments"][0]["t_start"] >= 2.0 - EPS
    # The same clip as a base64 part of a JSON search.
    b64 = base64.b64encode((tmp_path / "high.wav").read_bytes()).decode()
    as_part = search(client, parts=[{"kind": "audio", "value": b64}], k=1)[0]
    assert as_part["name"] == "tones.flac"
    assert as_part["segments"][0]["segment_id"] == high[0]["segments"][0]["segment_id"]


def test_type_filters_keep_or_drop_recordings(client: TestClient, tmp_path: Path) -> None:
    only = search(client, text="880", filters={"type": "audio"}, k=20)
    assert [h["name"] for h in only] == ["tones.flac", "hum.ogg"]
    assert all(h["item_modality"] == "audio" for h in only)
    images = search(client, text="880", filters={"type": ["image", "video"]}, k=20)
    assert images and not {h["item_modality"] for h in images} - {"image", "video"}
    clip = excerpt(Path(only[0]["path"]), 6.0, 8.0, tmp_path / "q.wav")
    upload_only = upload(client, clip, filters='{"type": "video"}')
    assert upload_only == []  # no video has sound to match
    items = client.get("/api/items", params={"modality": "audio"}).json()["items"]
    assert sorted(i["name"] for i in items) == ["hum.ogg", "tones.flac"]
    assert all(i["thumbnail_url"] is None for i in items)
    tones = next(i for i in items if i["name"] == "tones.flac")
    detail = client.get(f"/api/items/{tones['item_id']}").json()
    spans = [(s["t_start"], s["t_end"]) for s in detail["segments"]]
    assert spans and all(t0 is not None and t1 <= 8.0 + EPS for t0, t1 in spans)
    assert not any("thumbnail_url" in s for s in detail["segments"])


def test_a_sound_only_mp4_is_taken_as_audio(
    client: TestClient, built: tuple[Path, Path], tmp_path: Path
) -> None:
    """An .mp4 (or nameless Matroska) holding only sound: a recording, as ingest takes it."""
    memo = make_audio(tmp_path / "memo.mp4", [(880.0, 2.0)])
    as_query = upload(client, memo, k="1")
    assert as_query[0]["name"] == "tones.flac"
    assert_moment(as_query[0], TONE_880, slack=1.0)
    nameless = make_audio(tmp_path / "clip.mka", [(440.0, 2.0)]).rename(tmp_path / "clip")
    assert upload(client, nameless, k="1")[0]["segments"][0]["t_end"] <= TONE_440[1] + 1.0 + EPS
    with TestClient(app(build_audio_library(tmp_path / "fresh")[0]), base_url=BASE) as c:
        resp = c.post(
            "/api/items/upload",
            files=[("files", ("memo.mp4", memo.read_bytes(), "video/mp4"))],
            data={"wait": "60"},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["job"]["report"]["added"] == 1
        hit = hit_named(search(c, text="880", modality="audio", k=3), "memo.mp4")
        assert hit["segments"][0]["t_start"] == 0.0 and hit["play_from"] == 0.0
        # No pictures, so no thumbnail links that could only answer 404.
        assert hit["thumbnail_url"] is None
        assert not any("thumbnail_url" in s for s in hit["segments"])
        detail = c.get(f"/api/items/{hit['item_id']}").json()
        assert detail["thumbnail_url"] is None
        assert not any("thumbnail_url" in s for s in detail["segments"])
        assert c.get(hit["media_url"]).headers["content-type"] == "video/mp4"


# -- the web page ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(built: tuple[Path, Path]) -> Iterator[str]:
    with live_server(app(built[0])) as url:
        yield url


@pytest.fixture
def page(site: str, browser: WebDriver) -> WebDriver:
    return fresh_page(site, browser)


def audio_card(driver: WebDriver, name: str):  # type: ignore[no-untyped-def]
    cards = driver.find_elements(By.CSS_SELECTOR, "#results .card")
    return next(c for c in cards if c.find_element(By.CSS_SELECTOR, ".name").text == name)


def played_from(driver: WebDriver) -> tuple[float, float]:
    """(start of the first played range, current time) of the viewer's audio once it plays."""
    start, now = wait(
        driver,
        lambda d: d.execute_script(
            "const a = document.querySelector('#viewer audio');"
            "return a && a.played.length && a.currentTime > 0"
            " ? [a.played.start(0), a.currentTime] : null"
        ),
    )
    return float(start), float(now)


def test_an_audio_hit_plays_from_its_moment(page: WebDriver) -> None:
    names = search_for(page, "880")
    assert names.index("tones.flac") <= 1
    card = audio_card(page, "tones.flac")
    assert card.find_element(By.CSS_SELECTOR, ".glyph-audio").text == "♪"
    assert card.find_element(By.CSS_SELECTOR, ".badge.kind-audio").text == "audio"
    assert card.find_element(By.CSS_SELECTOR, ".badge.time").text == "0:04–0:08"
    card.find_element(By.CSS_SELECTOR, ".actions button.play").click()
    start, now = played_from(page)
    assert start == pytest.approx(4.0, abs=0.35)
    assert now >= 4.0
    assert "0:04" in page.find_element(By.ID, "viewer-info").text
    page.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait(page, lambda d: d.find_element(By.ID, "viewer").get_attribute("hidden") is not None)
    assert not page.find_elements(By.CSS_SELECTOR, "#viewer audio")


def test_type_filter_and_a_picked_clip_in_the_page(
    page: WebDriver, built: tuple[Path, Path], tmp_path: Path
) -> None:
    search_for(page, "880")
    before = renders(page)
    Select(page.find_element(By.ID, "f-type")).select_by_value("audio")
    wait(page, lambda d: renders(d) > before)
    assert card_names(page) == ["tones.flac", "hum.ogg"]
    clip = excerpt(built[1] / "sounds" / "tones.flac", 0.5, 2.5, tmp_path / "hum-along.wav")
    before = renders(page)
    page.find_element(By.ID, "file").send_keys(str(clip))
    answer(page, "file")  # words are in the box: search by the clip alone
    wait(page, lambda d: renders(d) > before)
    assert card_names(page)[0] == "tones.flac"
    assert any("hum-along.wav" in chip for chip in chips(page)), chips(page)
    card = audio_card(page, "tones.flac")
    assert card.find_element(By.CSS_SELECTOR, ".badge.time").text.startswith("0:00–")
    # Windows of the 440 Hz stretch (and its fade into silence) match equally well:
    # the page must play from the one the server chose, within the stretch.
    play_from = page.execute_script("return window.mmsearch.state.entries[0].play_from")
    assert TONE_440[0] <= play_from < TONE_440[1]
    card.find_element(By.CSS_SELECTOR, ".actions button.play").click()
    start, _ = played_from(page)
    assert start == pytest.approx(play_from, abs=0.35)
