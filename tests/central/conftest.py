"""Central against a real site: three `evnet cp` processes on a real Mosquitto (hil_tests/site_rig.py), Central
in this process with its web dashboard, and a real headless Chromium driven by Selenium."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from central_broker.central.app import Central
from central_broker.demo.site import CENTRAL
from central_broker.web import StreamHub, WebServer
from evnet.config import load_central_config
from firmware.site import new_private_key, public_key_b64
from firmware.site.credentials import private_key_pem
from hil_tests.site_rig import SITE, SiteRig, wait_for


@dataclass
class CentralRig:
    central: Central
    hub: StreamHub
    web: WebServer

    def stop(self) -> None:
        self.web.stop()
        self.hub.stop()
        self.central.stop()


def start_central(root: Path, url: str, site: str = SITE, key: object | None = None,
                  mqtt_version: str = "5", homeassistant: bool = False) -> CentralRig:
    """Central as `evnet central` runs it (its registry under `root`), on the broker at `url`."""
    # the demo's Central file (its [central] last), on a port the kernel picks, Home Assistant as asked
    (root / "central.toml").write_text(CENTRAL.format(url=url, site=site, version=mqtt_version, web=0)
                                       + f"homeassistant = {str(homeassistant).lower()}\n")
    cfg = load_central_config(root / "central.toml")
    central = Central(cfg, key)  # type: ignore[arg-type]
    hub = StreamHub(central.view, central.lock)
    web = WebServer(hub, central.act, cfg.central.web_listen)
    central.web_url = web.url
    central.start()
    hub.start()
    web.start()
    return CentralRig(central, hub, web)


@pytest.fixture
def site(tmp_path: Path, mosquitto) -> Iterator[SiteRig]:
    rig = SiteRig(tmp_path, mosquitto.url)
    try:
        rig.start()
        rig.add_people(3)
        yield rig
    finally:
        rig.close()


@pytest.fixture
def central(tmp_path: Path, site: SiteRig, mosquitto) -> Iterator[CentralRig]:
    """Central with an operator key the site knows (added by the site's operator op1)."""
    key = new_private_key()
    (tmp_path / "central.pem").write_bytes(private_key_pem(key))
    added = site.operator("add_principal", {"id": "central", "role": "operator", "key": public_key_b64(key)})
    assert added.get("ok"), added
    rig = start_central(tmp_path, mosquitto.url, key=key)
    try:
        yield rig
    finally:
        rig.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """Debian's chromium, headless, driven by its chromedriver (no browser download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail("chromium and chromedriver are not installed: run ./bootstrap (it installs them with apt)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,900", f"--user-data-dir={tmp_path / 'chromium'}"):
        opts.add_argument(flag)
    b = webdriver.Chrome(options=opts, service=Service(driver))
    try:
        yield b
    finally:
        b.quit()


def until(predicate: Callable[[], object], timeout: float, what: str) -> object:
    """`wait_for` (the rig's poll) of a page element or a value, which it returns; a page element not there yet,
    or replaced while read (the stream redraws it), counts as not yet."""
    from selenium.common.exceptions import WebDriverException

    got: list[object] = [None]

    def attempt() -> bool:
        try:
            got[0] = predicate()
        except (WebDriverException, KeyError, ValueError, IndexError):
            got[0] = None
        return bool(got[0])
    wait_for(attempt, timeout, what)
    return got[0]
