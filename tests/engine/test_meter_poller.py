"""The meter poller: a dying meter is read back to back until it is declared faulted, and a meter that
stays unreachable does not flood the log."""

from __future__ import annotations

import logging
import queue
import socket
import time
from typing import Any

from evnet.clock import RealClock
from firmware.engine.meter_poller import MeterPoller
from hal.meter import ModbusMeter


def unreachable_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # closed at once: nothing listens there


def test_a_dead_meter_is_faulted_in_back_to_back_reads_and_logged_without_a_flood(caplog) -> None:
    caplog.set_level(logging.INFO, logger="evnet")
    meter = ModbusMeter("SDM630", transport="tcp", address=unreachable_address(), clock=RealClock(),
                        timeout_s=0.2, retries=0, fail_after=3, cp_id="cp1")
    events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
    poller = MeterPoller(meter, RealClock(), poll_interval_s=2.0, deliver=events.put, cp="cp1")
    started = time.monotonic()
    poller.start()
    try:
        failed = [events.get(timeout=10) for _ in range(3)]
        faulted_after = time.monotonic() - started
        assert [e[0] for e in failed] == ["meter_failed"] * 3
        assert [e[2] for e in failed] == [False, False, True]
        assert faulted_after < 1.5  # not 2 x the 2 s poll interval: the reads after a failure come at once
        assert events.get(timeout=10)[0] == "meter_failed"  # a faulted meter is tried at the poll interval ...
    finally:
        poller.stop()
        meter.close()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("evnet")]
    assert sum("event=meter.read_failed" in line for line in lines) == 1, lines  # ... without a line each time
    assert sum("event=meter.faulted" in line for line in lines) == 1
