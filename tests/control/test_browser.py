"""The web page in a real browser (Debian's chromium and chromium-driver, driven by
Selenium): it draws the lab, and a login, a zone change and a reservation appear on it
without a reload. A screenshot of each stage is saved in the test's tmp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from fcsoft.initiator import open_host
from tests.conftest import require_tool

from .helpers import CONFIG, H1, P1, Api

pytestmark = [pytest.mark.tools, pytest.mark.fcsoft_config(CONFIG)]

WAIT = 30.0  # seconds: a hang guard for each thing the page must show


def chromium_options(profile: Path):
    from selenium.webdriver.chrome.options import Options

    opts = Options()
    opts.binary_location = require_tool("chromium")
    # as root, without network: no sandbox, and nothing that phones home
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    return opts


@pytest.fixture
def browser(tmp_path):
    require_tool("chromium")
    driver_path = require_tool("chromedriver")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(executable_path=driver_path),
                              options=chromium_options(tmp_path / "profile"))
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The page in the browser, every call run in a thread (the lab serves it from the
    test's trio loop, which must keep running meanwhile)."""

    def __init__(self, driver, tmp_path: Path) -> None:
        self.driver = driver
        self.tmp_path = tmp_path

    async def run(self, fn, *args):
        return await trio.to_thread.run_sync(fn, *args)

    async def open(self, url: str) -> None:
        await self.run(self.driver.get, url)

    async def wait_css(self, selector: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def wait() -> None:
            WebDriverWait(self.driver, WAIT).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, selector))
        await self.run(wait)

    async def text_of(self, selector: str) -> str:
        from selenium.webdriver.common.by import By

        return await self.run(lambda: " ".join(
            e.text for e in self.driver.find_elements(By.CSS_SELECTOR, selector)))

    async def screenshot(self, name: str) -> Path:
        path = self.tmp_path / name
        assert await self.run(self.driver.save_screenshot, str(path))
        return path

    async def page_loads(self) -> int:
        return await self.run(self.driver.execute_script,
                              "return performance.getEntriesByType('navigation').length")


async def test_page_shows_login_zone_and_reservation_live(fcsoft_lab, browser, tmp_path):
    host, port = fcsoft_lab.control_address
    page = Page(browser, tmp_path)
    await page.open(f"http://{host}:{port}/")
    await page.wait_css(f'[data-array="array1"] [data-wwpn="{P1}"][data-state="online"]')
    marker = await page.run(browser.execute_script, "return window.__marker = 'same page'")
    shot = await page.screenshot("1-lab.png")
    assert shot.stat().st_size > 1000

    async with open_host(fcsoft_lab.address, H1) as h, h.connect(P1) as it:
        await page.wait_css(f'[data-link] [data-wwpn="{H1}"]')  # the login
        await page.screenshot("2-login.png")

        await Api(fcsoft_lab.control_address).call("PUT", "/api/zones/blue",
                                                    {"members": [H1, P1]})
        await page.wait_css(f'[data-wwpn="{H1}"] [data-zone="blue"]')  # the zone change
        await page.screenshot("3-zone.png")

        await it.test_unit_ready(0)
        key = 0xABC
        assert (await it.persistent_reserve_out(0, 0x00, sa_key=key)).good  # REGISTER
        assert (await it.persistent_reserve_out(0, 0x01, key=key, type=1)).good  # RESERVE
        await page.wait_css('[data-reservation="data"]')  # the reservation
        shown = await page.text_of('[data-reservation="data"]')
        assert "WR_EX" in shown and H1 in shown
        await page.screenshot("4-reservation.png")

        # the table view has the same
        await page.run(lambda: browser.find_element("id", "show-tables").click())
        tables = await page.text_of("#tables")
        assert H1 in tables and "blue" in tables and "WR_EX" in tables
        await page.screenshot("5-tables.png")
        await it.persistent_reserve_out(0, 0x02, key=key, type=1)  # RELEASE
        await it.persistent_reserve_out(0, 0x00, key=key, sa_key=0)  # unregister

    # nothing was reloaded: the same document saw every change
    assert await page.run(browser.execute_script, "return window.__marker") == marker
    assert await page.page_loads() == 1
