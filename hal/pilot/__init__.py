"""The control pilot (IEC 61851-1): the EVSE's offer by PWM duty, the EV's state A-F by voltage.

One interface, `ControlPilot` (`set_current(A)`, `set_hlc()`, `set_steady()`, `set_off()`,
`read() -> PilotReading`, `on_change(callback)`, `close()`), and two backends:
- simulated: the EVSE end of a virtual cable to an EV emulator, which also carries the EV's current
  (`ev_current_a`) and ISO 15118-style messages (`send`, `recv`, `poll`). `VirtualCable()` joins
  both ends in one process (`cable.evse`, `cable.ev`); `TcpEvseEnd(url)` / `TcpEvEnd(url)` join them
  between processes over `tcp://HOST:PORT`.
- real: `GpioPilot`, a gpiozero `PWMOutputDevice` at 1 kHz and an `MCP3008` ADC.
`open_pilot(hal_config, ...)` picks one from the configuration. The pure arithmetic is in
`conversions` (current <-> duty, voltage -> state) and `physics` (the circuit's levels).
"""

from hal.pilot.base import ControlPilot, Listener, PilotError
from hal.pilot.cable import EvEnd, EvseEnd, VirtualCable
from hal.pilot.cable_tcp import CableError, TcpEvEnd, TcpEvseEnd
from hal.pilot.conversions import (
    DUTY_HLC,
    DUTY_OFF,
    DUTY_STEADY,
    ENERGY_REQUESTED,
    EV_PRESENT,
    PilotState,
    PilotValueError,
    current_for_duty,
    duty_for_current,
    state_for_voltage,
)
from hal.pilot.factory import open_pilot
from hal.pilot.physics import EvLoad, PilotReading, reading_for
from hal.pilot.real import GpioPilot

__all__ = [
    "DUTY_HLC", "DUTY_OFF", "DUTY_STEADY", "ENERGY_REQUESTED", "EV_PRESENT", "CableError", "ControlPilot",
    "EvEnd", "EvLoad", "EvseEnd", "GpioPilot", "Listener", "PilotError", "PilotReading", "PilotState",
    "PilotValueError", "TcpEvEnd", "TcpEvseEnd", "VirtualCable", "current_for_duty", "duty_for_current",
    "open_pilot", "reading_for", "state_for_voltage",
]
