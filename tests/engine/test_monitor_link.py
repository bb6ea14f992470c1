"""The engine's monitor-link thread never ends before it is stopped, whatever it meets."""

from __future__ import annotations

import queue
import time
from typing import Any

from firmware.engine.monitor_link import MonitorLink
from firmware.monitor.port import MonitorPort
from firmware.protocols.heartbeat import encode_heartbeat
from hal.serial_link import SerialLinkError


def test_a_failure_inside_the_link_thread_is_survived_and_the_link_reopened() -> None:
    port = MonitorPort("socket://127.0.0.1:0")
    got: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
    calls = {"n": 0}

    def deliver(event: tuple[Any, ...]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug on the way to the control loop")
        got.put(event)

    link = MonitorLink(port.engine_url, deliver, cp="cp1", retry_s=0.05)
    link.start()
    try:
        seq = iter(range(1, 1000))

        def heard() -> bool:
            monitor_end = port.link(0.05)
            if monitor_end is None:
                return False
            try:
                monitor_end.send(encode_heartbeat(next(seq)))
            except SerialLinkError as exc:  # the engine dropped the line it had: take its new one
                port.drop(str(exc))
                return False
            try:
                got.get(timeout=0.1)
            except queue.Empty:
                return False
            return True

        deadline = time.monotonic() + 10.0  # a safety net: it comes within retry_s
        while not heard():
            assert time.monotonic() < deadline, "no heartbeat delivered after the thread's failure"
        assert calls["n"] >= 2 and link._thread.is_alive()
    finally:
        link.stop()
        port.close()
