"""Choose gpiozero's pin factory from `HalConfig.pin_factory`.

`mock` is gpiozero's own MockFactory with PWM-capable pins: real gpiozero code over mock pins,
which is this HAL's simulated GPIO backend. The others drive a Raspberry Pi: `lgpio` (the only one
that works on a Pi 5), `rpigpio`, `pigpio` (needs the pigpiod daemon).
"""

from __future__ import annotations

import importlib

from gpiozero import Factory

# name -> (module, class, what to do when it cannot be used)
FACTORIES = {
    "mock": ("gpiozero.pins.mock", "MockFactory", ""),
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory",
              "install lgpio (pip install 'evnet[pi]') and give the user access to /dev/gpiochip*"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory", "install RPi.GPIO (not on a Pi 5: use lgpio)"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory", "install pigpio and start the pigpiod daemon"),
}


class GpioError(Exception):
    """The GPIO backend cannot be used (wrong machine, missing library, pin taken)."""


def make_pin_factory(name: str) -> Factory:
    """A new pin factory for `name` ("mock", "lgpio", "rpigpio", "pigpio"); `GpioError` if unusable here."""
    if name not in FACTORIES:
        raise GpioError(f"unknown pin factory {name!r}: expected one of {', '.join(FACTORIES)}")
    module_name, class_name, hint = FACTORIES[name]
    try:
        module = importlib.import_module(module_name)
        factory_class = getattr(module, class_name)
        if name == "mock":
            from gpiozero.pins.mock import MockPWMPin

            return factory_class(pin_class=MockPWMPin)
        return factory_class()
    except Exception as exc:  # ImportError, BadPinFactory, OSError from the GPIO chip, ...
        raise GpioError(f"pin factory {name!r} is not usable on this machine ({type(exc).__name__}: {exc}); "
                        f"{hint}; on a laptop use pin_factory = \"mock\"") from exc
