"""The view: a pure fold of what Central hears into what its dashboards show (no I/O, time passed in).

Per charge point: its status and colour (DESIGN.md's table), location, price, the live figures of a
session, why it is limited, its fault; per site: the sum of the currents drawn against its limit; and
a bounded log of events (who asked the site for what and what it answered, redirects, faults,
tickets, the operator's actions). Every row and event carries the view's version when it last
changed, so any number of readers (the web stream, the terminal, the registry's writer) each ask for
what changed since their own cursor (`changed_since`).

A charge point is DISCONNECTED until its own status topic speaks (DESIGN.md: Central on any start
shows each registered charge point DISCONNECTED until it hears from it); the site's state adds what
only the site knows (RESERVED, the grant and its reason) but never makes a silent point look alive.

    view = View()
    view.load(registry.charge_points())
    changes = view.apply(decode(prefix, topic, payload), now)   # tickets to copy, among other things
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from central_broker.view.messages import (
    CpStatus,
    Message,
    MonitorEvent,
    Reply,
    Request,
    SiteState,
    Telemetry,
    Ticket,
)

MAX_EVENTS = 500          # the log shown: the newest
MAX_PENDING = 2000        # requests waiting for their reply, to say "who asked for what" with the answer
MAX_CPS = 20_000          # rows the view holds at most (a broker flooded with made-up ids cannot exhaust memory)

COLOURS = {"AVAILABLE": "green", "RESERVED": "green-outline", "CHARGING": "green", "OUT_OF_ORDER": "orange",
           "FAULTED": "red", "DISCONNECTED": "grey"}
LEGENDS = {"AVAILABLE": "Available", "RESERVED": "Reserved", "CHARGING": "Charging", "OUT_OF_ORDER": "Out of Order",
           "FAULTED": "Faulted", "DISCONNECTED": "Disconnected"}
VIA = {"homeassistant": " (from Home Assistant)"}  # how the event log says where an operator's action came from
LIVE = ("session", "driver", "power_kw", "energy_kwh", "cost_eur", "current_a", "limit_a", "limit_reason")


@dataclass(frozen=True)
class OperatorAction:
    """What Central's operator asked a site, and what came of it (`ok`, and the result or the refusal)."""

    site: str
    action: str
    args: dict[str, Any]
    ok: bool
    outcome: str
    via: str = "web"   # where the operator asked: "web", "homeassistant"


@dataclass(frozen=True)
class Known:
    """A charge point from the registry: shown DISCONNECTED until it speaks."""

    site: str
    cp: str
    location: str = ""
    price_eur_kwh: float | None = None
    max_current_a: float | None = None
    last_status: str | None = None
    last_seen: float | None = None


@dataclass
class CpRow:
    site: str
    cp: str
    version: int = 0
    heard: bool = False            # its status topic spoke since Central started
    status: str = "DISCONNECTED"   # what its status topic said
    site_status: str | None = None  # what the site's state says (RESERVED is known only there)
    location: str = ""
    price_eur_kwh: float | None = None
    max_current_a: float | None = None
    fault: str | None = None
    ts: float | None = None        # the status message's own time (its sender's clock)
    last_seen: float | None = None  # Central's clock when it last heard from it
    live: dict[str, Any] = field(default_factory=dict)  # LIVE fields while charging
    grant_a: float | None = None
    site_reason: str | None = None
    reserved_by: str | None = None
    reserved_until_ms: int | None = None

    @property
    def shown(self) -> str:
        if not self.heard:
            return "DISCONNECTED"
        if self.status == "AVAILABLE" and self.reserved_by is not None:
            return "RESERVED"
        return self.status

    def to_json(self) -> dict[str, Any]:
        status = self.shown
        charging = status == "CHARGING"
        return {"site": self.site, "cp": self.cp, "status": status, "colour": COLOURS[status],
                "legend": (self.fault or "fault") if status == "FAULTED" else LEGENDS[status],
                "location": self.location, "price_eur_kwh": self.price_eur_kwh, "max_current_a": self.max_current_a,
                "fault": self.fault if status == "FAULTED" else None, "ts": self.ts, "last_seen": self.last_seen,
                **{k: (self.live.get(k) if charging else None) for k in LIVE},
                "limit_reason": (self.live.get("limit_reason") or self.site_reason) if charging else self.site_reason,
                "grant_a": self.grant_a, "reserved_by": self.reserved_by if status == "RESERVED" else None,
                "reserved_until_ms": self.reserved_until_ms if status == "RESERVED" else None}


@dataclass
class SiteRow:
    site: str
    version: int = 0
    limit_a: float | None = None
    drawing_a: float | None = None   # the site's own sum of what its points draw (its state)
    slot: int | None = None
    tickets_waiting: int = 0


@dataclass(frozen=True)
class Changes:
    """What one message changed that someone outside the view acts on: site tickets to copy and acknowledge,
    engine tickets to keep."""

    site_tickets: tuple[Ticket, ...] = ()
    engine_tickets: tuple[Ticket, ...] = ()


NO_CHANGES = Changes()


class View:
    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self.version = 0
        self.cps: dict[tuple[str, str], CpRow] = {}
        self.sites: dict[str, SiteRow] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=max_events)
        self.pending: OrderedDict[tuple[str, str, int], str] = OrderedDict()
        self.refused = 0  # rows not made: the view is full

    # ------------------------------------------------------------------ rows

    def _bump(self) -> int:
        self.version += 1
        return self.version

    def _cp(self, site: str, cp: str) -> CpRow | None:
        row = self.cps.get((site, cp))
        if row is None:
            if len(self.cps) >= MAX_CPS:
                self.refused += 1
                return None
            row = self.cps[(site, cp)] = CpRow(site, cp)
            self._site(site)
        return row

    def _site(self, site: str) -> SiteRow:
        row = self.sites.get(site)
        if row is None:
            row = self.sites[site] = SiteRow(site, version=self._bump())
        return row

    def _event(self, now: float, site: str, cp: str | None, kind: str, text: str) -> None:
        self.events.append({"seq": self._bump(), "t": now, "site": site, "cp": cp, "kind": kind, "text": text})

    def load(self, known: list[Known]) -> None:
        """The registry's charge points, each DISCONNECTED until it speaks (Central's start)."""
        for k in known:
            row = self._cp(k.site, k.cp)
            if row is None:
                break
            row.location, row.price_eur_kwh, row.max_current_a = k.location, k.price_eur_kwh, k.max_current_a
            row.last_seen, row.version = k.last_seen, self._bump()

    # ------------------------------------------------------------------ the fold

    def apply(self, msg: Message | OperatorAction, now: float) -> Changes:
        match msg:
            case CpStatus():
                return self._status(msg, now)
            case Telemetry():
                return self._telemetry(msg, now)
            case MonitorEvent():
                return self._monitor(msg, now)
            case SiteState():
                return self._state(msg)
            case Request():
                return self._request(msg, now)
            case Reply():
                return self._reply(msg, now)
            case OperatorAction():
                self._event(now, msg.site, msg.args.get("cp"), "operator" if msg.ok else "operator_refused",
                            f"operator {msg.action} {_args(msg.args)}{VIA.get(msg.via, '')}: {msg.outcome}")
                return NO_CHANGES
        return NO_CHANGES

    def _status(self, m: CpStatus, now: float) -> Changes:
        row = self._cp(m.site, m.cp)
        if row is None:
            return NO_CHANGES
        before, first = row.shown, not row.heard
        row.heard, row.status, row.fault, row.ts, row.last_seen = True, m.status, m.fault, m.ts, now
        if m.location is not None:
            row.location = m.location
        if m.price_eur_kwh is not None:
            row.price_eur_kwh = m.price_eur_kwh
        if m.max_current_a is not None:
            row.max_current_a = m.max_current_a
        if m.status != "CHARGING":
            row.live = {}
        row.version = self._bump()
        if row.shown != before:
            match m.status:
                case "FAULTED":
                    self._event(now, m.site, m.cp, "fault", f"{m.cp} FAULTED: {m.fault or 'no code'}"
                                + (f" (by its {m.source})" if m.source else ""))
                case "DISCONNECTED" | "OUT_OF_ORDER":
                    self._event(now, m.site, m.cp, "status", f"{m.cp} {LEGENDS[m.status]}")
                case _ if before in ("DISCONNECTED", "FAULTED", "OUT_OF_ORDER"):
                    self._event(now, m.site, m.cp, "status",
                                f"{m.cp} {'connected' if first else 'back'}: {LEGENDS[row.shown]}")
        return NO_CHANGES

    def _telemetry(self, m: Telemetry, now: float) -> Changes:
        row = self._cp(m.site, m.cp)
        if row is None:
            return NO_CHANGES
        row.last_seen = now
        if m.ticket is not None:
            row.live = {}
            t = m.ticket
            self._event(now, m.site, m.cp, "ticket", f"ticket {t.session} at {t.cp}: {t.kwh:.3f} kWh, "
                        f"€{t.eur:.2f}, {t.driver or 'no driver'}, {t.reason or 'ended'}")
            row.version = self._bump()
            return Changes(engine_tickets=(t,))
        row.live = {"session": m.session, "driver": m.driver, "power_kw": m.power_kw, "energy_kwh": m.energy_kwh,
                    "cost_eur": m.cost_eur, "current_a": m.current_a, "limit_a": m.limit_a,
                    "limit_reason": m.limit_reason}
        row.version = self._bump()
        return NO_CHANGES

    def _monitor(self, m: MonitorEvent, now: float) -> Changes:
        if m.event in ("engine_lost", "safety_cut", "engine_back", "monitor_offline"):
            if self._cp(m.site, m.cp) is None:
                return NO_CHANGES
            detail = f": {m.fault}" if m.fault else ""
            self._event(now, m.site, m.cp, "fault" if m.event in ("engine_lost", "safety_cut") else "monitor",
                        f"{m.cp} monitor {m.event.replace('_', ' ')}{detail}")
        return NO_CHANGES

    def _state(self, m: SiteState) -> Changes:
        site = self._site(m.site)
        if site.slot is not None and m.slot < site.slot:
            return NO_CHANGES  # an older leader's retained state after a newer one's
        site.limit_a, site.drawing_a, site.slot, site.tickets_waiting = m.limit_a, m.drawing_a, m.slot, \
            m.tickets_waiting
        site.version = self._bump()
        reserved = {h.cp: (h.driver, h.expires_ms) for h in m.reservations}
        for c in m.cps:
            row = self._cp(m.site, c.cp)
            if row is None:
                break
            by, until = reserved.get(c.cp, (None, None))
            new = (c.status, c.grant_a, c.limit_reason, by, until, row.location or c.location,
                   row.price_eur_kwh if row.price_eur_kwh is not None else c.price_eur_kwh)
            old = (row.site_status, row.grant_a, row.site_reason, row.reserved_by, row.reserved_until_ms,
                   row.location, row.price_eur_kwh)
            if new != old:
                (row.site_status, row.grant_a, row.site_reason, row.reserved_by, row.reserved_until_ms,
                 row.location, row.price_eur_kwh) = new
                row.version = self._bump()
        return Changes(site_tickets=m.tickets) if m.tickets else NO_CHANGES

    def _request(self, m: Request, now: float) -> Changes:
        who = m.by or f"{m.client} (site key)"
        text = f"{who} asked {m.op} {_args(m.args)}".rstrip()
        key = (m.site, m.client, m.req)
        if key in self.pending:
            return NO_CHANGES  # a retry of the same request
        self.pending[key] = text
        while len(self.pending) > MAX_PENDING:
            self.pending.popitem(last=False)
        self._event(now, m.site, m.args.get("at") or m.args.get("cp"), "request", text)
        return NO_CHANGES

    def _reply(self, m: Reply, now: float) -> Changes:
        asked = self.pending.pop((m.site, m.client, m.req), None)
        if asked is None:
            return NO_CHANGES  # not a request we saw (or a copy of an answer already shown)
        r = m.result
        if "error" in r:
            kind, text = "refused", f"{asked} → refused: {r.get('error')} {r.get('reason', '')}".rstrip()
        elif "redirected_from" in r:
            kind, text = "redirect", (f"{asked} → redirected from {r.get('redirected_from')} to {r.get('cp')}"
                                      + (f" ({r['why']})" if r.get("why") else ""))
        else:
            kind, text = "answer", f"{asked} → ok {_args({k: v for k, v in r.items() if k != 'ok'})}".rstrip()
        self._event(now, m.site, r.get("cp") if isinstance(r.get("cp"), str) else None, kind, text)
        return NO_CHANGES

    # ------------------------------------------------------------------ what readers take

    def _sums(self, sites: set[str]) -> dict[str, float]:
        """The current drawn now at each of `sites`, by the charging points' telemetry (one pass)."""
        sums = dict.fromkeys(sites, 0.0)
        for c in self.cps.values():
            if c.site in sums and c.live and c.shown == "CHARGING":
                sums[c.site] += c.live.get("current_a") or 0.0
        return sums

    def site_json(self, site: str, sum_a: float) -> dict[str, Any]:
        row = self.sites[site]
        return {"site": site, "limit_a": row.limit_a, "drawing_a": row.drawing_a, "sum_a": round(sum_a, 1),
                "tickets_waiting": row.tickets_waiting, "slot": row.slot}

    def changed_since(self, version: int) -> dict[str, Any]:
        """Every row and event changed after `version`, and the version to ask from next time."""
        cps = [r.to_json() for r in self.cps.values() if r.version > version]
        sites = {r.site for r in self.sites.values() if r.version > version} | {c["site"] for c in cps}
        sums = self._sums(sites)
        return {"version": self.version, "cps": cps, "sites": [self.site_json(s, sums[s]) for s in sorted(sites)],
                "events": [e for e in self.events if e["seq"] > version]}

    def snapshot(self) -> dict[str, Any]:
        return self.changed_since(-1)


def _args(args: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in args.items() if v is not None)
