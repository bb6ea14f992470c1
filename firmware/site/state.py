"""The replicated state of a site: immutable records in tables, copied table by table per command.

`apply` works on `state.copy()` (new dicts holding the same frozen records) and keeps the copy only
if the command succeeds, so a refused command changes nothing. Records change by
`dataclasses.replace`, never in place. Times are site time (terms.py); units are params.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from firmware.site.budget import Budget
from firmware.site.params import SiteParams, SiteSetup


@dataclass(frozen=True)
class ChargePoint:
    id: str
    registered: bool = False
    location: str = ""
    price_ueur_kwh: int = 0        # micro-euros per kWh
    max_da: int = 0                # what it registered (its configuration)
    cap_da: int | None = None      # an operator's cap (`set_cp_max`), kept apart so a new `register` keeps it
    csms_max_da: int | None = None      # its back office's charging profiles in force (`charging_limits`):
    csms_default_da: int | None = None  # the point's maximum, the default cap of sessions,
    csms_session_da: int | None = None  # and the running session's own cap (which beats the default)
    phases: int = 3
    available: bool = True         # False: OUT_OF_ORDER by an operator
    priority: int = 0              # higher charges first when current is short
    health: str = "ok"
    fault: str | None = None       # sticky until `clear_fault`
    plugged: bool = False
    ev_max_da: int | None = None   # the EV's own maximum (ISO 15118 ChargeParameterDiscovery)
    drawn_da: int = 0
    heard: int | None = None       # site time of the last command from this charge point
    # the split's own state (split.py), carried here so that the policy is a pure function
    usage_cap_da: int | None = None
    low_since: int | None = None
    active: bool = False
    turn_since: int | None = None
    target_da: int = 0
    limit_reason: str = "not_registered"

    def csms_cap_da(self) -> int | None:
        """The lowest current the back office's profiles allow now (None: no profile in force)."""
        session = self.csms_session_da if self.csms_session_da is not None else self.csms_default_da
        caps = [c for c in (self.csms_max_da, session) if c is not None]
        return min(caps) if caps else None

    def out_of_service(self) -> str | None:
        """Why no one may use it now, whatever else: "not_registered", "faulted", "out_of_order"; or None."""
        if not self.registered:
            return "not_registered"
        if self.fault is not None:
            return "faulted"
        return None if self.available else "out_of_order"


@dataclass(frozen=True)
class Principal:
    id: str
    role: str                      # "driver" or "operator"
    key: str                       # Ed25519 public key, base64 of the 32 raw bytes
    seq: int                       # the highest request sequence number used


@dataclass(frozen=True)
class Reservation:
    cp: str
    driver: str
    expires: int


@dataclass(frozen=True)
class Authorization:
    """A driver's request waiting for the EV at a charge point (OCPP's ConnectionTimeOut)."""

    cp: str
    driver: str
    expires: int
    redirected: bool = False  # the driver asked for another point: meant for an EV that plugs in after it


@dataclass(frozen=True)
class Session:
    id: str
    cp: str
    driver: str
    start: int
    first_wh: int
    last_wh: int
    last: int                      # site time of the last checkpoint
    price_ueur_kwh: int            # the price when it started
    stop_requested: str | None = None  # "driver" or "operator": the charge point must end it


@dataclass(frozen=True)
class Ticket:
    session: str
    cp: str
    driver: str
    start: int
    end: int
    energy_wh: int
    cost_cents: int
    reason: str


@dataclass(frozen=True)
class Totals:
    """What is left of tickets Central acknowledged."""

    tickets: int = 0
    energy_wh: int = 0
    cost_cents: int = 0


@dataclass
class SiteState:
    site: str
    params: SiteParams
    budget: Budget
    office: tuple[int, str] | None = None  # the ballot of the leader whose term this is
    offset: int = 0                        # site time = that leader's clock + offset
    now: int = 0
    cps: dict[str, ChargePoint] = field(default_factory=dict)
    principals: dict[str, Principal] = field(default_factory=dict)
    seq_floor: int = 0                     # highest seq of a removed principal: new ones start above it
    reservations: dict[str, Reservation] = field(default_factory=dict)      # by charge point
    authorizations: dict[str, Authorization] = field(default_factory=dict)  # by charge point
    sessions: dict[str, Session] = field(default_factory=dict)              # open, by id
    tickets: dict[str, Ticket] = field(default_factory=dict)                # unacknowledged, by session
    closed: tuple[str, ...] = ()           # the last MAX_RECENT_CLOSED sessions closed
    totals: Totals = field(default_factory=Totals)
    clients: dict[str, int] = field(default_factory=dict)                   # Paxos client -> last heard

    @classmethod
    def genesis(cls, setup: SiteSetup) -> SiteState:
        return cls(site=setup.site, params=setup.params,
                   budget=Budget(setup.params, setup.limit_da, setup.fallbacks_da),
                   cps={cp: ChargePoint(cp) for cp in sorted(setup.fallbacks_da)})

    def copy(self) -> SiteState:
        return replace(self, budget=self.budget.copy(), cps=dict(self.cps), principals=dict(self.principals),
                       reservations=dict(self.reservations), authorizations=dict(self.authorizations),
                       sessions=dict(self.sessions), tickets=dict(self.tickets), clients=dict(self.clients))

    # -- look-ups shared by the handlers ----------------------------------------------------

    def session_at(self, cp: str) -> Session | None:
        return next((s for s in self.sessions.values() if s.cp == cp), None)

    def session_of(self, driver: str) -> Session | None:
        return next((s for s in self.sessions.values() if s.driver == driver), None)

    def reservation_of(self, driver: str) -> Reservation | None:
        return next((r for r in self.reservations.values() if r.driver == driver and r.expires > self.now), None)

    def authorization_of(self, driver: str) -> Authorization | None:
        return next((a for a in self.authorizations.values() if a.driver == driver and a.expires > self.now), None)

    def live_reservation(self, cp: str) -> Reservation | None:
        r = self.reservations.get(cp)
        return r if r is not None and r.expires > self.now else None

    def live_authorization(self, cp: str) -> Authorization | None:
        a = self.authorizations.get(cp)
        return a if a is not None and a.expires > self.now else None


RECORDS = {"cps": ChargePoint, "principals": Principal, "reservations": Reservation,
           "authorizations": Authorization, "sessions": Session, "tickets": Ticket}


def record_json(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}
