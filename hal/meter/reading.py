"""What any meter gives (`MeterReading`), how it fails (`MeterError`), and the `Meter` interface.

Code above the HAL sees only these names, whether the meter is a real SDM630 on RS-485
or the simulated one: the backend is chosen by configuration (`open_meter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One consistent read of the meter.

    Always three phases: a single-phase meter (SDM120) fills phase 1 and reports 0.0 for
    phases 2 and 3, so `sum(current_a)` and per-phase limits work the same for both models.
    `taken_at` is the injected clock's `time()` (domain wall time, like every `ts`) when the
    last register of the reading arrived.
    """

    voltage_v: tuple[float, float, float]
    current_a: tuple[float, float, float]
    power_w: float  # total active power; negative when exporting
    import_kwh: float  # the import energy register: what a ticket is computed from
    taken_at: float

    @property
    def power_kw(self) -> float:
        return self.power_w / 1000.0


class MeterError(Exception):
    """A read that gave no trustworthy values; the message says what and where.

    `kind` is one of: "timeout" (no byte came back), "exception" (a Modbus exception response),
    "connection" (could not connect / port gone), "garbage" (values no meter can give),
    "protocol" (bytes came back but no valid answer: garbled, short, another function's).
    `where` names model, transport, address and device id; `register` the first register
    concerned, when one is.
    """

    def __init__(self, kind: str, where: str, detail: str, register: int | None = None) -> None:
        self.kind = kind
        self.where = where
        self.detail = detail
        self.register = register
        at = f" register 0x{register:04X}" if register is not None else ""
        super().__init__(f"meter {kind}: {detail} ({where}{at})")


class Meter(Protocol):
    """The one interface of an energy meter."""

    def read(self) -> MeterReading:
        """Read the meter now, retrying; raises `MeterError` when every attempt failed."""

    def close(self) -> None:
        """Release the port (and stop a simulated meter this meter started)."""

    @property
    def faulted(self) -> bool:
        """True after `fail_after` failed attempts in a row, until a good read."""

    @property
    def last_reading(self) -> MeterReading | None:
        """The last good reading (a ticket closes on it when the meter dies)."""
