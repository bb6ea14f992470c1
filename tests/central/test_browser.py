"""The web dashboard in a real headless Chromium, against a real site of three `evnet cp` processes.

An operator clicks "Stop" on a charging point: it turns orange with "Out of Order", its session ends
with its ticket (in the event log, and copied to the registry then acknowledged to the site), then
"Resume" makes it available again. A charge point's process killed turns grey.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from hil_tests.site_rig import SITE

from .conftest import CentralRig, until

pytestmark = pytest.mark.slow


def card(browser, cp: str):
    return browser.find_element(By.CSS_SELECTOR, f'article.cp[data-cp="{SITE}/{cp}"]')


def status_of(browser, cp: str) -> str:
    return card(browser, cp).get_attribute("data-status")


def log_lines(browser, kind: str) -> list[str]:
    return [li.text for li in browser.find_elements(By.CSS_SELECTOR, f'#log li[data-kind="{kind}"]')]


def test_stop_turns_a_charging_point_orange_out_of_order_with_its_ticket_then_resume(
        site, central: CentralRig, browser, tmp_path: Path) -> None:
    browser.get(central.web.url)
    for n, cp in ((1, "cp1"), (2, "cp2")):
        site.request_charge(f"D{n}", cp)
        site.plug_ev(cp)
    until(lambda: status_of(browser, "cp2") == "CHARGING" and status_of(browser, "cp1") == "CHARGING", 60,
          "cp1 and cp2 charging on the dashboard")
    live = card(browser, "cp2")
    until(lambda: "kW" in live.find_element(By.CLASS_NAME, "live").text and "D2" in live.text, 20,
          "cp2's live figures and driver")
    assert "green" in live.get_attribute("class").split()
    summed = browser.find_element(By.CSS_SELECTOR, f'section.site[data-site="{SITE}"] .site-sum')
    until(lambda: float(summed.text.split()[0]) > 30, 30, "the site's sum of currents: both EVs drawing")
    assert summed.text.endswith("of 63 A")

    live.find_element(By.CLASS_NAME, "stop").click()
    until(lambda: status_of(browser, "cp2") == "OUT_OF_ORDER", 30, "cp2 out of order")
    stopped = card(browser, "cp2")
    assert "orange" in stopped.get_attribute("class").split()
    assert stopped.find_element(By.CLASS_NAME, "legend").text == "Out of Order"
    ticket = until(lambda: [t for t in log_lines(browser, "ticket") if "cp2" in t], 30, "cp2's ticket in the log")
    assert "kWh" in ticket[0] and "€" in ticket[0]
    assert until(lambda: [t for t in log_lines(browser, "operator") if "stop" in t and "cp2" in t], 10,
                 "the operator's stop and its result in the log")
    assert browser.find_element(By.ID, "result").text == f"{SITE}: stop done"
    # the site's own ticket: copied to the registry (on disk), then acknowledged to the site, which forgets it
    acked = until(lambda: [t for t in central.central.registry.tickets(SITE) if t["cp"] == "cp2" and t["acked"]],
                  30, "cp2's site ticket kept and acknowledged")
    assert acked[0]["kwh"] > 0
    shot = os.environ.get("EVNET_CENTRAL_SCREENSHOT")  # docs/central.png is made so: a live site, one stopped
    browser.save_screenshot(str(shot or tmp_path / "central.png"))

    card(browser, "cp2").find_element(By.CLASS_NAME, "resume").click()
    until(lambda: status_of(browser, "cp2") == "AVAILABLE", 30, "cp2 back in service")
    assert "green" in card(browser, "cp2").get_attribute("class").split()

    card(browser, "cp1").find_element(By.CLASS_NAME, "cap-input").send_keys("10")  # cap cp1, still charging
    card(browser, "cp1").find_element(By.CLASS_NAME, "set-cap").click()
    until(lambda: browser.find_element(By.ID, "result").text == f"{SITE}: cap done", 20, "the cap taken")
    assert until(lambda: [t for t in log_lines(browser, "operator") if "cap cp=cp1 max_current_a=10" in t], 10,
                 "the operator's cap in the log")
    until(lambda: "operator cap" in card(browser, "cp1").find_element(By.CLASS_NAME, "why").text, 30,
          "cp1 limited by the operator's cap")


def test_a_killed_charge_point_turns_grey(site, central: CentralRig, browser) -> None:
    browser.get(central.web.url)
    until(lambda: all(status_of(browser, cp) == "AVAILABLE" for cp in ("cp1", "cp2", "cp3")), 30,
          "every charge point available")
    site.signal("cp3", signal.SIGKILL)
    until(lambda: status_of(browser, "cp3") == "DISCONNECTED", 40, "cp3 disconnected (its Last Will)")
    assert "grey" in card(browser, "cp3").get_attribute("class").split()
    assert status_of(browser, "cp1") == "AVAILABLE"


def test_the_chromium_of_the_bootstrap_is_there() -> None:
    assert shutil.which("chromium") and shutil.which("chromedriver")
