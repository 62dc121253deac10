"""The web page end to end in headless Chromium (Debian's chromium and chromedriver).

Set MMSEARCH_SCREENSHOT=path to keep a screenshot of the results page (the one in
docs/ was made this way).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from mmsearch.server import create_app
from test_server_support import build_library, live_server

from fakes import ColourEncoder, solid

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1280,800",
    "--autoplay-policy=no-user-gesture-required",
    "--lang=en-US",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    lib_dir, _ = build_library(tmp_path_factory.mktemp("browser"))
    with live_server(create_app(lib_dir, encoder=ColourEncoder())) as url:
        yield url


@contextmanager
def chromium() -> Iterator[WebDriver]:
    """Debian's headless Chromium through its own chromedriver (no browser download)."""
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def fresh_page(site: str, browser: WebDriver) -> WebDriver:
    """The page at ``site`` with nothing remembered from an earlier test."""
    browser.get(site + "/")
    browser.execute_script("localStorage.clear()")
    browser.get(site + "/")
    return browser


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def page(site: str, browser: WebDriver) -> WebDriver:
    return fresh_page(site, browser)


def wait(driver: WebDriver, condition, timeout: float = 10):  # type: ignore[no-untyped-def]
    return WebDriverWait(driver, timeout).until(condition)


def card_names(driver: WebDriver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#results .card .name")]


def renders(driver: WebDriver) -> int:
    return int(driver.execute_script("return window.mmsearch.state.renders"))


def search_for(driver: WebDriver, text: str) -> list[str]:
    before = renders(driver)
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys(text, Keys.ENTER)
    wait(driver, lambda d: renders(d) > before)
    return card_names(driver)


def test_typing_a_query_shows_the_expected_hit(page: WebDriver) -> None:
    assert search_for(page, "purple")[0] == "purple.png"
    status = page.find_element(By.ID, "status").text
    assert status.startswith("7 results")
    assert "q=purple" in page.current_url
    thumb = page.find_element(By.CSS_SELECTOR, "#results .card img")
    wait(
        page,
        lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", thumb
        ),
    )
    shot = os.environ.get("MMSEARCH_SCREENSHOT")
    search_for(page, "white")
    wait(
        page,
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth)"
        ),
    )
    if shot:
        Path(shot).parent.mkdir(parents=True, exist_ok=True)
        page.save_screenshot(shot)


def test_picking_or_dropping_an_image_shows_the_expected_hit(
    page: WebDriver, tmp_path: Path
) -> None:
    picked = tmp_path / "query.png"
    solid("orange", (64, 48)).save(picked)
    before = renders(page)
    page.find_element(By.ID, "file").send_keys(str(picked))
    wait(page, lambda d: renders(d) > before)
    assert card_names(page)[0] == "orange.png"
    assert "query.png" in page.find_element(By.ID, "chip-label").text
    dropped = tmp_path / "dropped.png"
    solid("green", (64, 48)).save(dropped)
    b64 = base64.b64encode(dropped.read_bytes()).decode()
    page.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const file = new File([bytes], "dropped.png", {type: "image/png"});
        const dt = new DataTransfer();
        dt.items.add(file);
        const target = document.querySelector("#results");
        for (const type of ["dragenter", "dragover", "drop"]) {
          target.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
        }
        """,
        b64,
    )
    wait(page, lambda d: renders(d) > before + 1)
    assert card_names(page)[0] == "green.png"
    assert page.find_element(By.ID, "drop-overlay").get_attribute("hidden") is not None


def test_a_video_hit_plays_from_its_moment(page: WebDriver) -> None:
    assert search_for(page, "white")[0] == "night-day.mp4"
    card = page.find_element(By.CSS_SELECTOR, "#results .card")
    assert "0:03" in card.find_element(By.CSS_SELECTOR, ".badge.time").text
    card.find_element(By.CSS_SELECTOR, ".actions button.play").click()
    played = wait(
        page,
        lambda d: d.execute_script(
            "const v = document.querySelector('#viewer video');"
            "return v && v.played.length && v.currentTime > 0 ? [v.played.start(0), v.currentTime] : null"
        ),
    )
    start, now = played
    assert start == pytest.approx(3.0, abs=0.35)
    assert now >= 3.0
    page.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait(page, lambda d: d.find_element(By.ID, "viewer").get_attribute("hidden") is not None)


def test_keyboard_more_like_this_and_chinese_interface(page: WebDriver) -> None:
    page.find_element(By.CSS_SELECTOR, "[data-lang='zh']").click()
    assert page.find_element(By.ID, "go").text == "搜索"
    assert page.find_element(By.ID, "q").get_attribute("placeholder").startswith("搜索照片")
    assert search_for(page, "red")[0] == "red.png"
    assert "个结果" in page.find_element(By.ID, "status").text
    first = page.find_element(By.CSS_SELECTOR, "#results .card")
    first.send_keys(Keys.ARROW_RIGHT)
    assert page.switch_to.active_element.get_attribute("data-index") == "1"
    page.switch_to.active_element.send_keys(Keys.ARROW_LEFT)
    before = renders(page)
    page.switch_to.active_element.send_keys("m")  # more like red.png
    wait(page, lambda d: renders(d) > before)
    assert "red.png" in page.find_element(By.ID, "chip-label").text
    assert "相似" in page.find_element(By.ID, "chip-label").text
    assert card_names(page) and "red.png" not in card_names(page)
    page.refresh()
    assert page.find_element(By.ID, "go").text == "搜索"  # the choice is remembered
    page.find_element(By.CSS_SELECTOR, "[data-lang='en']").click()
    assert page.find_element(By.ID, "go").text == "Search"


def test_api_docs_render_without_any_network(site: str, browser: WebDriver) -> None:
    browser.get(site + "/docs")
    title = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"))
    assert "mmsearch" in title[0].text
