"""An engine whose contactor is welded shut asks its monitor to cut the safety line (heartbeat status
`FAULTED_SAFETY_CUT`), and the monitor keeps it cut for as long as the engine asks."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

from evnet.clock import RealClock
from evnet.config import load_config
from firmware.engine.evse import Evse
from firmware.protocols.heartbeat import SAFETY_CUT, Health
from hal.pilot import EvLoad

from .test_watchdog import SAFETY_PIN, TIMEOUT, Engine, running_watchdog, wait_health, write_config


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    pause, deadline = threading.Event(), time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.005)


def test_an_engine_answering_safety_cut_has_the_line_cut_while_it_does(tmp_path: Path, mock_factory) -> None:
    cfg = load_config(write_config(tmp_path, "mqtt://127.0.0.1:1"))
    safety_pin = mock_factory.pin(SAFETY_PIN)
    with running_watchdog(cfg, mock_factory, reporter=False) as wd:
        engine = Engine(wd.port.engine_url, SAFETY_CUT)
        try:
            wait_health(wd, Health.HEALTHY)  # it answers: not lost, yet the line stays cut
            with wd.changed:
                assert wd.changed.wait_for(lambda: wd.cut_for_engine, TIMEOUT)
            assert safety_pin.state == 0 and wd.hb.engine_status == SAFETY_CUT
        finally:
            engine.close()
        wait_health(wd, Health.FAULTED)
        engine = Engine(wd.port.engine_url, "AVAILABLE")  # restarted after a repair: the line comes back
        try:
            wait_health(wd, Health.HEALTHY)
            assert safety_pin.state == 1 and not wd.cut_for_engine
        finally:
            engine.close()


def test_a_welded_contactor_seen_by_the_engine_cuts_the_safety_line(tmp_path: Path, mock_factory) -> None:
    cfg = load_config(write_config(tmp_path, "mqtt://127.0.0.1:1"))
    safety_pin = mock_factory.pin(SAFETY_PIN)
    with running_watchdog(cfg, mock_factory, reporter=False) as wd:
        engine_cfg = dataclasses.replace(cfg, monitor=dataclasses.replace(cfg.monitor, serial_url=wd.port.engine_url))
        evse = Evse(engine_cfg, clock=RealClock(20.0), mqtt=False, monitor=True, standing_driver="alice",
                    print_tickets=False)
        evse.start()
        try:
            wait_health(wd, Health.HEALTHY)
            assert safety_pin.state == 1
            ev = evse.cable.ev
            assert evse.meter.simulator is not None
            evse.meter.simulator.set_load(lambda: ev.current_a)  # welded: current flows whatever the contactor does
            ev.set_load(EvLoad.B)
            wait_for(lambda: evse.core.session.started, what="a session")
            ev.set_load(EvLoad.C)
            ev.set_current(16.0)
            wait_for(lambda: evse.contactor_closed, what="contactor closed")
            evse.request_stop("operator_stop")  # the EV ignores the PWM stop and keeps drawing: forced open at 6 s
            with wd.changed:
                assert wd.changed.wait_for(lambda: wd.cut_for_engine, TIMEOUT), "the monitor never cut the line"
            assert safety_pin.state == 0 and not evse.contactor_closed
            assert evse.core.status == "FAULTED" and "relay_welded" in (evse.core.fault_code or "")
        finally:
            evse.stop()
