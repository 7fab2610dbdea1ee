"""A headless Chromium over an HTML report, for tests and screenshots: Debian's chromium and
chromedriver through Selenium, with selenium-manager never asked to download a browser."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Where Debian's ``chromium`` and ``chromium-driver`` packages put them; overridable.
CHROMIUM = os.environ.get("PHYJUDGE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PHYJUDGE_CHROMEDRIVER", "/usr/bin/chromedriver")


def browser_missing() -> str | None:
    """Why no browser test can run here, or None when one can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() or shutil.which(path)):
            return f"{path} is missing (apt-get install {package})"
    return None


@contextmanager
def headless_chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A headless Chromium WebDriver that logs its network events (see ``requests_made``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # containers and CI runners often run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--mute-audio",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def requests_made(driver: Any) -> list[str]:
    """Every URL the page asked the network layer for since the last call (Chrome's
    performance log: ``Network.requestWillBeSent``)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def wait_for(check: Callable[[], Any], seconds: float = 20.0, step: float = 0.1) -> Any:
    """``check()``'s first truthy value, polled until ``seconds`` pass; then its last value."""
    end = time.monotonic() + seconds
    value = check()
    while not value and time.monotonic() < end:
        time.sleep(step)
        value = check()
    return value


def video_states(driver: Any) -> list[dict[str, Any]]:
    """Each ``<video>`` of the page: its case, readyState, duration and error code."""
    return driver.execute_script(
        "return [...document.querySelectorAll('video')].map(v => ({"
        "case: v.closest('article').id, ready: v.readyState, duration: v.duration,"
        "error: v.error && v.error.code}));"
    )
