"""A real `streamlit run app.py` on a free port, on the real MNIST, driven by Debian's Chromium
(bench.serving: the one harness the benchmarks, load tests and proxy check use too)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.serving import CHROMIUM, chromium, serving

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "screenshots"


def _need(condition: bool, message: str) -> None:
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI must run the browser tests")
        pytest.skip(message)


@pytest.fixture(scope="session")
def server(real_root: Path, tmp_path_factory) -> Iterator[str]:
    """The app served on loopback for the whole session, on the real MNIST."""
    with serving(real_root, tmp_path_factory.mktemp("server") / "streamlit.log") as running:
        yield running.url


@pytest.fixture(scope="session")
def browser() -> Iterator:
    _need(Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser, server):
    """A fresh browser context (no cookies, no session) on the served app."""
    context = browser.new_context(viewport={"width": 1400, "height": 1300}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a screenshot where the README says reviewers find them."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_view(page, url: str, title: str) -> None:
    """Go to `url` and wait until the page has drawn its title and finished running."""
    page.goto(url)
    page.get_by_role("heading", name=title, exact=True).wait_for()
    settle(page)


def settle(page) -> None:
    """Wait until Streamlit's script run is over (no "running" status, no stale elements)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')"
        " && !document.querySelector('[data-stale=true]')"
    )
    page.wait_for_timeout(300)


def assert_no_error(page) -> None:
    assert page.locator("[data-testid=stException]").count() == 0
    assert "Traceback" not in page.content()
