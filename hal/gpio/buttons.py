"""The push buttons at the charge point: manual start, and emergency stop.

Buttons are wired to ground with the Pi's pull-up by default (`active_high = false` in the pin map:
pressed reads low). Callbacks run on gpiozero's thread (on a Pi, a background thread; on mock pins,
the thread that drives the pin) and must not block.

`EmergencyStop` opens the relays it was given *inside* the GPIO callback, before anything else runs:
the contactor opens within the callback's latency, whatever the engine's loop is doing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from gpiozero import Button, Factory

from evnet.config.schema import PinConfig
from evnet.logs import event_logger
from hal.gpio.relay import Relay

Callback = Callable[[], None]


class PushButton:
    """One button; `on_press` / `on_release` register callbacks; `is_pressed` reads it."""

    def __init__(self, name: str, pin: PinConfig, *, pin_factory: Factory | None = None,
                 bounce_s: float | None = 0.02, cp: str | None = None) -> None:
        self.name = name
        self._log = event_logger("button", cp=cp, button=name)
        self._pressed: list[Callback] = []
        self._released: list[Callback] = []
        self._lock = threading.Lock()
        self._device = Button(pin.pin, pull_up=not pin.active_high, bounce_time=bounce_s, pin_factory=pin_factory)
        self._device.when_pressed = self._on_pressed
        self._device.when_released = self._on_released

    @property
    def is_pressed(self) -> bool:
        return bool(self._device.is_pressed)

    def on_press(self, callback: Callback) -> None:
        with self._lock:
            self._pressed.append(callback)

    def on_release(self, callback: Callback) -> None:
        with self._lock:
            self._released.append(callback)

    def _run(self, callbacks: list[Callback], event: str) -> None:
        with self._lock:
            items = list(callbacks)
        for callback in items:
            try:
                callback()
            except Exception as exc:  # one broken callback must not silence the others
                self._log.error("button.callback_failed", on=event, error=repr(exc))

    def _on_pressed(self) -> None:
        self._log.info("button.pressed")
        self._run(self._pressed, "pressed")

    def _on_released(self) -> None:
        self._log.info("button.released")
        self._run(self._released, "released")

    def close(self) -> None:
        if not self._device.closed:
            self._device.close()

    def __enter__(self) -> PushButton:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EmergencyStop(PushButton):
    """The emergency stop: opens `cuts` (the contactor) first, on the GPIO thread, then tells the listeners.

    While it is pressed those relays refuse to close (an interlock), whatever the engine asks.
    Also safe on start: if the button is already pressed when built, the relays are opened at once.
    """

    def __init__(self, pin: PinConfig, cuts: Iterable[Relay] = (), *, pin_factory: Factory | None = None,
                 bounce_s: float | None = 0.02, cp: str | None = None) -> None:
        self._cuts = list(cuts)
        super().__init__("estop", pin, pin_factory=pin_factory, bounce_s=bounce_s, cp=cp)
        for relay in self._cuts:
            relay.add_interlock("estop", lambda: self.is_pressed)
        if self.is_pressed:
            self._cut()

    def _cut(self) -> None:
        for relay in self._cuts:
            try:
                relay.open_contacts()
            except Exception as exc:  # keep opening the others
                self._log.error("estop.open_failed", relay=relay.name, error=repr(exc))

    def _on_pressed(self) -> None:
        self._cut()
        self._log.warning("estop.pressed", opened=",".join(r.name for r in self._cuts))
        self._run(self._pressed, "pressed")
