"""The web page end to end in headless Chromium (Debian's chromium and chromedriver):
searching, composing a query from words and files, refused files, the viewer, filters.

The library is the small one of test_server_support (six colour photos, a note, a
video of a black then a white scene). Layout, paging, browsing and the screenshots
in docs/ are in test_server_page_library.py.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

import mmsearch.server
from mmsearch.server import create_app
from test_server_page_support import (
    card_names,
    fresh_page,
    renders,
    search_for,
    wait,
)
from test_server_support import build_library, live_server

from fakes import ColourEncoder, solid


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    lib_dir, _ = build_library(tmp_path_factory.mktemp("browser"))
    with live_server(create_app(lib_dir, encoder=ColourEncoder())) as url:
        yield url


@pytest.fixture
def page(site: str, browser: WebDriver) -> WebDriver:
    return fresh_page(site, browser)


def drop(driver: WebDriver, data: bytes, name: str, mime: str) -> None:
    """Drop a file onto the results, as a user dragging it from their desktop would."""
    driver.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const file = new File([bytes], arguments[1], {type: arguments[2]});
        const dt = new DataTransfer();
        dt.items.add(file);
        const target = document.querySelector("#results");
        for (const type of ["dragenter", "dragover", "drop"]) {
          target.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
        }
        """,
        base64.b64encode(data).decode(),
        name,
        mime,
    )


def png_bytes(colour: str, tmp: Path) -> bytes:
    path = tmp / f"{colour}.png"
    solid(colour, (64, 48)).save(path)
    return path.read_bytes()


def chips(driver: WebDriver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#chips .chip .chip-label")]


def answer(driver: WebDriver, choice: str) -> None:
    wait(driver, lambda d: d.find_element(By.ID, "ask").is_displayed())
    driver.find_element(By.CSS_SELECTOR, f"#ask button[data-choice='{choice}']").click()


def set_weight(driver: WebDriver, chip_text: str, weight: float) -> None:
    before = renders(driver)
    for chip in driver.find_elements(By.CSS_SELECTOR, "#chips .chip"):
        if chip_text in chip.text:
            box = chip.find_element(By.CSS_SELECTOR, "input.chip-weight")
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(str(weight), Keys.ENTER)
            box.send_keys(Keys.TAB)
            wait(driver, lambda d: renders(d) > before)
            return
    raise AssertionError(f"no chip {chip_text!r} in {chips(driver)}")


def status(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "status").text)


# -- searching -------------------------------------------------------------------------------
def test_typing_a_query_shows_the_expected_hit(page: WebDriver) -> None:
    assert search_for(page, "purple")[0] == "purple.png"
    # A text query searches the pictures and the texts too (fruit.txt, the caption).
    assert status(page).startswith("8 results")
    assert "q=purple" in page.current_url
    assert not page.find_element(By.ID, "welcome").is_displayed()
    thumb = page.find_element(By.CSS_SELECTOR, "#results .card img")
    wait(
        page,
        lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", thumb
        ),
    )
    page.get(page.current_url)  # a shared link runs its search
    wait(page, lambda d: card_names(d) and card_names(d)[0] == "purple.png")


def test_picking_or_dropping_an_image_shows_the_expected_hit(
    page: WebDriver, tmp_path: Path
) -> None:
    picked = tmp_path / "query.png"
    solid("orange", (64, 48)).save(picked)
    before = renders(page)
    page.find_element(By.ID, "file").send_keys(str(picked))
    wait(page, lambda d: renders(d) > before)
    assert card_names(page)[0] == "orange.png"
    assert chips(page) == ["Image: query.png"]
    assert (
        page.find_element(By.CSS_SELECTOR, "#chips .chip input.chip-weight").get_attribute("value")
        == "1"
    )
    # Dropping another file while one is in the query asks: here, replace it.
    before = renders(page)
    drop(page, png_bytes("green", tmp_path), "dropped.png", "image/png")
    answer(page, "file")
    wait(page, lambda d: renders(d) > before)
    assert card_names(page)[0] == "green.png"
    assert chips(page) == ["Image: dropped.png"]
    assert page.find_element(By.ID, "drop-overlay").get_attribute("hidden") is not None


def test_a_pasted_picture_becomes_a_chip(page: WebDriver, tmp_path: Path) -> None:
    before = renders(page)
    page.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "image.png", {type: "image/png"}));
        document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true}));
        """,
        base64.b64encode(png_bytes("blue", tmp_path)).decode(),
    )
    wait(page, lambda d: renders(d) > before)
    assert chips(page) == ["Image: image.png"] and card_names(page)[0] == "blue.png"
    # Esc in the box empties the query: back to the library, newest first.
    before = renders(page)
    page.find_element(By.ID, "q").send_keys(Keys.ESCAPE)
    wait(page, lambda d: renders(d) > before)
    assert chips(page) == [] and status(page) == "Newest first · 8 of 8"


def test_a_file_dropped_onto_typed_words_asks_and_both_chips_count(
    page: WebDriver, tmp_path: Path
) -> None:
    orange = png_bytes("orange", tmp_path)
    assert search_for(page, "purple")[0] == "purple.png"
    before = renders(page)
    drop(page, orange, "beach.png", "image/png")
    question = page.find_element(By.ID, "ask-text").text
    assert "beach.png" in question and "“purple”" in question
    answer(page, "cancel")  # nothing changes, nothing is searched
    assert not page.find_element(By.ID, "ask").is_displayed()
    assert chips(page) == [] and page.find_element(By.ID, "q").get_attribute("value") == "purple"
    assert renders(page) == before

    drop(page, orange, "beach.png", "image/png")
    answer(page, "both")
    wait(page, lambda d: renders(d) > before)
    assert chips(page) == ["Words: “purple”", "Image: beach.png"]
    assert page.find_element(By.ID, "q").get_attribute("value") == ""
    assert set(card_names(page)[:2]) == {"purple.png", "orange.png"}

    set_weight(page, "beach.png", 4)
    assert card_names(page)[:2] == ["orange.png", "purple.png"]
    set_weight(page, "beach.png", -1)
    assert card_names(page)[0] == "purple.png" and card_names(page)[-1] == "orange.png"

    # Taking the picture out leaves the words, back in the box.
    before = renders(page)
    page.find_element(By.CSS_SELECTOR, "#chips .chip-image .chip-remove").click()
    wait(page, lambda d: renders(d) > before)
    assert chips(page) == [] and page.find_element(By.ID, "q").get_attribute("value") == "purple"
    assert card_names(page)[0] == "purple.png"


def test_words_typed_next_to_a_chip_are_asked_about(page: WebDriver) -> None:
    search_for(page, "red")
    before = renders(page)
    page.find_element(By.CSS_SELECTOR, "#results .card .like").click()  # more like red.png
    wait(page, lambda d: renders(d) > before)
    assert chips(page) == ["More like red.png"]
    box = page.find_element(By.ID, "q")
    assert box.get_attribute("placeholder").startswith("Add words")
    box.send_keys("white", Keys.ENTER)
    assert "“white”" in page.find_element(By.ID, "ask-text").text
    before = renders(page)
    answer(page, "text")
    wait(page, lambda d: renders(d) > before)
    assert chips(page) == [] and card_names(page)[0] == "night-day.mp4"


def test_a_refused_file_takes_itself_out_of_the_query(page: WebDriver) -> None:
    drop(page, b"%PDF-1.4 not a picture", "report.pdf", "application/pdf")
    wait(page, lambda d: "report.pdf is not an image" in status(d))
    assert chips(page) == []
    drop(page, b"\x89PNG\r\n\x1a\n" + b"\0" * 40 + b"broken", "broken.png", "image/png")
    wait(page, lambda d: "broken.png was taken out of the query" in status(d))
    assert chips(page) == []
    assert "error" in page.find_element(By.ID, "status").get_attribute("class")
    assert search_for(page, "red")[0] == "red.png"  # later searches work
    assert "error" not in page.find_element(By.ID, "status").get_attribute("class")


# -- the viewer ------------------------------------------------------------------------------
PLAYED = (
    "const v = document.querySelector('#viewer video');"
    "return v && v.played.length && v.currentTime > 0 ? [v.played.start(0), v.currentTime, v.paused] : null"
)


def test_a_video_hit_plays_from_its_moment(page: WebDriver) -> None:
    assert search_for(page, "white")[0] == "night-day.mp4"
    card = page.find_element(By.CSS_SELECTOR, "#results .card")
    assert "0:03" in card.find_element(By.CSS_SELECTOR, ".badge.time").text
    card.find_element(By.CSS_SELECTOR, ".actions button.play").click()
    start, now, _ = wait(page, lambda d: d.execute_script(PLAYED))
    assert start == pytest.approx(3.0, abs=0.35)
    assert now >= 3.0
    assert page.find_element(By.ID, "moment-text").text == "Moment 0:03–0:06"
    page.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait(page, lambda d: d.find_element(By.ID, "viewer").get_attribute("hidden") is not None)


def test_the_viewer_stops_at_the_end_of_the_moment_and_offers_more_like_this(
    page: WebDriver,
) -> None:
    assert search_for(page, "black")[0] == "night-day.mp4"
    page.find_element(By.CSS_SELECTOR, "#results .card .actions button.play").click()
    assert page.find_element(By.ID, "moment-text").text == "Moment 0:00–0:03"
    stopped = wait(
        page,
        lambda d: d.execute_script(
            "const v = document.querySelector('#viewer video');"
            "return v && v.paused && v.currentTime > 1 ? v.currentTime : null"
        ),
        timeout=15,
    )
    assert 2.9 <= stopped <= 3.6
    assert page.find_element(By.ID, "viewer-replay").accessible_name == "Replay the moment"
    assert "end of the moment (0:03)" in page.find_element(By.ID, "moment-text").text
    assert "ended" in page.find_element(By.ID, "moment").get_attribute("class")
    width = page.execute_script("return document.querySelector('#moment-range').style.width")
    assert float(width.rstrip("%")) == pytest.approx(50, abs=2)  # 3 s of 6
    page.execute_script("document.querySelector('#viewer video').play()")  # play goes on past it
    wait(
        page,
        lambda d: d.execute_script(
            "return document.querySelector('#viewer video').currentTime > 3.8"
        ),
    )
    before = renders(page)
    page.find_element(By.ID, "viewer-like").click()
    wait(page, lambda d: renders(d) > before)
    assert page.find_element(By.ID, "viewer").get_attribute("hidden") is not None
    assert chips(page) == ["More like night-day.mp4"]
    assert card_names(page)


# -- filters ---------------------------------------------------------------------------------
def test_empty_results_name_the_filters_and_offer_to_clear_them(page: WebDriver) -> None:
    assert search_for(page, "red")[0] == "red.png"
    before = renders(page)
    Select(page.find_element(By.ID, "f-type")).select_by_value("audio")
    wait(page, lambda d: renders(d) > before)
    empty = page.find_element(By.ID, "empty")
    assert empty.is_displayed() and card_names(page) == []
    assert (
        page.find_element(By.ID, "empty-text").text
        == "Nothing found with these filters: type Audio."
    )
    before = renders(page)
    page.find_element(By.ID, "clear-filters").click()
    wait(page, lambda d: renders(d) > before)
    assert card_names(page)[0] == "red.png" and not empty.is_displayed()
    assert page.find_element(By.ID, "f-type").get_attribute("value") == ""
    # The same when browsing, with the folder filter.
    page.find_element(By.ID, "q").clear()
    folder = page.find_element(By.ID, "f-folder")
    before = renders(page)
    folder.send_keys("/nowhere", Keys.ENTER)
    wait(page, lambda d: renders(d) > before)
    assert (
        page.find_element(By.ID, "empty-text").text
        == "Nothing found with these filters: folder /nowhere."
    )
    before = renders(page)
    page.find_element(By.ID, "clear-filters").click()
    wait(page, lambda d: renders(d) > before)
    assert len(card_names(page)) == 8 and status(page) == "Newest first · 8 of 8"


# -- keyboard and language -------------------------------------------------------------------
def test_keyboard_more_like_this_and_chinese_interface(page: WebDriver) -> None:
    page.find_element(By.CSS_SELECTOR, "[data-lang='zh']").click()
    assert page.find_element(By.ID, "go").text == "搜索"
    assert page.find_element(By.ID, "q").get_attribute("placeholder").startswith("搜索照片")
    assert status(page).startswith("最新的在前")
    assert search_for(page, "red")[0] == "red.png"
    assert "个结果" in status(page)
    first = page.find_element(By.CSS_SELECTOR, "#results .card")
    first.send_keys(Keys.ARROW_RIGHT)
    assert page.switch_to.active_element.get_attribute("data-index") == "1"
    page.switch_to.active_element.send_keys(Keys.ARROW_LEFT)
    before = renders(page)
    page.switch_to.active_element.send_keys("m")  # more like red.png
    wait(page, lambda d: renders(d) > before)
    assert chips(page) == ["与 red.png 相似"]
    weight = page.find_element(By.CSS_SELECTOR, "#chips input.chip-weight")
    assert weight.get_attribute("aria-label") == "red.png 的权重"
    assert card_names(page) and "red.png" not in card_names(page)
    page.find_element(By.ID, "q").send_keys("white", Keys.ENTER)
    assert page.find_element(By.CSS_SELECTOR, "#ask button[data-choice='both']").text == "一起搜索"
    page.find_element(By.ID, "q").send_keys(Keys.ESCAPE)  # Esc closes the question
    assert not page.find_element(By.ID, "ask").is_displayed()
    page.refresh()
    assert page.find_element(By.ID, "go").text == "搜索"  # the choice is remembered
    page.find_element(By.CSS_SELECTOR, "[data-lang='en']").click()
    assert page.find_element(By.ID, "go").text == "Search"


def test_api_docs_render_without_any_network(site: str, browser: WebDriver) -> None:
    browser.get(site + "/docs")
    title = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"))
    assert "mmsearch" in title[0].text


def test_every_string_the_page_uses_is_in_english_and_chinese() -> None:
    static = Path(mmsearch.server.__file__).parent / "static"
    text = (static / "i18n.js").read_text(encoding="utf-8")
    english, chinese = text.split("\n  en: {")[1].split("\n  zh: {")
    tables = {
        lang: set(re.findall(r"^\s+(\w+): ", body, re.M))
        for lang, body in (("en", english), ("zh", chinese))
    }
    assert len(tables["en"]) > 60 and tables["en"] == tables["zh"]
    scripts = "".join(p.read_text(encoding="utf-8") for p in static.glob("*.js"))
    used = set(re.findall(r"\bt\(\"(\w+)\"[,)]", scripts))
    used |= set(re.findall(r"\bsetStatus\(\"(\w+)\"[,)]", scripts))
    used |= set(re.findall(r"data-i18n(?:-\w+)?=\"(\w+)\"", (static / "index.html").read_text()))
    assert len(used) > 40 and used - tables["en"] == set()
