"""The control pilot as the EVSE sees it: one interface over a real and a simulated backend.

Like a gpiozero device over its pin factory, the engine holds a `ControlPilot` and does not know
whether a PWM pin and an ADC or a virtual cable is behind it. The safe state, on start and on
close, is "off" (duty 0: -12 V, no current offered).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from evnet.logs import EventLogger
from hal.pilot.conversions import DUTY_HLC, DUTY_OFF, DUTY_STEADY, check_duty, duty_for_current
from hal.pilot.physics import PilotReading

# A listener gets what changed: "pilot" (the EV's load or diode), "current" (what the EV draws),
# "message" (a high-level message arrived), "duty" (EV side: the EVSE's offer), "link" (the other end
# came or went), "fault" (the backend's own `fault_code` changed). It runs on the thread that saw the
# change and must not block.
Listener = Callable[[str], None]


class PilotError(Exception):
    """The pilot cannot do what was asked (e.g. high-level messages on a backend without a modem)."""


class Listeners:
    """Callbacks for "the other side changed"; a failing callback is logged and the others still run."""

    def __init__(self, log: EventLogger) -> None:
        self._log = log
        self._items: list[Listener] = []
        self._lock = threading.Lock()

    def add(self, callback: Listener) -> None:
        with self._lock:
            self._items.append(callback)

    def remove(self, callback: Listener) -> None:
        with self._lock:
            if callback in self._items:
                self._items.remove(callback)

    def __bool__(self) -> bool:
        return bool(self._items)

    def notify(self, what: str) -> None:
        with self._lock:
            items = list(self._items)
        for callback in items:
            try:
                callback(what)
            except Exception as exc:  # a broken listener must not break the pilot
                self._log.error("pilot.listener_failed", what=what, error=repr(exc))


class ControlPilot(ABC):
    """The EVSE end of the control pilot: set the offer (PWM duty), read the state A-F.

    `read()` polls; `on_change(callback)` reacts without polling (the 100 ms contactor rule).
    Backends implement `_output(duty)` and `read()`; the simulated one also carries the EV's
    current and high-level messages (`supports_messages`).

    A backend whose own machinery fails (its ADC stops answering, its cable's reader thread dies)
    says so with `fault_code` and a "fault" notification, and clears it when it works again: the
    engine faults the charge point meanwhile (contactor open), whatever the last reading said.
    """

    supports_messages = False

    def __init__(self, log: EventLogger) -> None:
        self._log = log
        self._duty = DUTY_OFF
        self._listeners = Listeners(log)
        self._fault_code: str | None = None

    @property
    def fault_code(self) -> str | None:
        """Why the backend cannot be trusted now (e.g. "pilot_read_fault", "cable_fault"), None while it works."""
        return self._fault_code

    def _set_fault(self, code: str | None, **fields: object) -> None:
        """Raise (`code`) or clear (None) the backend's fault; listeners hear "fault" when it changes."""
        if code == self._fault_code:
            return
        previous, self._fault_code = self._fault_code, code
        if code is None:
            self._log.info("pilot.hal_recovered", fault=previous, **fields)
        else:
            self._log.error("pilot.hal_fault", fault=code, **fields)
        self._listeners.notify("fault")

    @property
    def duty(self) -> float:
        """The duty (%) the EVSE is sending now: 0 off, 5 high-level communication, 100 steady +12 V."""
        return self._duty

    def set_current(self, amps: float) -> float:
        """Offer `amps` (6-80 A) by PWM; returns the duty sent. Out of range raises `PilotValueError`."""
        return self.set_duty(duty_for_current(amps))

    def set_duty(self, duty: float) -> float:
        """Send `duty` % (0, 5, 10-96 or 100); anything else raises `PilotValueError` and changes nothing."""
        duty = check_duty(duty)
        if duty != self._duty:
            self._output(duty)
            self._log.info("pilot.duty", duty=round(duty, 2))
        self._duty = duty
        return duty

    def set_hlc(self) -> None:
        """5 % duty: the EV must talk ISO 15118 before it draws anything."""
        self.set_duty(DUTY_HLC)

    def set_steady(self) -> None:
        """+12 V without PWM: ready, but no current offered."""
        self.set_duty(DUTY_STEADY)

    def set_off(self) -> None:
        """-12 V (duty 0): state F, the EVSE is not available. The safe state."""
        self.set_duty(DUTY_OFF)

    def send(self, message: dict[str, Any]) -> bool:
        """Send an ISO 15118 message to the EV (backends with `supports_messages`); True if it went."""
        raise PilotError(f"{type(self).__name__} carries no high-level messages (no ISO 15118 link): "
                         "the engine offers PWM only")

    def poll(self) -> dict[str, Any] | None:
        """The next ISO 15118 message from the EV, or None (always None on a backend without messages)."""
        return None

    @property
    def ev_current_a(self) -> float:
        """What the EV draws (A per phase): only a simulated cable knows it; the real one has a meter."""
        raise PilotError(f"{type(self).__name__} cannot know the EV's current: read the meter")

    def on_change(self, callback: Listener) -> None:
        """Call `callback(what)` whenever the other side changes; see `Listener`."""
        self._listeners.add(callback)

    def remove_listener(self, callback: Listener) -> None:
        self._listeners.remove(callback)

    @abstractmethod
    def _output(self, duty: float) -> None:
        """Drive the pilot with `duty` % (already checked)."""

    @abstractmethod
    def read(self) -> PilotReading:
        """Measure the pilot now."""

    def close(self) -> None:
        """Go to the safe state (off) and release the hardware."""
        try:
            self.set_off()
        finally:
            self._release()

    @abstractmethod
    def _release(self) -> None:
        """Release what the backend holds (pins, sockets)."""

    def __enter__(self) -> ControlPilot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
