"""Fixtures for the engine process tests: a charge point configuration and a running `Evse`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from evnet.clock import RealClock
from evnet.config import Config, load_config
from firmware.engine.evse import Evse

CONFIG = """\
[charge_point]
id = "cp1"
site = "s1"
location = "Bay 1"
price_eur_kwh = 0.30
max_current_a = 16
local_drivers = ["owner"]
journal_dir = "journal"

[hal]
pin_factory = "mock"

[hal.pilot]
backend = "simulated"
cable = "inproc"

[meter]
backend = "simulated"
transport = "tcp"
address = "127.0.0.1:0"
poll_interval_s = 1.0
{meter_extra}

[mqtt]
url = "{mqtt_url}"

[site]
members = ["cp1"]
limit_a = 32
fallback_a = 6
lease_s = 5
key_file = "site.key"
"""


def make_config(tmp_path: Path, mqtt_url: str = "mqtt://127.0.0.1:1", extra: str = "", meter_extra: str = "") -> Config:
    path = tmp_path / "cp1.toml"
    path.write_text(CONFIG.format(mqtt_url=mqtt_url, meter_extra=meter_extra) + extra)
    (tmp_path / "site.key").write_text("k" * 32)
    return load_config(path)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait (in real time, as a safety net) until `predicate()` holds; fail naming `what` otherwise."""
    done = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        done.wait(0.005)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def evse_factory(tmp_path: Path) -> Iterator[Callable[..., Evse]]:
    started: list[Evse] = []

    def make(speed: float = 20.0, mqtt_url: str | None = None, extra: str = "", meter_extra: str = "",
             **kw: object) -> Evse:
        cfg = make_config(tmp_path, mqtt_url or "mqtt://127.0.0.1:1", extra, meter_extra)
        evse = Evse(cfg, clock=kw.pop("clock", None) or RealClock(speed), mqtt=mqtt_url is not None,
                    monitor=bool(kw.pop("monitor", False)), **kw)
        evse.start()
        started.append(evse)
        return evse

    yield make
    for evse in started:
        evse.stop()
