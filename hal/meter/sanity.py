"""Which values no working meter gives: garbage is a `MeterError`, never a reading.

Pure functions over decoded values, so every rule is tested without a server.
"""

from __future__ import annotations

import math

MAX_VOLTAGE_V = 500.0  # L-N; an SDM630 is rated 100-289 V, anything above 500 V is not a measurement
MAX_CURRENT_A = 1000.0  # far above the 100 A of a direct-connected SDM630
MAX_POWER_W = 3 * MAX_VOLTAGE_V * MAX_CURRENT_A


def find_garbage(voltage: tuple[float, ...] | list[float], current: tuple[float, ...] | list[float],
                 power_w: float, import_kwh: float, last_kwh: float | None) -> tuple[str, int] | None:
    """The first implausible value as (what is wrong, index into V..., I..., P, kWh), or None.

    The index is the value's position in `RegisterMap.reading_registers()`, so the caller
    can name the register.
    """
    n = len(voltage)
    for i, v in enumerate(voltage):
        if not 0.0 <= v <= MAX_VOLTAGE_V:  # also catches NaN, which compares false
            return f"impossible voltage {v!r} V on L{i + 1} (expected 0 to {MAX_VOLTAGE_V:g} V)", i
    for i, a in enumerate(current):
        if not -MAX_CURRENT_A <= a <= MAX_CURRENT_A:
            return f"impossible current {a!r} A on L{i + 1} (expected at most {MAX_CURRENT_A:g} A)", n + i
    if not -MAX_POWER_W <= power_w <= MAX_POWER_W:
        return f"impossible power {power_w!r} W", 2 * n
    if math.isnan(import_kwh) or math.isinf(import_kwh):
        return f"import energy is {import_kwh!r}", 2 * n + 1
    if import_kwh < 0.0:
        return f"negative import energy {import_kwh!r} kWh", 2 * n + 1
    if last_kwh is not None and import_kwh < last_kwh:
        return f"import energy went backwards ({last_kwh!r} -> {import_kwh!r} kWh)", 2 * n + 1
    return None
