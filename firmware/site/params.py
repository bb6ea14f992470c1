"""The site's fixed numbers: size caps, units, timing parameters and the site's genesis.

Units inside the machine are integers, so every replica computes bit-identical results:
currents in deci-amps (`_da`, 0.1 A, per phase), energy in Wh, prices in micro-euros per kWh,
money in cents, time in milliseconds of *site time* (see terms.py).

Clock drift. Leases are measured by two clocks: the charge point's (from when it asked for a
renewal) and the leader's (from the stamp of the renewal command). We assume every monotonic
clock runs within ±`drift_ppm` (default 1000 ppm = 0.1 %) of real time. A lease of `lease_ms`
on the charge point lasts at most lease_ms / (1 - rho) real time; the site waits
`stretch(lease_ms)` >= lease_ms * (1 + rho) / (1 - rho) on the leader's clock, which is at least
that long in real time. For a 10 s lease that is 10 022 ms: a margin of 22 ms (0.2 % + 2 ms of rounding).
The EV's reaction window is stretched the same way. A crystal oscillator is within 100 ppm;
1000 ppm leaves room for a Pi without a real-time clock trimming its rate (NTP slews at most
500 ppm).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

from evnet.config.schema import DRIVER_RE, ID_RE

# Caps: the state stays small on a Pi whatever clients send.
MAX_COMMAND_BYTES = 4096
MAX_MEMBERS = 16
MAX_PRINCIPALS = 500
MAX_TICKETS = 500        # unacknowledged tickets; new sessions wait beyond it (a stop never does)
MAX_RECENT_CLOSED = 256  # ids of closed sessions remembered after their ticket left
MAX_CLIENTS = 2000       # Paxos clients tracked for `forget_quiet` (members are not counted)
MAX_LIST = 100           # ids in one command
MAX_TEXT = 120           # a location
MAX_SEQ = 2**53          # what a JSON number holds exactly everywhere

# Ids as the configuration checks them: charge points and sites, drivers (and operators) as in a
# charge point's local list; session ids come from the charge point's journal.
SITE_ID_RE = CP_ID_RE = ID_RE
PRINCIPAL_ID_RE = DRIVER_RE
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

# Currents (deci-amps, per phase).
MIN_CHARGE_DA = 60       # IEC 61851-1: an EV is never offered less than 6 A (0 A pauses it)
MAX_CP_DA = 800          # 80 A: the highest current a PWM duty can advance
MAX_LIMIT_DA = 20000     # 2000 A

PRIORITIES = range(0, 10)


def da(amps: float) -> int:
    """Amps (a JSON number) to deci-amps."""
    return round(amps * 10)


def amps(deci_amps: int) -> float:
    return deci_amps / 10


@dataclass(frozen=True)
class SiteParams:
    """Timing and policy numbers; every replica must use the same (they travel in snapshots)."""

    lease_ms: int = 10_000             # a charge point's lease, on its own clock (EVerest: 10 s)
    reaction_ms: int = 5_000           # IEC 61851-1: an EV follows a lower duty within 5 s
    drift_ppm: int = 1_000             # the clock-rate bound (module docstring)
    authorization_ms: int = 120_000    # a driver's request waits this long for the EV (OCPP ConnectionTimeOut)
    reservation_ms: int = 900_000      # a reservation's default length
    max_reservation_ms: int = 3_600_000
    cp_lost_ms: int = 600_000          # silence after which the site may close a session (`cp_lost`)
    rotate_ms: int = 900_000           # when short, paused EVs take turns this often (OpenEVSE: 30 min)
    give_back_after_ms: int = 60_000   # an EV drawing less than its grant for this long gives the rest back
    give_back_margin_da: int = 20      # ... by more than this (2 A); its grant becomes what it draws + this
    take_back_margin_da: int = 10      # within this (1 A) of that lower grant, it gets its share back at once

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"site parameter {f.name} must be an integer >= 0, got {value!r}")
        if not 1000 <= self.lease_ms <= 600_000:
            raise ValueError(f"lease_ms must be 1000 to 600000, got {self.lease_ms}")
        if self.drift_ppm >= 100_000:
            raise ValueError(f"drift_ppm must be below 100000, got {self.drift_ppm}")
        if self.take_back_margin_da >= self.give_back_margin_da:
            raise ValueError("take_back_margin_da must be below give_back_margin_da, or grants would flap")

    def stretch(self, ms: int) -> int:
        """How long the site waits for `ms` measured on another clock (module docstring)."""
        p = self.drift_ppm
        return -(-ms * (1_000_000 + p) // (1_000_000 - p)) + 1

    @property
    def site_lease_ms(self) -> int:
        return self.stretch(self.lease_ms)

    @property
    def site_reaction_ms(self) -> int:
        return self.stretch(self.reaction_ms)


@dataclass(frozen=True)
class SiteSetup:
    """What every replica builds its genesis state from: the site, its members, the limit and fallbacks."""

    site: str
    limit_da: int
    fallbacks_da: dict[str, int]       # member charge point -> its fallback current
    params: SiteParams = field(default_factory=SiteParams)

    def __post_init__(self) -> None:
        if not SITE_ID_RE.match(self.site):
            raise ValueError(f"site id {self.site!r} is not a valid id")
        if not 1 <= len(self.fallbacks_da) <= MAX_MEMBERS:
            raise ValueError(f"a site has 1 to {MAX_MEMBERS} charge points, got {len(self.fallbacks_da)}")
        for cp, fallback in self.fallbacks_da.items():
            if not CP_ID_RE.match(cp):
                raise ValueError(f"charge point id {cp!r} is not a valid id")
            if not (fallback == 0 or MIN_CHARGE_DA <= fallback <= MAX_CP_DA):
                raise ValueError(f"{cp}: a fallback current is 0 or 6 to 80 A, got {amps(fallback)} A")
        if not MIN_CHARGE_DA <= self.limit_da <= MAX_LIMIT_DA:
            raise ValueError(f"the site limit must be 6 to 2000 A, got {amps(self.limit_da)} A")
        total = sum(self.fallbacks_da.values())
        if total > self.limit_da:
            raise ValueError(f"the fallback currents add up to {amps(total)} A, above the site limit "
                             f"{amps(self.limit_da)} A: a site that lost its leader could overload its fuse")

    @classmethod
    def of(cls, site: str, limit_a: float, members: list[str] | tuple[str, ...], fallback_a: float,
           **params: Any) -> SiteSetup:
        """From the configuration's [site] numbers (one fallback for every member)."""
        lease = params.pop("lease_s", None)
        if lease is not None:
            params["lease_ms"] = math.ceil(lease * 1000)
        return cls(site, da(limit_a), {m: da(fallback_a) for m in members}, SiteParams(**params))
