"""Headless Chromium for the browser tests: Debian's ``chromium`` and ``chromium-driver``
driven by Selenium, nothing downloaded. Missing, the tests skip; with
NASFORGE_REQUIRE_SERVICES=1 (CI, after scripts/ci_browser.sh) they fail instead."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)


def _find(names: tuple[str, ...], extra: tuple[str, ...] = ()) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in extra if Path(p).is_file()), None)


def start_browser(width: int = 1300, height: int = 1000) -> Any:
    """A headless Chromium session, or a skip (a failure in CI) saying what is missing."""
    browser = _find(BROWSERS)
    driver = _find(DRIVERS, ("/usr/lib/chromium/chromedriver",))
    missing = [n for n, p in (("chromium", browser), ("chromedriver", driver)) if p is None]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        message = f"browser tests need {', '.join(missing)} (scripts/ci_browser.sh installs them)"
        if os.environ.get("NASFORGE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"NASFORGE_REQUIRE_SERVICES=1 but {message}")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}", "--disable-extensions"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_dashboard(store: Path, port: int, refresh: float = 0.5) -> subprocess.Popen:
    """``nasforge dashboard`` as a user starts it, answering on 127.0.0.1:port."""
    server = subprocess.Popen(
        [sys.executable, "-m", "nasforge.cli", "dashboard", "--store", str(store),
         "--port", str(port), "--refresh", str(refresh)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip

    def answering() -> bool:
        if server.poll() is not None:
            pytest.fail(f"dashboard exited: {server.stdout.read() if server.stdout else ''}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_for(answering, 60, "the dashboard to listen")
    return server


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
