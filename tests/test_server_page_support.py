"""Helpers shared by the web page tests: headless Chromium and a dated library.

``chromium()`` drives Debian's chromium through its own chromedriver (no browser
download). ``build_dated_library`` makes a library whose every item has a known
date (file times set before indexing), so "newest first" has one right order:
60 photos (a background colour with a disc of another colour, in ``photos/2023``
and ``photos/2024``), a video, a text note and two recordings.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from mmsearch.library import Library

from fakes import COLOURS, ColourEncoder, ToneEncoder
from media_gen import make_audio, make_video

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
DESKTOP = (1280, 800)
PHONE = (390, 844)


# -- the browser ---------------------------------------------------------------------------
@contextmanager
def chromium() -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def set_viewport(driver: WebDriver, size: tuple[int, int], *, mobile: bool = False) -> None:
    """An exact CSS viewport of ``size`` (a phone's when ``mobile``), whatever the window."""
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


def fresh_page(site: str, driver: WebDriver, path: str = "/") -> WebDriver:
    """The page at ``site`` with nothing remembered from an earlier test, its first grid
    (the library, or the search in ``path``) drawn."""
    driver.get(site + "/")
    driver.execute_script("localStorage.clear()")
    driver.get(site + path)
    wait(driver, lambda d: renders(d) > 0)
    return driver


def wait(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 10) -> Any:
    return WebDriverWait(driver, timeout).until(condition)


def renders(driver: WebDriver) -> int:
    return int(driver.execute_script("return window.mmsearch ? window.mmsearch.state.renders : 0"))


def card_names(driver: WebDriver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#results .card .name")]


def search_for(driver: WebDriver, text: str) -> list[str]:
    before = renders(driver)
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys(text, Keys.ENTER)
    wait(driver, lambda d: renders(d) > before)
    return card_names(driver)


def images_loaded(driver: WebDriver) -> bool:
    return bool(
        driver.execute_script(
            "return [...document.querySelectorAll('#results img, #chips img')]"
            ".every(i => i.complete && i.naturalWidth)"
        )
    )


def screenshot(driver: WebDriver, name: str) -> None:
    """Save a screenshot as ``$MMSEARCH_SCREENSHOT/name`` when that folder is set (docs/)."""
    folder = os.environ.get("MMSEARCH_SCREENSHOT")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        wait(driver, images_loaded)
        driver.save_screenshot(str(Path(folder) / name))


# -- a library with dates ------------------------------------------------------------------
PHOTO_COUNT = 60
FIRST_PHOTO = dt.datetime(2023, 1, 1, 12, 0)
PHOTO_STEP = dt.timedelta(days=12)
BACKGROUNDS = ("red", "green", "blue", "yellow", "purple", "orange")
DISCS = ("white", "yellow", "red", "blue", "black", "orange", "green", "purple")
"""Photo i has background ``BACKGROUNDS[i % 6]`` (its name says it) and a disc of
``DISCS[i // 6 % 8]`` (white where that is the background)."""


@dataclass(frozen=True)
class DatedLibrary:
    lib_dir: Path
    media: Path
    dates: dict[str, dt.datetime]
    """Every item's file name -> its date."""

    def newest_first(self) -> list[str]:
        return sorted(self.dates, key=lambda n: self.dates[n], reverse=True)

    def app_encoders(self) -> dict[str, Any]:
        return {"encoder": ColourEncoder(), "audio_encoder": ToneEncoder()}


def photo(background: str, disc: str) -> Image.Image:
    im = Image.new("RGB", (160, 120), COLOURS[background])
    ImageDraw.Draw(im).ellipse((55, 35, 105, 85), fill=COLOURS[disc])
    return im


def _dated(path: Path, when: dt.datetime) -> None:
    stamp = when.timestamp()
    os.utime(path, (stamp, stamp))


def build_dated_library(tmp: Path) -> DatedLibrary:
    media = tmp / "media"
    dates: dict[str, dt.datetime] = {}
    for i in range(PHOTO_COUNT):
        when = FIRST_PHOTO + i * PHOTO_STEP
        background = BACKGROUNDS[i % len(BACKGROUNDS)]
        disc = DISCS[i // len(BACKGROUNDS) % len(DISCS)]
        disc = "white" if disc == background else disc
        folder = media / "photos" / str(when.year)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{when:%Y-%m-%d}-{background}.png"
        photo(background, disc).save(folder / name)
        _dated(folder / name, when)
        dates[name] = when
    others = {
        "clips/night-day.mp4": dt.datetime(2025, 1, 15, 9, 30),
        "notes/fruit.txt": dt.datetime(2022, 5, 1, 8, 0),
        "sounds/tones.flac": dt.datetime(2024, 6, 15, 18, 0),
        "sounds/hum.ogg": dt.datetime(2023, 7, 4, 21, 0),
    }
    for rel in others:
        (media / rel).parent.mkdir(parents=True, exist_ok=True)
    make_video(media / "clips/night-day.mp4", [("black", 3.0), ("white", 3.0)])
    (media / "notes/fruit.txt").write_text("Bananas are yellow and cherries are red.")
    make_audio(media / "sounds/tones.flac", [(440.0, 3.0), ("silence", 2.0), (880.0, 3.0)])
    make_audio(media / "sounds/hum.ogg", [(1320.0, 3.0), ("noise", 3.0)])
    for rel, when in others.items():
        _dated(media / rel, when)
        dates[Path(rel).name] = when
    lib_dir = tmp / "lib"
    with Library.open(lib_dir, encoder=ColourEncoder(), audio_encoder=ToneEncoder()) as lib:
        report = lib.add([media], workers=0)
    assert report.failed == 0, report.failures
    return DatedLibrary(lib_dir, media, dates)
