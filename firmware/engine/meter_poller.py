"""The meter's own thread: Modbus reads block, so they never run on the control loop.

It reads every `poll_interval_s` of domain time, and at once when the engine asks
(`request(token)`, e.g. for a ticket right after the contactor opened); each result goes to
`deliver` as ("meter_reading", reading, token) or ("meter_failed", message, faulted).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from evnet.clock import Clock
from hal.meter import Meter, MeterError

POLL_FLOOR_S = 0.01  # never spin faster than this in real time, whatever the clock's speed


class MeterPoller:
    def __init__(self, meter: Meter, clock: Clock, poll_interval_s: float,
                 deliver: Callable[[tuple[Any, ...]], None]) -> None:
        self.meter = meter
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.deliver = deliver
        self._requests: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meter-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self, token: int) -> None:
        """Read now and answer with `token`."""
        self._requests.put(token)

    def stop(self) -> None:
        self._stop.set()
        self._requests.put(None)
        self._thread.join(timeout=5.0)

    def _real_interval(self) -> float:
        real = getattr(self.clock, "real_seconds", None)
        seconds = real(self.poll_interval_s) if real is not None else self.poll_interval_s
        return max(POLL_FLOOR_S, seconds)

    def _run(self) -> None:
        token: int | None = 0
        while not self._stop.is_set():
            try:
                reading = self.meter.read()
            except MeterError as exc:
                self.deliver(("meter_failed", str(exc), self.meter.faulted))
            except Exception as exc:  # a driver bug must look like a failing meter, not kill metering
                self.deliver(("meter_failed", f"meter driver error: {exc!r}", self.meter.faulted))
            else:
                self.deliver(("meter_reading", reading, token or 0))
            try:
                token = self._requests.get(timeout=self._real_interval())
            except queue.Empty:
                token = 0
            if token is None:
                return
