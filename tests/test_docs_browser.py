"""The documentation pages in headless Chromium (Debian's, through Selenium), served by a real
``presenced serve``: every page loads with no console error and no missing asset, the usage
example tabs switch, and the pages fit a phone's width. Screenshots at phone and desktop width
are saved under ``test-artifacts/screenshots/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from selenium.webdriver import Chrome as WebDriver
from selenium.webdriver.common.by import By

from browser import browser_available, chromium, console_errors, save_screenshot
from docs_html import page_links
from live import LiveServer, live_server

pytestmark = pytest.mark.skipif(
    not browser_available(), reason="needs /usr/bin/chromium and /usr/bin/chromedriver"
)
PHONE = (390, 844)
DESKTOP = (1280, 1200)
SCREENSHOT_PAGE = "update-presence"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("docs-browser")) as live:
        yield live


def all_pages(live: LiveServer) -> list[str]:
    index = httpx.get(live.url + "/api/", timeout=30)
    assert index.status_code == 200
    return ["", *page_links(index.text)]


def asset_urls(driver: WebDriver) -> list[str]:
    urls: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('link[href], script[src], img[src]')]"
        ".map(e => e.href || e.src);"
    )
    return urls


def visible_tab(driver: WebDriver, section: object) -> list[str]:
    panels = driver.execute_script(
        "return [...arguments[0].querySelectorAll(':scope > .tab-panel')]"
        ".filter(p => p.offsetParent !== null).map(p => p.dataset.tabKey);",
        section,
    )
    return list(panels)


def check_tabs(driver: WebDriver) -> None:
    section = driver.find_element(By.CSS_SELECTOR, ".tabbed-section")
    assert visible_tab(driver, section) == ["python"]
    section.find_element(By.CSS_SELECTOR, '.nav [data-tab-key="curl"]').click()
    assert visible_tab(driver, section) == ["curl"]
    curl = section.find_element(By.CSS_SELECTOR, 'pre[data-example="curl"]')
    assert curl.text.startswith("curl -sSX")
    section.find_element(By.CSS_SELECTOR, '.nav [data-tab-key="python"]').click()
    assert visible_tab(driver, section) == ["python"]


def check_page(driver: WebDriver, live: LiveServer, slug: str) -> None:
    driver.get(f"{live.url}/api/{slug}")
    assert driver.find_element(By.TAG_NAME, "h1").text
    errors = console_errors(driver)
    assert errors == [], (slug, errors)
    for url in asset_urls(driver):
        assert url.startswith(live.url + "/"), (slug, url)  # nothing external
        assert httpx.get(url, timeout=30).status_code == 200, (slug, url)
    width = driver.execute_script("return document.documentElement.scrollWidth;")
    inner = driver.execute_script("return window.innerWidth;")
    assert width <= inner, f"{slug} is wider ({width}px) than the window ({inner}px)"
    if driver.find_elements(By.CSS_SELECTOR, ".tabbed-section"):
        check_tabs(driver)


@pytest.mark.parametrize(("name", "size"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_every_page_in_chromium(served: LiveServer, name: str, size: tuple[int, int]) -> None:
    with chromium(*size) as driver:
        for slug in all_pages(served):
            check_page(driver, served, slug)
        driver.get(f"{served.url}/api/{SCREENSHOT_PAGE}")
        path: Path = save_screenshot(driver, f"docs-{SCREENSHOT_PAGE}-{name}")
        assert path.stat().st_size > 10_000


def test_the_phone_menu_opens(served: LiveServer) -> None:
    with chromium(*PHONE) as driver:
        driver.get(f"{served.url}/api/get-presence")
        sidebar = driver.find_element(By.ID, "sidebar")
        assert not sidebar.is_displayed()
        driver.find_element(By.CSS_SELECTOR, ".nav-toggle").click()
        assert sidebar.is_displayed()
        sidebar.find_element(By.LINK_TEXT, "Update your presence").click()
        assert driver.find_element(By.TAG_NAME, "h1").text == "Update your presence"
        assert console_errors(driver) == []
