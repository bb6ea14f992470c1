"""The demo's verdicts, pure: from what was seen from outside (meter samples, tickets, the failovers
timed), whether every check of the reference scenario held.

- the fuse: the sum of the meters' currents never above the site limit, at any sample;
- every ticket matches its meter: per charge point, the tickets' kWh add up to what its meter counted;
- every session the drivers started ended in exactly one ticket, and none is still open;
- every failover (a killed leader) was followed by a committed site command within `FAILOVER_MAX_S`;
- no charging EV's current broke while it was meant to charge, except at a charge point the chaos hit;
- a hung engine was caught by its monitor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from central_broker.demo.watch import Sample

FUSE_TOLERANCE_A = 0.05      # the meters' float registers
KWH_TOLERANCE = 0.02         # a ticket ends on the meter's last poll (1 s of domain time at 22 kW ~ 0.006 kWh)
FAILOVER_MAX_S = 2.0
CHARGING_A = 1.0             # above this an EV draws current


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


@dataclass
class Record:
    """What the demo saw. Times are `time.monotonic()`."""

    limit_a: float
    samples: Sequence[Sample]
    tickets: Sequence[dict[str, Any]]
    meter_kwh: dict[str, tuple[float, float]]      # cp -> (first, last) reading of its energy register
    charging: dict[str, tuple[float, float]]       # cp -> (from, to): when its EV was meant to charge
    sessions_started: int                          # sessions the drivers were told had started
    sessions_open_at_end: int                      # sessions the site still had in progress at the end
    failovers: list[tuple[str, float | None]] = field(default_factory=list)  # (killed leader, s to next commit)
    hit: dict[str, tuple[float, float]] = field(default_factory=dict)     # cp -> (from, to): chaos on it
    hung: list[tuple[str, float | None]] = field(default_factory=list)    # (cp, s until its monitor said so)
    apps: dict[str, set[str]] | None = None     # driver -> the sessions whose ticket its app showed


def fuse(r: Record) -> Check:
    worst = max(r.samples, key=Sample.total, default=None)
    if worst is None:
        return Check("fuse", False, "no meter was sampled")
    top = worst.total()
    return Check("fuse", top <= r.limit_a + FUSE_TOLERANCE_A,
                 f"highest sum of currents {top:.2f} A against a {r.limit_a:g} A limit "
                 f"({len(r.samples)} samples every 100 ms)")


def tickets_match_meters(r: Record) -> Check:
    lines, ok = [], True
    for cp, (first, last) in sorted(r.meter_kwh.items()):
        billed = sum(float(t.get("kwh", 0.0)) for t in r.tickets if t.get("cp") == cp)
        metered = last - first
        good = abs(billed - metered) <= KWH_TOLERANCE
        ok &= good
        lines.append(f"{cp} tickets {billed:.3f} kWh, meter {metered:.3f} kWh")
    return Check("tickets = meters", ok and bool(lines), "; ".join(lines) or "no meter read")


def one_ticket_per_session(r: Record) -> Check:
    ids = [t.get("session_id") for t in r.tickets]
    dupes = len(ids) - len(set(ids))
    ok = dupes == 0 and r.sessions_open_at_end == 0 and len(set(ids)) >= r.sessions_started
    return Check("one ticket per session", ok,
                 f"{len(set(ids))} tickets for {r.sessions_started} sessions started, {dupes} twice, "
                 f"{r.sessions_open_at_end} still open")


def failovers(r: Record) -> Check:
    if not r.failovers:
        return Check("failover", True, "no leader was killed")
    ok = all(s is not None and s <= FAILOVER_MAX_S for _, s in r.failovers)
    said = ", ".join(f"{cp} killed -> next commit {'never' if s is None else f'{s * 1000:.0f} ms'}"
                     for cp, s in r.failovers)
    return Check("failover", ok, said)


def longest_break(r: Record) -> tuple[float, str]:
    """The longest time a charging EV drew nothing while it was meant to charge (outside the chaos' hits)."""
    worst, where = 0.0, "-"
    for cp, (start, end) in r.charging.items():
        hit = r.hit.get(cp)
        began: float | None = None   # the EV drew current once: from then on a zero is a break
        gap_from: float | None = None
        for s in r.samples:
            if not start <= s.t <= end or (hit is not None and hit[0] <= s.t <= hit[1]):
                gap_from = None
                continue
            amps = s.amps.get(cp)
            if amps is not None and amps > CHARGING_A:
                began = began or s.t
                gap_from = None
            elif began is not None:
                gap_from = gap_from or s.t
                if s.t - gap_from > worst:
                    worst, where = s.t - gap_from, cp
    return worst, where


def no_break(r: Record) -> Check:
    worst, where = longest_break(r)
    return Check("no break", worst == 0.0, f"longest break in a charging EV's current {worst * 1000:.0f} ms"
                 + (f" ({where})" if worst else "") + (" (charge points hit by the chaos excepted)" if r.hit else ""))


def hung_caught(r: Record) -> Check | None:
    if not r.hung:
        return None
    ok = all(s is not None for _, s in r.hung)
    return Check("hung engine", ok, ", ".join(f"{cp} hung -> its monitor "
                                              + ("never said so" if s is None else f"cut it after {s:.1f} s")
                                              for cp, s in r.hung))


def apps_told(r: Record) -> Check | None:
    """Each driver's app showed the ticket of every session the site billed to that driver."""
    if r.apps is None:
        return None
    missing = sorted(f"{t.get('driver')}:{t.get('session_id')}" for t in r.tickets
                     if t.get("session_id") not in r.apps.get(str(t.get("driver")), set()))
    shown = sum(len(s) for s in r.apps.values())
    return Check("drivers' apps", not missing, f"{shown} tickets shown by the drivers' apps"
                 + (f"; not shown: {', '.join(missing)}" if missing else ""))


def verdicts(r: Record) -> list[Check]:
    checks = [fuse(r), tickets_match_meters(r), one_ticket_per_session(r), failovers(r), no_break(r),
              hung_caught(r), apps_told(r)]
    return [c for c in checks if c is not None]
