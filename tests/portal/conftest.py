"""The portal in a real browser: Debian's Chromium, headless, driven by Selenium through Debian's chromedriver.

The server is the API tests' ``api_server`` fixture (``gisplatform serve`` on the published sample), imported
here so the portal tests can run on their own. Screenshots and downloads go to ``test-output/portal/`` (git-ignored)
for people to look at. No test tool downloads a browser: ``scripts/setup.sh --test`` installs ``chromium`` and
``chromium-driver`` from Debian; without them the browser tests fail with that hint (a skip would hide them in CI).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.publish.conftest import api, api_server, api_server_log, http, published_engine  # noqa: F401 (fixtures)

PROJECT = Path(__file__).resolve().parents[2]
OUTPUT = PROJECT / "test-output" / "portal"
CHROMIUM = os.environ.get("GISPLATFORM_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GISPLATFORM_CHROMEDRIVER", "/usr/bin/chromedriver")
DESKTOP = (1366, 850)
PHONE = (390, 844)


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


def _missing_browser() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists():
            return f"{path} is missing: run scripts/setup.sh --test (installs Debian's {package})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: run scripts/setup.sh --test"
    return None


class Browser:
    """A headless Chromium session with its console and network logs, and helpers the tests share."""

    def __init__(self, driver, base: str, downloads: Path):
        self.driver = driver
        self.base = base
        self.downloads = downloads
        self._events: list[dict] = []

    # --- page ----------------------------------------------------------------------------------------------
    def open(self, path: str = "/", ready_timeout: float = 60) -> dict:
        """Load a page of the portal and wait for the map's first idle; returns window.portal.timings."""
        self.driver.get(self.base + path)
        self.wait_for("return !!(window.portal && window.portal.ready)", ready_timeout, "the map never became idle")
        return self.js("return window.portal.timings")

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def js_async(self, script: str, *args):
        return self.driver.execute_async_script(script, *args)

    def wait_for(self, script: str, timeout: float = 30, message: str = "condition not met", *args):
        deadline = time.monotonic() + timeout
        while True:
            result = self.js(script, *args)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{message} (after {timeout} s): {script}")
            time.sleep(0.1)

    def wait_idle(self, timeout: float = 30) -> None:
        """Wait until the map has drawn everything it asked for (tiles loaded, no transition running)."""
        self.wait_for("var m = window.portal.map; return m.loaded() && m.areTilesLoaded() && !m.isMoving();",
                      timeout, "the map did not settle")
        self.js_async("var done = arguments[0], m = window.portal.map; m.once('idle', function () { done(true); });"
                      "m.triggerRepaint();")

    def click(self, css: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, css).click()

    def type(self, css: str, text: str, clear: bool = True) -> None:
        from selenium.webdriver.common.by import By

        field = self.driver.find_element(By.CSS_SELECTOR, css)
        if clear:
            field.clear()
        field.send_keys(text)

    def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def canvas_stats(self, targets: list[str] = ()) -> dict:
        """Pixel statistics of the map canvas, read right after a frame is drawn (WebGL clears it later).

        colours: distinct colours (5 bits per channel); dominant: share of the commonest one; hits: pixels within
        16 levels per channel of each target colour (#rrggbb).
        """
        return self.js_async("""
            var targets = arguments[0], done = arguments[1], map = window.portal.map;
            var rgb = targets.map(function (h) { return [1, 3, 5].map(function (i) { return parseInt(h.substr(i, 2), 16); }); });
            map.once('render', function () {
              var c = map.getCanvas(), w = c.width, h = c.height, t = document.createElement('canvas');
              t.width = w; t.height = h;
              var ctx = t.getContext('2d');
              ctx.drawImage(c, 0, 0);
              var d = ctx.getImageData(0, 0, w, h).data, counts = {}, hits = {}, best = 0;
              targets.forEach(function (x) { hits[x] = 0; });
              for (var i = 0; i < d.length; i += 4) {
                var k = (d[i] >> 3) * 4096 + (d[i + 1] >> 3) * 64 + (d[i + 2] >> 3);
                counts[k] = (counts[k] || 0) + 1;
                if (counts[k] > best) { best = counts[k]; }
                for (var j = 0; j < rgb.length; j++) {
                  if (Math.abs(d[i] - rgb[j][0]) <= 16 && Math.abs(d[i + 1] - rgb[j][1]) <= 16 && Math.abs(d[i + 2] - rgb[j][2]) <= 16) {
                    hits[targets[j]]++;
                  }
                }
              }
              done({width: w, height: h, colours: Object.keys(counts).length, dominant: best / (w * h), hits: hits});
            });
            map.triggerRepaint();
        """, list(targets))

    def screenshot(self, path: Path) -> Path:
        self.driver.save_screenshot(str(path))
        return path

    # --- logs ----------------------------------------------------------------------------------------------
    def console_errors(self) -> list[dict]:
        return [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    def network(self) -> list[dict]:
        """CDP network events since the last call (Network.responseReceived / loadingFailed / requestWillBeSent)."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method", "").startswith("Network."):
                self._events.append(message)
        events, self._events = self._events, []
        return events

    def wait_download(self, suffix: str, timeout: float = 60) -> Path:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [p for p in self.downloads.iterdir() if p.name.endswith(suffix)]
            partial = [p for p in self.downloads.iterdir() if p.name.endswith(".crdownload")]
            if done and not partial:
                return done[0]
            time.sleep(0.2)
        raise AssertionError(f"no {suffix} file was downloaded into {self.downloads} "
                             f"(found {sorted(p.name for p in self.downloads.iterdir())})")

    def clear_downloads(self) -> None:
        for path in self.downloads.iterdir():
            path.unlink()


def _driver(downloads: Path, profile: Path, size: tuple[int, int]):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--hide-scrollbars",
                 f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", "--lang=vi"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False,
                                              "download.directory_upgrade": True,
                                              "safebrowsing.enabled": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_script_timeout(60)
    driver.set_page_load_timeout(60)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads),
                                                            "eventsEnabled": True})
    return driver


def _browser(api_server, tmp_path_factory, size):
    reason = _missing_browser()
    if reason:
        pytest.fail(reason)
    downloads = tmp_path_factory.mktemp("downloads")
    profile = tmp_path_factory.mktemp("chromium-profile")
    driver = _driver(downloads, profile, size)
    if size[0] < 500:  # a headless window is at least 500 px wide: emulate the phone's screen instead
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 2, "mobile": True})
        driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    try:
        yield Browser(driver, api_server, downloads)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(api_server, tmp_path_factory):
    """A desktop-sized headless Chromium (one per test module: each module starts from a fresh profile)."""
    yield from _browser(api_server, tmp_path_factory, DESKTOP)


@pytest.fixture(scope="module")
def phone(api_server, tmp_path_factory):
    """A phone-sized headless Chromium."""
    yield from _browser(api_server, tmp_path_factory, PHONE)
