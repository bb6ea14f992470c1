"""The RGB status LED: the charge point's status (docs/architecture.md's table) as a colour a driver can see.

| status         | look                                                  |
|----------------|-------------------------------------------------------|
| AVAILABLE      | green, steady                                         |
| RESERVED       | green, slow blink (1 s on, 1 s off): "green, outlined"|
| CHARGING       | green, breathing (fades in and out over 3 s)          |
| OUT_OF_ORDER   | orange, steady                                        |
| FAULTED        | red, fast blink (0.25 s on, 0.25 s off)               |
| DISCONNECTED   | dim white, steady (the table's grey)                  |

Blinking and breathing run on gpiozero's background thread; `time_scale` shortens them (tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gpiozero import RGBLED, Factory

from evnet.config.schema import PinConfig
from evnet.logs import event_logger

Color = tuple[float, float, float]

GREEN: Color = (0.0, 1.0, 0.0)
ORANGE: Color = (1.0, 0.4, 0.0)
RED: Color = (1.0, 0.0, 0.0)
DIM_WHITE: Color = (0.15, 0.15, 0.15)
OFF: Color = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class LedLook:
    """A colour and how it is shown: steady, blinking (`on_s`/`off_s`) or breathing (`fade_s` each way)."""

    color: Color
    effect: Literal["steady", "blink", "pulse"] = "steady"
    on_s: float = 0.0
    off_s: float = 0.0
    fade_s: float = 0.0


LOOKS: dict[str, LedLook] = {
    "AVAILABLE": LedLook(GREEN),
    "RESERVED": LedLook(GREEN, "blink", on_s=1.0, off_s=1.0),
    "CHARGING": LedLook(GREEN, "pulse", fade_s=1.5),
    "OUT_OF_ORDER": LedLook(ORANGE),
    "FAULTED": LedLook(RED, "blink", on_s=0.25, off_s=0.25),
    "DISCONNECTED": LedLook(DIM_WHITE),
}


class StatusLed:
    """`show(status)` puts the status's look on the LED; `off()` darkens it; `status` reads it back."""

    def __init__(self, red: PinConfig, green: PinConfig, blue: PinConfig, *, pin_factory: Factory | None = None,
                 time_scale: float = 1.0, cp: str | None = None) -> None:
        if len({red.active_high, green.active_high, blue.active_high}) != 1:
            raise ValueError("the LED's red, green and blue pins must share one polarity (common anode or cathode)")
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}")
        self._led = RGBLED(red.pin, green.pin, blue.pin, active_high=red.active_high, initial_value=OFF,
                           pwm=True, pin_factory=pin_factory)
        self._scale = time_scale
        self._log = event_logger("led", cp=cp)
        self._status: str | None = None

    @property
    def status(self) -> str | None:
        """The status shown, or None when off."""
        return self._status

    @property
    def color(self) -> Color:
        """The colour lit at this instant (it changes while blinking or breathing)."""
        return tuple(self._led.value)  # type: ignore[return-value]

    def show(self, status: str) -> LedLook:
        """Show `status` (a key of `LOOKS`); an unknown status raises `ValueError` and changes nothing."""
        look = LOOKS.get(status)
        if look is None:
            raise ValueError(f"no LED look for status {status!r}: expected one of {', '.join(LOOKS)}")
        if status == self._status:
            return look
        s = self._scale
        if look.effect == "blink":
            self._led.blink(on_time=look.on_s * s, off_time=look.off_s * s, on_color=look.color, off_color=OFF)
        elif look.effect == "pulse":
            self._led.pulse(fade_in_time=look.fade_s * s, fade_out_time=look.fade_s * s, on_color=look.color,
                            off_color=OFF)
        else:
            self._led.color = look.color
        self._status = status
        self._log.info("led.status", status=status, color=look.color, effect=look.effect)
        return look

    def off(self) -> None:
        self._led.off()
        self._status = None

    def close(self) -> None:
        if not self._led.closed:
            self._led.off()
            self._led.close()

    def __enter__(self) -> StatusLed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
