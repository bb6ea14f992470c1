"""`open_pilot`: the configured pilot backend, as a `ControlPilot`."""

from __future__ import annotations

from gpiozero import Factory

from evnet.config.schema import HalConfig
from hal.pilot.base import ControlPilot
from hal.pilot.cable import VirtualCable
from hal.pilot.cable_tcp import TcpEvseEnd


def open_pilot(hal: HalConfig, *, pin_factory: Factory | None = None, cable: VirtualCable | None = None,
               cp: str | None = None) -> ControlPilot:
    """The pilot of `[hal.pilot]`:

    - `backend = "real"`: `GpioPilot` on `hal.pins.pilot_pwm` and the MCP3008 (pin factory from
      `hal.pin_factory` unless `pin_factory` is given);
    - `backend = "simulated"`, `cable = "inproc"`: the EVSE end of `cable` (a new `VirtualCable` if
      None; the EV emulator in this process takes `cable.ev`);
    - `backend = "simulated"`, `cable = "tcp://HOST:PORT"`: a `TcpEvseEnd` listening there for `evnet ev`.
    """
    config = hal.pilot
    if config.backend == "real":
        from hal.gpio.factory import make_pin_factory
        from hal.pilot.real import GpioPilot

        factory = pin_factory if pin_factory is not None else make_pin_factory(hal.pin_factory)
        return GpioPilot(hal.pins.pilot_pwm, config, pin_factory=factory, cp=cp)
    if config.cable == "inproc":
        return (cable if cable is not None else VirtualCable(cp=cp)).evse
    return TcpEvseEnd(config.cable, cp=cp)
