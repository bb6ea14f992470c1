"""All the GPIO devices of one charge point, built from the configuration's pin map.

The engine's process owns the contactor, the LED and the buttons; the monitor's process owns the
safety-line relay (`safety=True` on its side, or `Relay("safety", ...)` directly): two processes
cannot share a GPIO line.
"""

from __future__ import annotations

from gpiozero import Factory

from evnet.config.schema import HalConfig
from hal.gpio.buttons import EmergencyStop, PushButton
from hal.gpio.factory import make_pin_factory
from hal.gpio.relay import Relay
from hal.gpio.status_led import StatusLed


class GpioBoard:
    """`contactor`, `safety` (or None), `led`, `start_button`, `estop` (which opens the contactor itself).

    `close()` opens every relay first, then releases the lines; a failure while building releases
    what was already built. `pin_factory` is the factory in use: pass it to `open_pilot` so the real
    pilot shares it.
    """

    def __init__(self, hal: HalConfig, *, pin_factory: Factory | None = None, safety: bool = False,
                 engine: bool = True, led_time_scale: float = 1.0, cp: str | None = None) -> None:
        self.pin_factory = pin_factory if pin_factory is not None else make_pin_factory(hal.pin_factory)
        pins, f = hal.pins, self.pin_factory
        self.contactor: Relay | None = None
        self.safety: Relay | None = None
        self.led: StatusLed | None = None
        self.start_button: PushButton | None = None
        self.estop: EmergencyStop | None = None
        try:
            if engine:
                self.contactor = Relay("contactor", pins.contactor, pin_factory=f, cp=cp)
            if safety:
                self.safety = Relay("safety", pins.safety, pin_factory=f, cp=cp)
            if engine:
                self.estop = EmergencyStop(pins.button_estop, [self.contactor], pin_factory=f, cp=cp)
                self.start_button = PushButton("start", pins.button_start, pin_factory=f, cp=cp)
                self.led = StatusLed(pins.led_red, pins.led_green, pins.led_blue, pin_factory=f,
                                     time_scale=led_time_scale, cp=cp)
        except BaseException:
            self.close()
            raise

    def open_all(self) -> None:
        """Open every relay this board holds: the safe state."""
        for relay in (self.contactor, self.safety):
            if relay is not None:
                relay.open_contacts()

    def close(self) -> None:
        self.open_all()
        for device in (self.contactor, self.safety, self.estop, self.start_button, self.led):
            if device is not None:
                device.close()

    def __enter__(self) -> GpioBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
