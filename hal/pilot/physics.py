"""The pilot circuit as arithmetic: what voltages the EVSE sees for a duty and an EV's load.

Used by the virtual cable (the simulated backend) and by the mock ADC of the real backend,
so that both show the EVSE the levels a real cable would. Pure: no I/O, no time.

The EVSE drives +-12 V through 1 kOhm; the EV loads the pilot with a diode and a resistor to
PE (2.74 kOhm in state B; 882 Ohm in C; 246 Ohm in D). With the diode's 0.7 V drop that gives
the nominal 9 / 6 / 3 V. The diode blocks the negative half, which stays at -12 V; an EV whose
diode is missing or shorted loads the negative half too, which the EVSE reads as a diode fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hal.pilot.conversions import DUTY_OFF, DUTY_STEADY, EV_PRESENT, PilotState, state_for_voltage

SOURCE_V = 12.0
SOURCE_OHMS = 1000.0
DIODE_DROP_V = 0.7
DIODE_FAULT_ABOVE_V = -11.0  # a negative half above this means the EV's diode is missing


class EvLoad(StrEnum):
    """What the EV side of the cable puts on the pilot."""

    NOT_CONNECTED = "not_connected"  # no EV: the pilot is open
    B = "B"  # 2.74 kOhm: connected, not charging
    C = "C"  # 882 Ohm: charging
    D = "D"  # 246 Ohm: charging, ventilation needed
    SHORT = "short"  # pilot shorted to PE: state E


LOAD_OHMS = {EvLoad.B: 2740.0, EvLoad.C: 882.0, EvLoad.D: 246.0}


def _loaded(volts: float, load: EvLoad, diode: bool) -> float:
    """The pilot voltage when the EVSE drives `volts` (+12 or -12) into `load`."""
    if load is EvLoad.NOT_CONNECTED:
        return volts
    if load is EvLoad.SHORT:
        return 0.0
    ohms = LOAD_OHMS[load]
    if volts > 0:
        drop = DIODE_DROP_V if diode else 0.0
        return (volts - drop) * ohms / (ohms + SOURCE_OHMS) + drop
    if diode:
        return volts  # the diode blocks: no current, no drop
    return volts * ohms / (ohms + SOURCE_OHMS)


@dataclass(frozen=True)
class PilotReading:
    """What the EVSE measured: the state, both levels, and whether the EV's diode looks broken.

    `low_v` is None when the EVSE drives no PWM (steady +12 V or off), since there is no negative
    half to look at then.
    """

    state: PilotState
    high_v: float
    low_v: float | None = None
    diode_fault: bool = False

    @property
    def fault(self) -> bool:
        """True for anything the engine must treat as a pilot fault (E, F read with PWM on, INVALID, diode)."""
        return self.diode_fault or self.state in (PilotState.E, PilotState.INVALID)


def classify(high_v: float, low_v: float | None) -> PilotReading:
    """A `PilotReading` from the measured positive and negative levels."""
    state = state_for_voltage(high_v)
    diode_fault = low_v is not None and state in EV_PRESENT and low_v > DIODE_FAULT_ABOVE_V
    return PilotReading(state, high_v, low_v, diode_fault)


def pilot_levels(duty: float, load: EvLoad, diode: bool = True) -> tuple[float, float | None]:
    """(positive level, negative level or None) on the pilot for the EVSE's `duty` % and the EV's load."""
    if duty == DUTY_OFF:
        low = _loaded(-SOURCE_V, load, diode)
        return low, None
    high = _loaded(SOURCE_V, load, diode)
    if duty == DUTY_STEADY:
        return high, None
    return high, _loaded(-SOURCE_V, load, diode)


def reading_for(duty: float, load: EvLoad, diode: bool = True) -> PilotReading:
    """What the EVSE reads for `duty` and the EV's `load`: the simulated backend's measurement."""
    return classify(*pilot_levels(duty, load, diode))
