"""Choose gpiozero's pin factory from `HalConfig.pin_factory`.

`mock` is gpiozero's own MockFactory with PWM-capable pins: real gpiozero code over mock pins,
which is this HAL's simulated GPIO backend. The others drive a Raspberry Pi: `lgpio` (the only one
that works on a Pi 5), `rpigpio`, `pigpio` (needs the pigpiod daemon).
"""

from __future__ import annotations

import glob
import importlib

from gpiozero import Factory
from gpiozero.exc import BadPinFactory, PinUnknownPi

# name -> (module, class, how to install its library)
FACTORIES = {
    "mock": ("gpiozero.pins.mock", "MockFactory", ""),
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory", "run ./bootstrap --pi (or pip install 'evnet[pi]')"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory", "install RPi.GPIO (not on a Pi 5: use lgpio)"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory", "install pigpio and start the pigpiod daemon"),
}
NOT_A_PI = "on a laptop use --mock, or pin_factory = \"mock\" in the configuration"


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
        raise GpioError(f"pin factory {name!r} cannot be used here: {diagnose(exc, hint)}") from exc


def diagnose(exc: Exception, install_hint: str) -> str:
    """Why a pin factory failed, and the one thing to do about it: each cause has its own remedy.

    No /dev/gpiochip* at all comes first: on a laptop, installing a GPIO library would not help.
    """
    chips = glob.glob("/dev/gpiochip*")
    if not chips or isinstance(exc, PinUnknownPi):
        return f"this machine is not a Raspberry Pi: it has no /dev/gpiochip* ({exc}); {NOT_A_PI}"
    if isinstance(exc, ImportError):
        return f"its library is missing ({exc}); {install_hint}"
    if isinstance(exc, PermissionError) or "permission" in str(exc).lower() or "gpiochip" in str(exc):
        return (f"this user may not open the GPIO chip ({exc}); add the user to the gpio group "
                "(sudo usermod -aG gpio $USER) and log in again")
    if isinstance(exc, BadPinFactory):
        return f"{exc}; {NOT_A_PI}"
    return f"{type(exc).__name__}: {exc}; {NOT_A_PI}"
