"""Headless Chromium for checking HTML reports the way a reader sees them (tests, benchmarks).

Uses Debian's ``chromium`` and ``chromium-driver`` packages through Selenium (the ``test``
extra); Selenium is pointed at both binaries so it never downloads a browser or driver.
``ALIGNGPT_CHROMIUM`` / ``ALIGNGPT_CHROMEDRIVER`` override the paths.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: Flags that work as root in containers, with no network side traffic.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars")


def chromium_paths() -> tuple[str, str] | None:
    """(browser, driver) executables, or None when either is missing (an override naming a
    missing file counts as missing)."""
    browser = shutil.which(os.environ.get("ALIGNGPT_CHROMIUM") or "chromium") or shutil.which("chromium-browser")
    driver = shutil.which(os.environ.get("ALIGNGPT_CHROMEDRIVER") or "chromedriver")
    if not browser or not driver:
        return None
    return browser, driver


def missing_reason() -> str | None:
    """Why a headless check cannot run here (None when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if chromium_paths() is None:
        return "chromium / chromedriver not found (Debian: apt-get install -y chromium chromium-driver)"
    return None


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator["object"]:
    """A Selenium WebDriver on a fresh headless Chromium profile, closed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        raise RuntimeError(missing_reason() or "chromium not found")
    browser, driver_path = paths
    profile = tempfile.mkdtemp(prefix="aligngpt-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def file_url(path: str | Path) -> str:
    return Path(path).resolve().as_uri()
