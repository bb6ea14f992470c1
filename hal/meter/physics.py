"""The electrical side of the simulated meter: current drawn, power, and energy over time.

Sans-I/O: time comes in as an argument. The load is sampled at each `advance` and held
until the next one (a left Riemann sum), the way a real meter integrates its samples: the
energy of an interval is the power that was flowing during it, not the power seen at its end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Load = float | Sequence[float]  # amps per phase: one number for every phase the meter has, or (L1, L2, L3)


def phase_currents(load: Load, phases: int) -> tuple[float, float, float]:
    """(L1, L2, L3) amps from a load; a single-phase meter only sees L1."""
    if isinstance(load, (int, float)):
        amps = (float(load),) * 3
    else:
        amps = tuple(float(a) for a in load)
        if len(amps) != 3:
            raise ValueError(f"a load is one current or three (L1, L2, L3), got {load!r}")
    for a in amps:
        if not (a >= 0.0 and math.isfinite(a)):
            raise ValueError(f"a load current must be a finite number >= 0 A, got {load!r}")
    if phases == 1:
        return (amps[0], 0.0, 0.0)
    return amps  # type: ignore[return-value]


class EnergyIntegrator:
    """Import energy of a meter whose voltage is fixed and whose current follows a load."""

    def __init__(self, phases: int, voltage_v: float, now: float, import_kwh: float = 0.0) -> None:
        self.phases = phases
        self.voltage_v = tuple(voltage_v if i < phases else 0.0 for i in range(3))
        self.current_a: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.power_w = 0.0
        self.import_kwh = float(import_kwh)
        self._t = now

    def advance(self, now: float, load: Load) -> None:
        """Add the energy of [last advance, now] at the held power, then hold `load` from now on."""
        currents = phase_currents(load, self.phases)  # validate before changing anything
        if now > self._t:
            self.import_kwh += self.power_w * (now - self._t) / 3_600_000.0
            self._t = now
        self.current_a = currents
        self.power_w = sum(v * a for v, a in zip(self.voltage_v, currents, strict=True))
