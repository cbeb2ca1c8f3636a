"""The browser fixture of the report tests (headless Chromium, see browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.report.browser import start_browser


@pytest.fixture
def browser() -> Iterator[Any]:
    session = start_browser()
    try:
        yield session
    finally:
        session.quit()
