"""A relay on one GPIO line: the main contactor, or the safety line the monitor can cut.

Words used throughout: contacts CLOSED = energy can flow to the EV; contacts OPEN = no energy,
the safe state. A relay opens its contacts when built and when closed (`close()` releases the
GPIO line after opening). When the process dies the line floats: the wiring must hold the relay
open then (a pull resistor on the driver input), so that a crash is also safe.
"""

from __future__ import annotations

from collections.abc import Callable

from gpiozero import DigitalOutputDevice, Factory

from evnet.config.schema import PinConfig
from evnet.logs import event_logger


class Relay:
    """One relay. `close_contacts()` lets energy flow, `open_contacts()` stops it; `contacts_closed` reads it."""

    def __init__(self, name: str, pin: PinConfig, *, pin_factory: Factory | None = None,
                 cp: str | None = None) -> None:
        self.name = name
        self._log = event_logger("relay", cp=cp, relay=name)
        self._interlocks: list[tuple[str, Callable[[], bool]]] = []
        self._device = DigitalOutputDevice(pin.pin, active_high=pin.active_high, initial_value=False,
                                           pin_factory=pin_factory)
        self._log.info("relay.ready", pin=pin.pin, active_high=pin.active_high, contacts="open")

    @property
    def contacts_closed(self) -> bool:
        """True while energy can flow through this relay (read back from the GPIO line)."""
        return bool(self._device.value)

    def add_interlock(self, name: str, blocks: Callable[[], bool]) -> None:
        """While `blocks()` is true (e.g. the emergency stop is pressed), `close_contacts` refuses."""
        self._interlocks.append((name, blocks))

    def close_contacts(self) -> bool:
        """Let energy flow; False (contacts left open, logged) while an interlock blocks it."""
        blocking = [name for name, blocks in self._interlocks if blocks()]
        if blocking:
            self._log.warning("relay.close_refused", interlock=",".join(blocking))
            return False
        if not self.contacts_closed:
            self._device.on()
            self._log.info("relay.contacts", contacts="closed")
        return True

    def open_contacts(self) -> None:
        """Stop energy: the safe state. Safe to call from any thread, at any time, repeatedly."""
        if self._device.closed:
            return
        was_closed = self.contacts_closed
        self._device.off()  # always: never trust a read-back to skip the safe action
        if was_closed:
            self._log.info("relay.contacts", contacts="open")

    def close(self) -> None:
        """Open the contacts, then release the GPIO line."""
        if not self._device.closed:
            self._device.off()
            self._device.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
