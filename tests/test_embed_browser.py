"""The embeddable directory in headless Chromium (Debian's, through Selenium) against a real
``presenced serve`` with short thresholds: what a person sees, live, in a page and in another
site's frame, and ``presence.js`` on another site's page. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browser import browser_available, chromium, console_errors, save_screenshot
from embed_host import HostSite, host_site
from live import LiveServer, free_port, live_server

pytestmark = pytest.mark.skipif(not browser_available(), reason="needs chromium + chromedriver")

OFFLINE_THRESHOLD = 23
SHORT_THRESHOLDS = {
    "PRESENCED_PRESENCE_PING_INTERVAL_SECS": "1",
    "PRESENCED_OFFLINE_THRESHOLD_SECS": str(OFFLINE_THRESHOLD),
    "PRESENCED_PRESENCE_UPDATE_MIN_FREQ_SECONDS": "1",
}
LIVE_UPDATE_SECS = 2.0
"""The issue's bound: a change shows within 2 s."""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("embed"), SHORT_THRESHOLDS) as server:
        server.cli("realm", "create", "--name", "Acme")
        yield server


@pytest.fixture(scope="module")
def people(live: LiveServer) -> dict[str, dict[str, Any]]:
    made = {
        "ada": live.user("ada@acme.test", "Ada Lovelace"),
        "grace": live.user("grace@acme.test", "Grace Hopper"),
        "alan": live.user("alan@acme.test", "Alan Turing"),
        "edsger": live.user("edsger@acme.test", "Edsger Dijkstra"),
        "gone": live.user("gone@acme.test", "Gone Away"),
        "bot": live.user("bot@acme.test", "Build Bot", "--bot"),
    }
    live.cli("user", "deactivate", "--email", "gone@acme.test")
    live.cli("realm", "create", "--name", "Other", "--subdomain", "other")
    live.user("outsider@other.test", "Out Sider", "--realm", "other")
    return made


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def site() -> Iterator[HostSite]:
    with host_site() as host:
        yield host


def make_token(live: LiveServer, *args: str) -> dict[str, Any]:
    made: dict[str, Any] = json.loads(live.cli("embed", "create", "--json", *args))
    return made


def report(live: LiveServer, person: dict[str, Any], status: str = "active") -> None:
    client = live.client(person["email"], person["api_key"])
    result = client.update_presence({"status": status, "ping_only": False, "new_user_input": True})
    assert result["result"] == "success", result


def shown(driver: webdriver.Chrome) -> dict[int, str]:
    """user id -> data-presence, for every person on the page."""
    found: dict[int, str] = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "[data-user-id]"):
        try:
            found[int(row.get_attribute("data-user-id") or 0)] = (
                row.get_attribute("data-presence") or ""
            )
        except StaleElementReferenceException:
            return {}
    return found


def wait_for(driver: webdriver.Chrome, timeout: float, what: str, check: Callable[[], Any]) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda _: check(), message=what
    )


def page_state(driver: webdriver.Chrome) -> str | None:
    return driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def open_directory(driver: webdriver.Chrome, url: str, count: int) -> None:
    driver.get(url)
    wait_for(driver, 10, f"{count} people listed", lambda: len(shown(driver)) == count)


def test_lists_the_right_people(
    live: LiveServer, people: dict[str, dict[str, Any]], driver: webdriver.Chrome
) -> None:
    humans = {people[n]["user_id"] for n in ("ada", "grace", "alan", "edsger")}
    token = make_token(live, "--label", "everyone")
    open_directory(driver, token["url"], len(humans))
    # Active humans of this organization only: no bot, no deactivated user, no outsider.
    assert shown(driver) == {user_id: "offline" for user_id in humans}
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-user-id] .name")]
    assert names == sorted(names)
    save_screenshot(driver, "embed-directory-all-offline")

    some = make_token(live, "--users", "ada@acme.test,alan@acme.test")
    open_directory(driver, some["url"], 2)
    assert set(shown(driver)) == {people["ada"]["user_id"], people["alan"]["user_id"]}

    # The search box narrows the list.
    open_directory(driver, token["url"], len(humans))
    driver.find_element(By.ID, "search").send_keys("grace")
    visible = [
        int(e.get_attribute("data-user-id") or 0)
        for e in driver.find_elements(By.CSS_SELECTOR, "[data-user-id]")
        if e.is_displayed()
    ]
    assert visible == [people["grace"]["user_id"]]
    assert console_errors(driver) == []


def test_report_turns_green_and_time_turns_grey(
    live: LiveServer, people: dict[str, dict[str, Any]], driver: webdriver.Chrome
) -> None:
    ada = people["ada"]
    token = make_token(live)
    open_directory(driver, token["url"], 4)
    assert shown(driver)[ada["user_id"]] == "offline"
    report(live, ada)
    wait_for(
        driver,
        LIVE_UPDATE_SECS,
        "Ada green within 2 s of her report",
        lambda: shown(driver).get(ada["user_id"]) == "active",
    )
    reported = time.monotonic()
    # Online people come first.
    first = driver.find_element(By.CSS_SELECTOR, "[data-user-id]")
    assert first.get_attribute("data-user-id") == str(ada["user_id"])
    assert "active now" in first.text
    save_screenshot(driver, "embed-directory-live")
    # No more reports: the page turns her grey by itself once the threshold has passed.
    wait_for(
        driver,
        OFFLINE_THRESHOLD + 10,
        "Ada grey after the offline threshold",
        lambda: shown(driver).get(ada["user_id"]) == "offline",
    )
    assert time.monotonic() - reported >= OFFLINE_THRESHOLD - 3
    row = driver.find_element(By.CSS_SELECTOR, f'[data-user-id="{ada["user_id"]}"]')
    assert "last active less than a minute ago" in row.text


def test_going_invisible_turns_grey(
    live: LiveServer, people: dict[str, dict[str, Any]], driver: webdriver.Chrome
) -> None:
    grace = people["grace"]
    token = make_token(live)
    open_directory(driver, token["url"], 4)
    report(live, grace)
    wait_for(
        driver,
        LIVE_UPDATE_SECS,
        "Grace green",
        lambda: shown(driver).get(grace["user_id"]) == "active",
    )
    client = live.client(grace["email"], grace["api_key"])
    result = client.call_endpoint("settings", method="PATCH", request={"presence_enabled": False})
    assert result["result"] == "success", result
    wait_for(
        driver,
        LIVE_UPDATE_SECS,
        "Grace grey within 2 s of going invisible",
        lambda: shown(driver).get(grace["user_id"]) == "offline",
    )
    client.call_endpoint("settings", method="PATCH", request={"presence_enabled": True})


def test_revoked_token_stops_the_page(
    live: LiveServer, people: dict[str, dict[str, Any]], driver: webdriver.Chrome
) -> None:
    token = make_token(live, "--label", "to revoke")
    open_directory(driver, token["url"], 4)
    live.cli("embed", "revoke", str(token["token_id"]))
    revoked = time.monotonic()
    wait_for(
        driver,
        3,
        "the page stopped",
        lambda: page_state(driver) == "revoked",
    )
    assert time.monotonic() - revoked < 2.5
    assert shown(driver) == {}
    assert "no longer valid" in driver.find_element(By.ID, "notice").text
    save_screenshot(driver, "embed-directory-revoked")
    # A reload is refused too.
    driver.get(token["url"])
    assert "Invalid or revoked embed token" in driver.page_source


def frame_page(url: str) -> str:
    return (
        "<!doctype html><title>Intranet</title><h1>Our people</h1>"
        f'<iframe id="directory" src="{url}" width="320" height="420"></iframe>'
    )


def test_framed_by_an_allowed_origin_only(
    live: LiveServer,
    people: dict[str, dict[str, Any]],
    driver: webdriver.Chrome,
    site: HostSite,
) -> None:
    token = make_token(live, "--origin", site.origin)
    site.pages["/intranet.html"] = frame_page(token["url"] + "&theme=dark")
    driver.get(site.url("/intranet.html"))
    driver.switch_to.frame(driver.find_element(By.ID, "directory"))
    try:
        wait_for(driver, 10, "the framed directory lists people", lambda: len(shown(driver)) == 4)
    finally:
        driver.switch_to.default_content()
    save_screenshot(driver, "embed-directory-framed")
    console_errors(driver)

    # Another site (another port, so another origin) may not frame it.
    with host_site() as other:
        other.pages["/elsewhere.html"] = frame_page(token["url"])
        driver.get(other.url("/elsewhere.html"))

        def refusal() -> bool:
            return any("frame-ancestors" in e["message"] for e in console_errors(driver))

        wait_for(driver, 10, "Chromium refuses the frame", refusal)
        driver.switch_to.frame(driver.find_element(By.ID, "directory"))
        try:
            with pytest.raises(NoSuchElementException):
                driver.find_element(By.ID, "people")
        finally:
            driver.switch_to.default_content()
        save_screenshot(driver, "embed-directory-frame-refused")


def test_presence_js_decorates_a_host_page(
    live: LiveServer,
    people: dict[str, dict[str, Any]],
    driver: webdriver.Chrome,
    site: HostSite,
) -> None:
    alan, edsger = people["alan"], people["edsger"]
    token = make_token(live, "--origin", site.origin, "--users", "alan@acme.test,edsger@acme.test")
    site.pages["/team.html"] = (
        "<!doctype html><title>Team</title><ul>"
        '<li><span data-presenced-user="alan@acme.test">Alan</span></li>'
        '<li><span data-presenced-user="EDSGER@acme.test">Edsger</span></li>'
        '<li><span data-presenced-user="ada@acme.test">Ada (not covered)</span></li>'
        "</ul>"
        f'<script src="{live.url}/embed/presence.js" data-token="{token["token"]}"></script>'
    )
    report(live, alan)
    driver.get(site.url("/team.html"))

    def dots() -> dict[str, str]:
        found = {}
        for span in driver.find_elements(By.CSS_SELECTOR, "[data-presenced-user]"):
            dot = span.find_elements(By.XPATH, "following-sibling::*[@data-presenced-dot]")
            if dot:
                found[span.text] = dot[0].get_attribute("data-presence") or ""
        return found

    wait_for(driver, 10, "dots next to the covered people", lambda: len(dots()) == 2)
    assert dots() == {"Alan": "active", "Edsger": "offline"}
    report(live, edsger)
    wait_for(
        driver,
        LIVE_UPDATE_SECS,
        "Edsger's dot green",
        lambda: dots().get("Edsger") == "active",
    )
    save_screenshot(driver, "embed-presence-js")
    assert console_errors(driver) == []


def test_dark_theme_readable_at_300px(
    live: LiveServer, people: dict[str, dict[str, Any]], driver: webdriver.Chrome
) -> None:
    token = make_token(live)
    driver.set_window_size(300, 600)
    try:
        report(live, people["ada"])
        open_directory(driver, token["url"] + "&theme=dark", 4)
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("data-theme") == "dark"
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        save_screenshot(driver, "embed-directory-dark-300px")
        # The README's picture: someone invisible among people online.
        grace = live.client(people["grace"]["email"], people["grace"]["api_key"])
        grace.call_endpoint("settings", method="PATCH", request={"presence_enabled": False})
        open_directory(driver, token["url"], 4)
        wait_for(
            driver,
            LIVE_UPDATE_SECS,
            "Grace grey",
            lambda: shown(driver).get(people["grace"]["user_id"]) == "offline",
        )
        save_screenshot(driver, "embed-directory-300px")
        grace.call_endpoint("settings", method="PATCH", request={"presence_enabled": True})
    finally:
        driver.set_window_size(1280, 900)


def test_reconnects_after_a_server_restart(tmp_path: Path, driver: webdriver.Chrome) -> None:
    port = free_port()
    with live_server(tmp_path, SHORT_THRESHOLDS, port=port) as first:
        first.cli("realm", "create", "--name", "Restarting")
        lin = first.user("lin@acme.test", "Lin Restart")
        token = make_token(first)
        open_directory(driver, token["url"], 1)
    wait_for(
        driver,
        10,
        "the page notices the server is gone",
        lambda: page_state(driver) == "reconnecting",
    )
    with live_server(tmp_path, SHORT_THRESHOLDS, port=port, init=False) as second:
        wait_for(
            driver,
            15,
            "the page is live again",
            lambda: page_state(driver) == "live",
        )
        report(second, lin)
        wait_for(
            driver,
            LIVE_UPDATE_SECS,
            "Lin green after the restart",
            lambda: shown(driver).get(lin["user_id"]) == "active",
        )
