"""Metering of a session and its ticket: kWh from the meter's import register, € at the point's price.

A session reads the import kWh at its start and at its end; the ticket is the difference and
its cost. While charging, the live figures (kW, kWh, €) follow every good reading. If the
meter dies mid-session the ticket closes on the last good reading: energy that no reading saw
is not billed (the contactor opens at once on a meter fault, so little can slip by).
Sans-I/O: readings come in as values (anything with `import_kwh`, `power_w`, `current_a`,
`taken_at`, like `hal.meter.MeterReading`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol


class Reading(Protocol):
    @property
    def import_kwh(self) -> float: ...
    @property
    def power_w(self) -> float: ...
    @property
    def current_a(self) -> tuple[float, float, float]: ...
    @property
    def taken_at(self) -> float: ...


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"


@dataclass(frozen=True)
class Ticket:
    """What a finished session cost. Times are the meter readings' `taken_at` (domain wall time)."""

    cp: str
    session_id: str
    driver: str
    start_ts: float
    end_ts: float
    start_kwh: float
    end_kwh: float
    price_eur_kwh: float
    reason: str

    @property
    def kwh(self) -> float:
        return round(self.end_kwh - self.start_kwh, 4)

    @property
    def cost_eur(self) -> float:
        return round(self.kwh * self.price_eur_kwh, 2)

    @property
    def duration_s(self) -> float:
        return self.end_ts - self.start_ts

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kwh": self.kwh, "cost_eur": self.cost_eur, "duration_s": round(self.duration_s, 3)}

    def line(self) -> str:
        """One line a person can read at the point."""
        return (f"Ticket {self.session_id} at {self.cp} for {self.driver}: {self.kwh:.3f} kWh x "
                f"{self.price_eur_kwh:.2f} EUR/kWh = {self.cost_eur:.2f} EUR, {_duration(self.duration_s)} "
                f"({self.reason})")


@dataclass(frozen=True)
class Live:
    """The running figures of a session: what Central and the driver's app show."""

    power_kw: float
    energy_kwh: float
    cost_eur: float
    current_a: float


class SessionMeter:
    """Follows one session at a time: `start`, `update` for every good reading, `close` -> Ticket."""

    def __init__(self, cp: str, price_eur_kwh: float) -> None:
        self.cp = cp
        self.price_eur_kwh = price_eur_kwh
        self.session_id: str | None = None
        self.driver = ""
        self.first: Reading | None = None
        self.last: Reading | None = None
        self.refused = 0  # readings that went backwards

    @property
    def active(self) -> bool:
        return self.session_id is not None

    def start(self, session_id: str, driver: str, reading: Reading) -> None:
        """Open a session on `reading` (taken before any energy of this session flowed)."""
        if self.active:
            raise RuntimeError(f"session {self.session_id} is still open; close it before starting {session_id}")
        self.session_id, self.driver, self.first, self.last = session_id, driver, reading, reading

    def update(self, reading: Reading) -> Live | None:
        """Take a good reading; None (and nothing changes) with no session or a register that went back."""
        if not self.active or self.last is None:
            return None
        if reading.import_kwh < self.last.import_kwh:
            self.refused += 1
            return None
        self.last = reading
        return self.live

    @property
    def live(self) -> Live | None:
        if self.first is None or self.last is None:
            return None
        kwh = max(0.0, self.last.import_kwh - self.first.import_kwh)
        return Live(power_kw=round(self.last.power_w / 1000.0, 3), energy_kwh=round(kwh, 4),
                    cost_eur=round(kwh * self.price_eur_kwh, 2), current_a=max(self.last.current_a))

    def close(self, reason: str, reading: Reading | None = None) -> Ticket:
        """End the session on `reading`, or on the last good one (the meter died)."""
        if not self.active or self.first is None or self.last is None:
            raise RuntimeError("no session to close")
        if reading is not None:
            self.update(reading)
        ticket = Ticket(cp=self.cp, session_id=self.session_id or "", driver=self.driver,
                        start_ts=self.first.taken_at, end_ts=self.last.taken_at, start_kwh=self.first.import_kwh,
                        end_kwh=self.last.import_kwh, price_eur_kwh=self.price_eur_kwh, reason=reason)
        self.session_id, self.first, self.last, self.driver = None, None, None, ""
        return ticket
