"""`evnet cp`'s back office fails safe and says so: a link thread that dies, or a Reset, makes `dead_thread`
name it (`serve` then ends the process with exit 1, the engine opening its contactor on the way out, and
systemd starts it again), while the engine's and the replica's threads go on until then."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from central_broker.demo.watch import wait_for
from evnet.config import load_config
from firmware.chargepoint.process import ChargePoint

from ..sites import SPEED, write_configs
from .csms import Csms


def charge_point(tmp_path: Path, broker_url: str, csms: Csms) -> ChargePoint:
    path = write_configs(tmp_path, broker_url)["cp1"]
    path.write_text(path.read_text() + f'\n[ocpp]\nurl = "{csms.url}"\nversion = "{csms.version}"\n')
    return ChargePoint(load_config(path), str(tmp_path / "replica" / "cp1"), speed=SPEED, monitor=False)


def test_a_link_thread_that_dies_is_named_and_the_rest_runs_on(tmp_path: Path, mosquitto: Any,
                                                               csms_factory: Any,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="evnet")
    cp = charge_point(tmp_path, mosquitto.url, csms_factory("py", "1.6"))
    assert cp.backoffice is not None

    async def broken() -> None:
        raise RuntimeError("a bug outside the per-input guard")

    cp.backoffice.link._main = broken  # the thread's whole loop fails
    try:
        cp.start()
        cp.backoffice.link._thread.join(5)
        assert cp.dead_thread() == "back office's link"
        assert cp.evse.alive and cp.runner.alive
        assert any("ocpp.link_died" in r.getMessage() and "RuntimeError" in r.getMessage() for r in caplog.records)
    finally:
        cp.stop()


def test_a_reset_asks_for_a_new_start(tmp_path: Path, mosquitto: Any, csms_factory: Any) -> None:
    csms = csms_factory("py", "2.0.1")
    cp = charge_point(tmp_path, mosquitto.url, csms)
    assert cp.backoffice is not None
    try:
        cp.start()
        csms.wait_call("BootNotification", "cp1", timeout=15)
        assert cp.dead_thread() is None
        assert csms.call("cp1", "Reset", {"type": "Immediate"}) == {"status": "Accepted"}
        wait_for(lambda: cp.dead_thread() is not None, 10, "the Reset's restart")
        assert cp.dead_thread() == "restart: the back office asked for a reset (hard_reset)"
    finally:
        cp.stop()
