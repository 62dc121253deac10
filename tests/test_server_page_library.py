"""The web page over a library with dates, in headless Chromium: the start page (the library
newest first, filtered, paged), results paging, the phone layout, labels and keyboard focus.

Set MMSEARCH_SCREENSHOT=docs to write docs/screenshot-web.png (1280x800) and
docs/screenshot-phone.png (390x844) on the way.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from mmsearch.server import create_app
from test_server_page_support import (
    DESKTOP,
    PHONE,
    DatedLibrary,
    build_dated_library,
    card_names,
    fresh_page,
    photo,
    renders,
    screenshot,
    search_for,
    set_viewport,
    wait,
)
from test_server_support import live_server

from media_gen import make_audio

PAGE = 48


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> DatedLibrary:
    return build_dated_library(tmp_path_factory.mktemp("page"))


@pytest.fixture(scope="module")
def site(dated: DatedLibrary) -> Iterator[str]:
    with live_server(create_app(dated.lib_dir, **dated.app_encoders())) as url:
        yield url


@pytest.fixture
def page(site: str, browser: WebDriver) -> WebDriver:
    set_viewport(browser, DESKTOP)
    return fresh_page(site, browser)


@pytest.fixture
def phone(site: str, browser: WebDriver) -> Iterator[WebDriver]:
    set_viewport(browser, PHONE, mobile=True)
    try:
        yield fresh_page(site, browser)
    finally:
        set_viewport(browser, DESKTOP)


def status(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "status").text)


def more(driver: WebDriver) -> WebElement:
    return driver.find_element(By.ID, "more")


def after(driver: WebDriver, action: Any) -> None:
    """Do ``action()`` and wait for the grid to be drawn again."""
    before = renders(driver)
    action()
    wait(driver, lambda d: renders(d) > before)


def set_date(driver: WebDriver, field: str, value: str) -> None:
    driver.execute_script(
        "const f = document.getElementById(arguments[0]); f.value = arguments[1];"
        "f.dispatchEvent(new Event('change'));",
        field,
        value,
    )


def rect(driver: WebDriver, element: WebElement) -> dict[str, float]:
    return dict(
        driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", element)
    )


# -- the start page --------------------------------------------------------------------------
def test_the_start_page_is_the_library_newest_first_a_page_at_a_time(
    page: WebDriver, dated: DatedLibrary
) -> None:
    everything = dated.newest_first()
    assert card_names(page) == everything[:PAGE]
    assert status(page) == f"Newest first · {PAGE} of {len(everything)}"
    assert page.find_element(By.ID, "welcome").is_displayed()
    first = page.find_element(By.CSS_SELECTOR, "#results .card")
    assert "Jan 15, 2025" in first.text  # a date where a search shows a score
    after(page, more(page).click)
    assert card_names(page) == everything
    assert not more(page).is_displayed()
    assert status(page) == f"Newest first · {len(everything)} of {len(everything)}"


def test_the_start_page_follows_the_type_folder_and_date_filters(
    page: WebDriver, dated: DatedLibrary
) -> None:
    after(page, lambda: Select(page.find_element(By.ID, "f-type")).select_by_value("audio"))
    assert card_names(page) == ["tones.flac", "hum.ogg"]
    after(page, lambda: Select(page.find_element(By.ID, "f-type")).select_by_value(""))
    folder = str(dated.media / "photos" / "2023")
    after(page, lambda: page.find_element(By.ID, "f-folder").send_keys(folder, Keys.ENTER))
    assert card_names(page) == [n for n in dated.newest_first() if n.startswith("2023-")]
    after(page, page.find_element(By.ID, "f-folder").clear)  # leaving the field applies it
    after(page, lambda: set_date(page, "f-from", "2024-06-01"))
    after(page, lambda: set_date(page, "f-to", "2024-06-30"))
    june = [n for n in dated.newest_first() if dated.dates[n].strftime("%Y-%m") == "2024-06"]
    assert card_names(page) == june and "tones.flac" in june
    assert (
        page.find_element(By.ID, "filters-toggle-text").get_attribute("textContent")
        == "Filters (2)"
    )


# -- results a page at a time ----------------------------------------------------------------
def test_search_results_page_on_with_load_more(page: WebDriver, site: str) -> None:
    # Photos of one background differ by a small disc: near-duplicates, folded by default.
    folded = httpx.post(site + "/api/search", json={"text": "red", "k": 1000, "dedupe": True})
    assert len(folded.json()["hits"]) < PAGE
    page.find_element(By.ID, "f-dedupe").click()
    every = httpx.post(site + "/api/search", json={"text": "red", "k": 1000}).json()["hits"]
    assert len(every) > PAGE
    first = search_for(page, "red")
    assert len(first) == PAGE and first[0].endswith("-red.png")
    assert status(page).startswith(f"{PAGE} results") and more(page).is_displayed()
    after(page, more(page).click)
    names = card_names(page)
    assert names[:PAGE] == first
    assert names == [h["name"] for h in every]  # every hit once, in order
    assert not more(page).is_displayed()


def test_a_sound_file_becomes_a_chip_and_finds_its_recording(
    page: WebDriver, tmp_path: Path
) -> None:
    beep = make_audio(tmp_path / "beep.wav", [(880.0, 2.0)])
    after(page, lambda: page.find_element(By.ID, "file").send_keys(str(beep)))
    labels = [e.text for e in page.find_elements(By.CSS_SELECTOR, "#chips .chip-label")]
    assert labels == ["Sound: beep.wav"]
    first = page.find_element(By.CSS_SELECTOR, "#results .card")
    assert first.find_element(By.CSS_SELECTOR, ".name").text == "tones.flac"
    # The 880 Hz tone lies at 5–8 s; sound windows are 2 s long.
    assert first.find_element(By.CSS_SELECTOR, ".badge.time").text in ("0:04–0:08", "0:05–0:08")


# -- phones ----------------------------------------------------------------------------------
def test_phone_width_fits_the_button_folds_the_filters_and_shows_two_columns(
    phone: WebDriver,
) -> None:
    width = PHONE[0]
    assert phone.execute_script("return innerWidth") == width
    screenshot(phone, "screenshot-phone.png")
    go = phone.find_element(By.ID, "go")
    box = rect(phone, phone.find_element(By.ID, "query-box"))
    button = rect(phone, go)
    assert box["left"] >= 0 and button["right"] <= width
    assert abs((button["top"] + button["bottom"]) / 2 - (box["top"] + box["bottom"]) / 2) < 4
    assert phone.execute_script("return document.documentElement.scrollWidth") <= width

    filters = phone.find_element(By.ID, "filters")
    toggle = phone.find_element(By.ID, "filters-toggle")
    assert not filters.is_displayed() and toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert filters.is_displayed() and toggle.get_attribute("aria-expanded") == "true"
    fields = phone.find_elements(By.CSS_SELECTOR, "#filters select, #filters input")
    fields = [f for f in fields if f.is_displayed()]  # no reranker: no rerank switch
    assert len(fields) == 7 and all(rect(phone, f)["right"] <= width for f in fields)
    toggle.click()
    assert not filters.is_displayed()

    cards = phone.find_elements(By.CSS_SELECTOR, "#results .card")
    lefts = {round(rect(phone, c)["left"]) for c in cards[:6]}
    assert len(lefts) == 2
    assert all(rect(phone, c)["right"] <= width for c in cards[:6])

    # A chip with a long name still leaves the button on the line.
    after(phone, lambda: cards[1].find_element(By.CSS_SELECTOR, ".like").click())
    phone.find_element(By.ID, "q").send_keys("a rather long query typed on a phone")
    button = rect(phone, go)
    assert (
        button["right"] <= width
        and button["left"] > rect(phone, phone.find_element(By.ID, "q"))["left"]
    )
    assert phone.execute_script("return document.documentElement.scrollWidth") <= width


# -- labels and focus ------------------------------------------------------------------------
CONTROLS = "input, button, select, textarea, a[href], [tabindex]:not([tabindex='-1'])"
RECORD_FOCUS = """
window.focusSeen = [];
const ring = (n) => { const s = getComputedStyle(n);
  return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; };
document.addEventListener('focusin', (e) => {
  const el = e.target, box = el.closest('.query-box');
  const shadow = box ? getComputedStyle(box).boxShadow : 'none';
  window.focusSeen.push({
    what: el.id ? '#' + el.id : el.tagName.toLowerCase() + '.' + String(el.className).split(' ')[0],
    ring: ring(el) || (el.id === 'q' && shadow !== 'none'),
  });
}, true);
"""


def unnamed_controls(driver: WebDriver) -> list[str]:
    """Displayed controls without an accessible name (as Chromium computes it); cards after
    the third are the same as the first three and are skipped for speed."""
    missing = []
    checked = 0
    for element in driver.find_elements(By.CSS_SELECTOR, CONTROLS):
        card = driver.execute_script(
            "const c = arguments[0].closest('.card'); return c && +c.dataset.index", element
        )
        if (card is not None and card >= 3) or not element.is_displayed():
            continue
        checked += 1
        if not element.accessible_name.strip():
            missing.append(element.get_attribute("outerHTML")[:120])
    assert checked > 20, "there are controls to check"
    return missing


def test_every_control_has_a_name_and_keyboard_focus_shows(page: WebDriver) -> None:
    page.find_element(By.CSS_SELECTOR, "#results .card .play").click()  # the video's viewer
    wait(page, lambda d: d.find_element(By.ID, "viewer").is_displayed())
    for control in ("viewer-close", "viewer-like", "viewer-open"):
        assert page.find_element(By.ID, control).accessible_name.strip(), control
    assert not page.find_element(By.ID, "moment").is_displayed()  # browsing: no moment
    page.find_element(By.ID, "viewer-close").click()
    after(page, page.find_element(By.ID, "f-dedupe").click)  # a page of results, and more
    cards = page.find_elements(By.CSS_SELECTOR, "#results .card")
    after(page, lambda: cards[0].find_element(By.CSS_SELECTOR, ".like").click())  # a chip
    assert unnamed_controls(page) == []
    page.find_element(By.CSS_SELECTOR, ".brand").send_keys(Keys.NULL)  # start from the top
    page.execute_script(RECORD_FOCUS)
    ActionChains(page).send_keys(Keys.TAB * 420).perform()
    seen: list[dict[str, Any]] = page.execute_script("return window.focusSeen")
    kinds = {s["what"] for s in seen}
    for expected in (
        "#q", "#file-label", "#go", "button.", "#f-type", "#f-from", "#f-to", "#f-folder", "#f-mode",
        "#f-min", "#f-dedupe", "input.chip-weight", "button.chip-remove", "article.card",
        "button.view", "button.like", "button.thumb-up", "button.thumb-down", "a.", "#more",
    ):  # fmt: skip
        assert expected in kinds, (expected, sorted(kinds))
    assert [s["what"] for s in seen if not s["ring"]] == []


def test_phone_controls_have_names_and_the_filter_toggle_shows_focus(phone: WebDriver) -> None:
    phone.find_element(By.ID, "filters-toggle").click()
    assert unnamed_controls(phone) == []
    phone.find_element(By.CSS_SELECTOR, ".brand").send_keys(Keys.NULL)
    phone.execute_script(RECORD_FOCUS)
    ActionChains(phone).send_keys(Keys.TAB * 12).perform()
    seen = phone.execute_script("return window.focusSeen")
    assert "#filters-toggle" in {s["what"] for s in seen}
    assert [s["what"] for s in seen if not s["ring"]] == []


# -- the picture for docs/ -------------------------------------------------------------------
def test_a_composed_query_at_desktop_width(page: WebDriver) -> None:
    buf = io.BytesIO()
    photo("yellow", "red").save(buf, "PNG")
    page.find_element(By.ID, "q").send_keys("blue")
    page.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "harbour.png", {type: "image/png"}));
        document.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
        """,
        base64.b64encode(buf.getvalue()).decode(),
    )
    wait(page, lambda d: d.find_element(By.ID, "ask").is_displayed())
    after(page, page.find_element(By.CSS_SELECTOR, "#ask button[data-choice='both']").click)
    labels = [e.text for e in page.find_elements(By.CSS_SELECTOR, "#chips .chip-label")]
    assert labels == ["Words: “blue”", "Image: harbour.png"]
    top = card_names(page)[:6]
    assert any(n.endswith("-blue.png") for n in top) and any(n.endswith("-yellow.png") for n in top)
    screenshot(page, "screenshot-web.png")
