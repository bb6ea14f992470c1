"""What the installed charging profiles allow at a moment, when that next changes, and the composite schedule.

Pure functions of the profiles, the time and the running transaction: the store calls them, and so
may a test or a simulation. Three numbers come out (the charge point's maximum, the default cap of
new sessions, the running session's cap), each in amps; within one purpose the valid profile with
the highest stack level that has a period in force wins, as both versions of OCPP specify.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from firmware.ocpp.profiles import ChargingProfile, Period, Purpose, Unit, format_time

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
RECURRENCE_S = {"Daily": DAY_S, "Weekly": WEEK_S}
EPS = 1e-3                     # a boundary "at t" is passed at t: float sums of times are not exact
MAX_COMPOSITE_S = 31 * DAY_S   # a longer composite is cut here (its duration says so)
MAX_COMPOSITE_PERIODS = 1024   # 2.0.1's own bound on a schedule's periods


@dataclass(frozen=True)
class TxInfo:
    """The running transaction: its id (a string in both versions) and when it started (unix s)."""

    transaction_id: str
    start: float


@dataclass(frozen=True)
class Limits:
    """Amps in force now for each purpose, None where no profile of it is in force."""

    cp_max_a: float | None = None
    tx_default_a: float | None = None
    tx_a: float | None = None

    def session_cap_a(self) -> float | None:
        """What caps the running (or next) session: its TxProfile, else the default, else the maximum."""
        caps = [a for a in (self.tx_a if self.tx_a is not None else self.tx_default_a, self.cp_max_a)
                if a is not None]
        return min(caps) if caps else None


@dataclass(frozen=True)
class Composite:
    """The schedule in force from `start` (whole unix seconds) for `duration_s`, periods in `unit`."""

    start: float
    duration_s: int
    unit: Unit
    periods: tuple[Period, ...]


@dataclass(frozen=True)
class Electrical:
    """How watts become amps at this charge point: A = W / (V × phases)."""

    voltage_v: float
    phases: int

    def amps(self, limit: float, unit: Unit, phases: int | None) -> float:
        return limit if unit == "A" else limit / (self.voltage_v * (phases or self.phases))

    def watts(self, amps: float) -> float:
        return amps * self.voltage_v * self.phases


def applies(p: ChargingProfile, tx: TxInfo | None) -> bool:
    """A TxProfile applies to its own transaction only; the others always."""
    return p.purpose != "tx" or (tx is not None and p.transaction_id == tx.transaction_id)


def _cycle_start(p: ChargingProfile, at: float, tx: TxInfo | None) -> float | None:
    """Where the schedule (for a recurring one, the cycle holding `at`) began; None: it has no start.
    A recurring schedule repeats both ways from its `startSchedule` (a daily one set at 18:00 today holds at
    18:00 yesterday too); its validity bounds it."""
    match p.kind:
        case "Relative":
            return tx.start if tx is not None else None
        case "Recurring":
            assert p.start is not None and p.recurrency is not None
            every = RECURRENCE_S[p.recurrency]
            return p.start + math.floor((at - p.start + EPS) / every) * every
        case _:
            return p.start


def _end_s(p: ChargingProfile) -> float | None:
    """How long after its start the schedule lasts (a recurring one at most one cycle); None: for ever."""
    if p.recurrency is None:
        return p.duration_s
    every = RECURRENCE_S[p.recurrency]
    return every if p.duration_s is None else min(p.duration_s, every)


def limit_at(p: ChargingProfile, at: float, tx: TxInfo | None, el: Electrical) -> float | None:
    """The amps `p` allows at `at`, or None if it has no period in force then (the last period runs on
    until the schedule's duration ends, or for ever without one, as OCPP says)."""
    if not applies(p, tx):
        return None
    if (p.valid_from is not None and at + EPS < p.valid_from) or (p.valid_to is not None and at + EPS >= p.valid_to):
        return None
    base = _cycle_start(p, at, tx)
    if base is None or at + EPS < base:
        return None
    offset = at - base
    end = _end_s(p)
    if end is not None and offset + EPS >= end:
        return None
    current = p.periods[0]
    for period in p.periods:
        if period.start_s > offset + EPS:
            break
        current = period
    return el.amps(current.limit, p.unit, current.phases)


def _purpose_limit(profiles: list[ChargingProfile], at: float, tx: TxInfo | None, el: Electrical) -> float | None:
    for p in sorted(profiles, key=lambda p: -p.stack_level):
        amps = limit_at(p, at, tx, el)
        if amps is not None:
            return amps
    return None


def limits(profiles: Iterable[ChargingProfile], at: float, tx: TxInfo | None, el: Electrical) -> Limits:
    by: dict[Purpose, list[ChargingProfile]] = {"cp_max": [], "tx_default": [], "tx": []}
    for p in profiles:
        by[p.purpose].append(p)
    return Limits(cp_max_a=_purpose_limit(by["cp_max"], at, tx, el),
                  tx_default_a=_purpose_limit(by["tx_default"], at, tx, el),
                  tx_a=_purpose_limit(by["tx"], at, tx, el))


def _edges(p: ChargingProfile, at: float, tx: TxInfo | None) -> Iterable[float]:
    """Every moment near `at` where `p`'s limit may change: validity edges, period starts and the schedule's
    end in its run (for a recurring one, this cycle and the next)."""
    if not applies(p, tx):
        return
    yield from (t for t in (p.valid_from, p.valid_to) if t is not None)
    base = _cycle_start(p, at, tx)
    if base is None:
        return
    end = _end_s(p)
    bases = [base] if p.recurrency is None else [base, base + RECURRENCE_S[p.recurrency]]
    for b in bases:
        yield from (b + period.start_s for period in p.periods)
        if end is not None:
            yield b + end


def _within(p: ChargingProfile, t: float) -> bool:
    return (p.valid_from is None or t >= p.valid_from) and (p.valid_to is None or t <= p.valid_to)


def next_change(profiles: Iterable[ChargingProfile], at: float, tx: TxInfo | None) -> float | None:
    """The first moment after `at` at which `limits` may answer differently; None: never (as things stand)."""
    later = [t for p in profiles for t in _edges(p, at, tx) if t > at + EPS and _within(p, t)]
    return min(later, default=None)


def composite(profiles: list[ChargingProfile], at: float, duration_s: float, unit: Unit, tx: TxInfo | None,
              el: Electrical, max_current_a: float) -> Composite:
    """At each instant the least of the maximum, the session's cap (its TxProfile, else the default) and the
    charge point's own `max_current_a`; equal neighbours merged; limits rounded down to 0.1 (1.6's
    resolution). Periods start on whole seconds, so a change at a fraction of one shows from the next."""
    start = float(math.floor(at))
    span = int(min(max(duration_s, 0.0), MAX_COMPOSITE_S)) if math.isfinite(duration_s) else 0
    periods: list[Period] = []
    offset = 0
    while True:
        t = start + offset
        cap = limits(profiles, t, tx, el).session_cap_a()
        amps = max_current_a if cap is None else min(cap, max_current_a)
        value = _tenth_down(amps if unit == "A" else el.watts(amps))
        if not periods or periods[-1].limit != value:
            periods.append(Period(offset, value))
        nxt = next_change(profiles, t, tx)
        if nxt is None:
            break
        offset = max(offset + 1, math.ceil(nxt - start - EPS))
        if offset >= span:
            break
        if len(periods) >= MAX_COMPOSITE_PERIODS:
            span = offset
            break
    return Composite(start, span, unit, tuple(periods))


def _tenth_down(x: float) -> float:
    return math.floor(x * 10 + 1e-6) / 10


def to_v16(c: Composite) -> dict[str, object]:
    """The 1.6 `chargingSchedule` of a GetCompositeSchedule.conf (with `startSchedule`)."""
    return {"duration": c.duration_s, "startSchedule": format_time(c.start), "chargingRateUnit": c.unit,
            "chargingSchedulePeriod": [{"startPeriod": p.start_s, "limit": p.limit} for p in c.periods]}


def to_v201(c: Composite, evse_id: int) -> dict[str, object]:
    """The 2.0.1 `CompositeScheduleType` of a GetCompositeScheduleResponse."""
    return {"evseId": evse_id, "duration": c.duration_s, "scheduleStart": format_time(c.start),
            "chargingRateUnit": c.unit,
            "chargingSchedulePeriod": [{"startPeriod": p.start_s, "limit": p.limit} for p in c.periods]}
