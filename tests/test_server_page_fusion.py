"""The web page of issue #10 in headless Chromium: each hit's relevance (a bar and a
percentage) and evidence (the sources that matched, the query's words marked in the
matched text), the relevance slider and its note when nothing is left, thumbs up / down
that refine the search in place (with chips for the marked items), "n similar" for
folded near-duplicates, "more like these" (``/api/recommend``) and the rerank switch.

The library is ``build_fusion_library`` (test_server_support); the server offers the
test's word reranker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from mmsearch.server import create_app
from test_server_page_support import card_names, fresh_page, renders, search_for, wait
from test_server_support import FUSION_NOTES, WordReranker, build_fusion_library, live_server

from fakes import ColourEncoder


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    lib_dir, _ = build_fusion_library(tmp_path_factory.mktemp("page-fusion"))
    app = create_app(lib_dir, encoder=ColourEncoder(), rerankers=[WordReranker()])
    with live_server(app) as url:
        yield url


@pytest.fixture
def page(site: str, browser: WebDriver) -> WebDriver:
    return fresh_page(site, browser)


def after(driver: WebDriver, action: Callable[[], Any]) -> None:
    """Do ``action()`` and wait for the grid to be drawn again."""
    before = renders(driver)
    action()
    wait(driver, lambda d: renders(d) > before)


def card(driver: WebDriver, name: str) -> WebElement:
    for c in driver.find_elements(By.CSS_SELECTOR, "#results .card"):
        if c.find_element(By.CSS_SELECTOR, ".name").text == name:
            return c
    raise AssertionError(f"no card {name!r} in {card_names(driver)}")


def chips(driver: WebDriver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#chips .chip .chip-label")]


def set_min_score(driver: WebDriver, value: float) -> None:
    driver.execute_script(
        "const f = document.getElementById('f-min'); f.value = arguments[0];"
        "f.dispatchEvent(new Event('input')); f.dispatchEvent(new Event('change'));",
        str(value),
    )


def marks(element: WebElement) -> list[str]:
    return [m.text for m in element.find_elements(By.CSS_SELECTOR, "mark")]


# -- the relevance scale and the evidence -------------------------------------------------------
def test_a_hit_shows_its_relevance_its_sources_and_the_marked_words(page: WebDriver) -> None:
    assert search_for(page, "zanzibar lighthouse")[0] == "lighthouse.txt"
    top = card(page, "lighthouse.txt")
    value = top.find_element(By.CSS_SELECTOR, ".score .score-value").text
    assert re.fullmatch(r"\d{1,3}%", value), value
    fill = top.find_element(By.CSS_SELECTOR, ".scorebar-fill")
    width = page.execute_script("return arguments[0].style.width", fill)
    assert float(width.rstrip("%")) == pytest.approx(int(value.rstrip("%")), abs=1.0)
    sources = {
        e.get_attribute("data-source"): e.text
        for e in top.find_elements(By.CSS_SELECTOR, ".evidence li")
    }
    assert "lexical" in sources and "main/text" in sources, sources
    assert re.fullmatch(r"Words\s*\d{1,3}%", sources["lexical"]), sources
    assert re.fullmatch(r"Text\s*\d{1,3}%", sources["main/text"]), sources
    snippet = top.find_element(By.CSS_SELECTOR, ".snippet")
    assert snippet.text == FUSION_NOTES["lighthouse.txt"]
    assert marks(snippet) == ["zanzibar", "lighthouse"]
    photo = card(page, "blue.png")  # found by its picture and its caption
    assert photo.find_elements(By.CSS_SELECTOR, ".evidence li[data-source='main/image']")


def test_matched_text_is_shown_as_text_never_as_markup(page: WebDriver) -> None:
    search_for(page, "cherries")
    note = card(page, "markup.txt")
    snippet = note.find_element(By.CSS_SELECTOR, ".snippet")
    assert snippet.text == FUSION_NOTES["markup.txt"]
    assert snippet.find_elements(By.CSS_SELECTOR, "img, b") == []
    assert marks(snippet) == ["cherries"]


# -- the relevance slider ---------------------------------------------------------------------
def test_the_slider_cuts_the_list_and_names_the_best_match_it_hid(page: WebDriver) -> None:
    first = search_for(page, "zzz")
    assert first, "a query without a good match still lists the closest"
    best = card(page, first[0]).find_element(By.CSS_SELECTOR, ".score-value").text
    assert page.find_element(By.ID, "f-min-value").text == "any"
    after(page, lambda: set_min_score(page, 1))
    assert card_names(page) == []
    assert page.find_element(By.ID, "f-min-value").text == "≥ 100%"
    empty = page.find_element(By.ID, "empty-text").text
    assert empty == f"No confident match; best was {first[0]} ({best})."
    assert page.find_element(By.ID, "filters-toggle-text").get_attribute("textContent") == (
        "Filters (1)"
    )
    after(page, page.find_element(By.ID, "clear-filters").click)
    assert card_names(page) == first
    assert page.find_element(By.ID, "f-min").get_attribute("value") == "0"
    # Nothing answers "zzz" with confidence; a query with real matches keeps its best.
    full = search_for(page, "white")
    after(page, lambda: set_min_score(page, 0.5))
    kept = card_names(page)
    assert 0 < len(kept) < len(full) and kept == full[: len(kept)]


# -- feedback --------------------------------------------------------------------------------
def test_thumbs_up_and_down_refine_the_results_in_place(page: WebDriver) -> None:
    plain = search_for(page, "white")
    assert plain[0] == "lighthouse.txt" and "blue.png" in plain
    up = card(page, "blue.png").find_element(By.CSS_SELECTOR, "button.thumb-up")
    assert up.accessible_name == "Good match: blue.png"
    after(page, up.click)
    liked = card_names(page)
    assert liked != plain and "blue.png" not in liked  # the query moved; the liked one is known
    assert chips(page) == ["Good: blue.png"]
    assert page.find_element(By.ID, "q").get_attribute("value") == "white"  # same query
    recommend = page.find_element(By.ID, "recommend")
    assert recommend.is_displayed() and recommend.text == "More like these (1)"
    after(page, card(page, "lighthouse.txt").find_element(By.CSS_SELECTOR, ".thumb-down").click)
    assert "lighthouse.txt" not in card_names(page)
    assert chips(page) == ["Good: blue.png", "Not: lighthouse.txt"]
    chip = page.find_elements(By.CSS_SELECTOR, "#chips .chip")[0]
    assert chip.find_elements(By.CSS_SELECTOR, "input.chip-weight") == []
    after(page, chip.find_element(By.CSS_SELECTOR, ".chip-remove").click)
    assert chips(page) == ["Not: lighthouse.txt"] and "blue.png" in card_names(page)
    assert not page.find_element(By.ID, "recommend").is_displayed()
    search_for(page, "red")  # a new query starts without marks
    assert chips(page) == []


def test_more_like_these_asks_for_recommendations(page: WebDriver) -> None:
    search_for(page, "red")
    red = next(n for n in card_names(page) if n.startswith("red"))
    after(page, card(page, red).find_element(By.CSS_SELECTOR, ".thumb-up").click)
    after(page, page.find_element(By.ID, "recommend").click)
    assert page.execute_script("return window.mmsearch.state.endpoint") == "/api/recommend"
    found = card_names(page)
    assert found and red not in found
    assert page.find_element(By.ID, "status").text.startswith(f"{len(found)} result")


def test_near_duplicates_fold_into_n_similar(page: WebDriver) -> None:
    found = search_for(page, "red")
    reds = [n for n in found if n.startswith("red")]
    assert len(reds) == 1, found  # red.png and red-copy.png: one picture
    hit = card(page, reds[0])
    toggle = hit.find_element(By.CSS_SELECTOR, ".similar-toggle")
    assert toggle.text == "1 similar" and toggle.get_attribute("aria-expanded") == "false"
    listed = hit.find_element(By.CSS_SELECTOR, ".similar-list")
    assert not listed.is_displayed()
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true" and listed.is_displayed()
    other = "red.png" if reds[0] == "red-copy.png" else "red-copy.png"
    assert listed.text == other
    listed.find_element(By.CSS_SELECTOR, "button.similar-item").click()
    wait(page, lambda d: d.find_element(By.ID, "viewer").is_displayed())
    assert page.find_element(By.ID, "viewer-title").text == other
    page.find_element(By.ID, "viewer-close").click()
    after(page, page.find_element(By.ID, "f-dedupe").click)  # show near-duplicates
    assert {"red.png", "red-copy.png"} <= set(card_names(page))


# -- rerank and language ------------------------------------------------------------------------
def test_the_rerank_switch_uses_the_servers_reranker(page: WebDriver) -> None:
    switch = page.find_element(By.ID, "f-rerank")
    wait(page, lambda d: switch.is_displayed())
    assert page.find_element(By.ID, "f-rerank-label").get_attribute("title") == "words"
    after(page, lambda: Select(page.find_element(By.ID, "f-type")).select_by_value("text"))
    search_for(page, "cherries red")
    after(page, switch.click)
    top = page.find_elements(By.CSS_SELECTOR, "#results .card")[0]
    assert top.find_element(By.CSS_SELECTOR, ".name").text == "fruit.txt"
    first_source = top.find_elements(By.CSS_SELECTOR, ".evidence li")[0]
    assert first_source.get_attribute("data-source") == "rerank:words"
    assert first_source.text.startswith("Reranker")


def test_the_new_controls_speak_chinese(page: WebDriver) -> None:
    page.find_element(By.CSS_SELECTOR, "[data-lang='zh']").click()
    try:
        search_for(page, "red")
        first = page.find_elements(By.CSS_SELECTOR, "#results .card")[0]
        assert first.find_element(By.CSS_SELECTOR, ".thumb-up").accessible_name.startswith(
            "匹配得好"
        )
        assert page.find_element(By.ID, "f-min-value").text == "不限"
        toggle = page.find_elements(By.CSS_SELECTOR, ".similar-toggle")
        assert toggle and toggle[0].text == "1 个相似"
    finally:
        page.find_element(By.CSS_SELECTOR, "[data-lang='en']").click()
