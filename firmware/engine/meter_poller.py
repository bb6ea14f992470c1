"""The meter's own thread: Modbus reads block, so they never run on the control loop.

It reads every `poll_interval_s` of domain time, and at once when the engine asks
(`request(token)`, e.g. for a ticket right after the contactor opened); each result goes to
`deliver` as ("meter_reading", reading, token) or ("meter_failed", message, faulted).

A failed read is followed by the next one at once (after `POLL_FLOOR_S`), not after the poll
interval, until the meter reads again or calls itself faulted: so a meter that dies is declared
faulted within the driver's `fail_after` attempts (see `hal.meter.driver`), and the engine opens
the contactor on that delivery. A faulted meter is then tried at the normal interval. Nothing the
thread meets ends it: a failure outside the driver is delivered as a failed read too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from evnet.clock import Clock
from evnet.logs import FoldedLog, event_logger
from hal.meter import Meter, MeterError

POLL_FLOOR_S = 0.01  # never spin faster than this in real time, whatever the clock's speed


class MeterPoller:
    def __init__(self, meter: Meter, clock: Clock, poll_interval_s: float,
                 deliver: Callable[[tuple[Any, ...]], None], *, cp: str | None = None) -> None:
        self.meter = meter
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.deliver = deliver
        self._fold = FoldedLog(event_logger("meter_poller", cp=cp))
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
        return max(POLL_FLOOR_S, self.clock.real_seconds(self.poll_interval_s))

    def _run(self) -> None:
        token: int | None = 0
        while not self._stop.is_set():
            good = self._read(token or 0)
            wait = self._real_interval() if good or self.meter.faulted else POLL_FLOOR_S
            try:
                token = self._requests.get(timeout=wait)
            except queue.Empty:
                token = 0
            if token is None:
                return

    def _read(self, token: int) -> bool:
        """One read, its result delivered; True if it was good."""
        try:
            try:
                reading = self.meter.read()
            except MeterError as exc:
                self.deliver(("meter_failed", str(exc), self.meter.faulted))
                return False
            except Exception as exc:  # a driver bug must look like a dead meter, not end metering
                self._fold.error("meter_poller.driver_failed", error=repr(exc))
                self.deliver(("meter_failed", f"meter driver error: {exc!r}", True))
                return False
            self.deliver(("meter_reading", reading, token))
            return True
        except Exception as exc:  # delivery itself failed: say so, and keep polling
            self._fold.error("meter_poller.delivery_failed", error=repr(exc))
            return False
