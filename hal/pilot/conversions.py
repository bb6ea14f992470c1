"""Pure control-pilot arithmetic (IEC 61851-1): current <-> PWM duty, voltage -> pilot state.

No I/O and no time: the real and simulated backends, the EV emulator and the engine's
pilot state machine all use these, so one table decides what a duty or a voltage means.

Duty cycles are percentages. What the EVSE may send:
    0       off: the pilot sits at -12 V (state F, "EVSE not available")
    5       high-level communication (ISO 15118) required
    10-85   6-51 A:  duty = A / 0.6
    85-96   51-80 A: duty = A / 2.5 + 64
    100     no PWM: a steady +12 V ("EVSE ready, no current offered")
What an EV makes of a duty follows IEC 61851-1 table A.8 (`current_for_duty`). The two formulas do
not meet at the knee: 51-52.5 A give 84.4-85 %, which an EV reads as slightly less (never more).
"""

from __future__ import annotations

import math
from enum import StrEnum

DUTY_OFF = 0.0
DUTY_HLC = 5.0
DUTY_STEADY = 100.0

MIN_CURRENT_A = 6.0
MAX_CURRENT_A = 80.0
_KNEE_A = 51.0  # where the duty formula changes slope


class PilotValueError(ValueError):
    """A current, duty or voltage outside what IEC 61851-1 allows."""


class PilotState(StrEnum):
    """The pilot states the EVSE reads, plus INVALID for a voltage outside every band (a pilot fault)."""

    A = "A"  # +12 V: no EV
    B = "B"  # +9 V: EV connected, not asking for energy
    C = "C"  # +6 V: EV asks for energy
    D = "D"  # +3 V: EV asks for energy, with ventilation
    E = "E"  # 0 V: pilot shorted to PE
    F = "F"  # -12 V: EVSE not available (the EVSE drives it)
    INVALID = "INVALID"  # between bands or beyond +-13 V: treat as a pilot fault


# Nominal levels and the tolerance the EVSE accepts around each (IEC 61851-1 table A.4 allows +-1 V).
NOMINAL_VOLTS = {PilotState.A: 12.0, PilotState.B: 9.0, PilotState.C: 6.0, PilotState.D: 3.0,
                 PilotState.E: 0.0, PilotState.F: -12.0}
TOLERANCE_V = 1.0

# States in which an EV is plugged in and may charge soon: the PWM's negative half must read -12 V.
EV_PRESENT = frozenset({PilotState.B, PilotState.C, PilotState.D})
ENERGY_REQUESTED = frozenset({PilotState.C, PilotState.D})


def _finite(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PilotValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def duty_for_current(amps: float) -> float:
    """The PWM duty (%) that offers `amps` to the EV; 6-80 A, else `PilotValueError`."""
    amps = _finite(amps, "pilot current")
    if not MIN_CURRENT_A <= amps <= MAX_CURRENT_A:
        raise PilotValueError(f"pilot current {amps} A is outside {MIN_CURRENT_A:g}-{MAX_CURRENT_A:g} A "
                              f"(use DUTY_OFF or DUTY_STEADY to offer nothing)")
    if amps <= _KNEE_A:
        return amps / 0.6
    return amps / 2.5 + 64.0


def current_for_duty(duty: float) -> float | None:
    """What an EV may draw for `duty` % (IEC 61851-1 table A.8): amps, 0.0 when charging is not
    allowed, or None when high-level communication is required (3-7 %).

    Raises `PilotValueError` for a duty outside 0-100 %.
    """
    duty = _finite(duty, "pilot duty")
    if not 0.0 <= duty <= 100.0:
        raise PilotValueError(f"pilot duty {duty} % is outside 0-100 %")
    if 3.0 <= duty <= 7.0:
        return None
    if 8.0 <= duty < 10.0:
        return MIN_CURRENT_A
    if 10.0 <= duty <= 85.0:
        return duty * 0.6
    if 85.0 < duty <= 96.0:
        return (duty - 64.0) * 2.5
    if 96.0 < duty <= 97.0:
        return MAX_CURRENT_A
    return 0.0  # < 3 %, 7-8 %, > 97 % (including 100 %: no PWM): no charging allowed


def check_duty(duty: float) -> float:
    """`duty` if an EVSE may send it (0, 5, 10-96 or 100 %), else `PilotValueError`."""
    duty = _finite(duty, "pilot duty")
    if duty in (DUTY_OFF, DUTY_HLC, DUTY_STEADY) or duty_for_current(MIN_CURRENT_A) <= duty <= \
            duty_for_current(MAX_CURRENT_A):
        return duty
    raise PilotValueError(f"pilot duty {duty} % is not one an EVSE may send (0, 5, 10-96 or 100 %)")


def state_for_voltage(volts: float) -> PilotState:
    """The pilot state for the voltage the EVSE measures on the pilot's positive level.

    Each state accepts its nominal level +-1 V; anything else (a gap between bands, beyond +-13 V)
    is `PilotState.INVALID`, which the engine treats as a pilot fault. NaN or a non-number raises.
    """
    volts = _finite(volts, "pilot voltage")
    for state, nominal in NOMINAL_VOLTS.items():
        if nominal - TOLERANCE_V <= volts <= nominal + TOLERANCE_V:
            return state
    return PilotState.INVALID
