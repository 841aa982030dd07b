"""Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium, for
the browser tests. `.ci/run` installs both; where they are missing, ``MISSING`` names them
and the tests are skipped, saying so."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = [package for package, path in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER))
           if not Path(path).exists()]
WAIT_SECONDS = 20

# What works in a container as root with no network and no display.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
    # Every name but the test server's fails to resolve: nothing leaves this machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)

Value = TypeVar("Value")


@contextlib.contextmanager
def chromium(*, flags: tuple[str, ...] = (), logs: tuple[str, ...] = ("browser",)) -> Iterator[Any]:
    """A Selenium driver of a fresh headless Chromium (its own empty profile), keeping the
    ``logs`` named (``browser``: the console; ``performance``: DevTools network events)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.TemporaryDirectory()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile.name}", *flags):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", dict.fromkeys(logs, "ALL"))
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(WAIT_SECONDS)
        driver.set_script_timeout(WAIT_SECONDS)
        yield driver
    finally:
        driver.quit()
        profile.cleanup()


def wait_for(condition: Callable[[], Value], what: str) -> Value:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
