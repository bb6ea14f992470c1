"""What a driver sees, folded from what the site and its charge points publish: pure, no I/O, time injected.

Inputs: every message on the site's `state` and its charge points' `status` and `telemetry`
(`received`, bytes as they came: decoded and checked by Central's decoder, `central_broker/view/messages.py`,
a bad one dropped, counted and logged; another site's ignored), and the site's answers to this driver's
own requests (`answered`). Outputs: the charge points (status, location, price, why limited), this
driver's session (where, phase, kWh, €, kW, why limited, the redirect and why), the last ticket, and
events a follower acts on (`Started`, `Ended`, `Closed`, `Lapsed`).

Why a session is found from the site, not remembered: after a crash or a restart the app knows
nothing; the site's state names the session (or the request still waiting) of this driver, and the
telemetry of that charge point gives its live figures. So a restarted app picks up where it was.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from central_broker.view.messages import (
    ID_RE,
    BadMessage,
    CpStatus,
    Message,
    SiteState,
    Telemetry,
    Ticket,
    decode,
)
from evnet.logs import EventLogger, FoldedLog, event_logger

STALE_S = 5.0         # live power older than this (real seconds) is not shown as live
REMEMBER = 64         # sessions whose ticket came: a late state or a repeated ticket does not bring them back
# A charge point's own status wins over the site's when it says it is gone or faulted (the site learns that
# later), and where the site does not know it yet (not registered: the site says DISCONNECTED).
OVERRIDES = ("DISCONNECTED", "FAULTED")


@dataclass(frozen=True)
class Point:
    """One charge point as the driver's list shows it."""

    cp: str
    status: str
    location: str
    price_eur_kwh: float | None
    fault: str | None
    limit_reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {"cp": self.cp, "status": self.status, "location": self.location,
                "price_eur_kwh": self.price_eur_kwh, "fault": self.fault, "limit_reason": self.limit_reason}


@dataclass(frozen=True)
class Redirect:
    asked: str | None   # the charge point asked for (None: anywhere)
    reason: str         # docs/site.md: not_registered, faulted, out_of_order, not_heard, busy, reserved


@dataclass(frozen=True)
class MySession:
    """This driver's request or session now: `waiting` for the EV at `cp`, `charging`, or `stopping`."""

    phase: Literal["waiting", "charging", "stopping"]
    cp: str
    location: str
    price_eur_kwh: float | None
    session: str | None
    energy_kwh: float | None
    cost_eur: float | None
    power_kw: float | None
    current_a: float | None
    limit_a: float | None
    limit_reason: str | None
    redirect: Redirect | None

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "cp": self.cp, "location": self.location, "price_eur_kwh": self.price_eur_kwh,
                "session": self.session, "energy_kwh": self.energy_kwh, "cost_eur": self.cost_eur,
                "power_kw": self.power_kw, "current_a": self.current_a, "limit_a": self.limit_a,
                "limit_reason": self.limit_reason,
                "redirected_from": None if self.redirect is None else self.redirect.asked,
                "redirect_reason": None if self.redirect is None else self.redirect.reason}


@dataclass(frozen=True)
class Started:
    """This driver's session began (the site committed its start)."""

    cp: str
    session: str


@dataclass(frozen=True)
class Ended:
    """This driver's session ended with its ticket: the engine's (its last telemetry), or the site's (its state's
    waiting tickets), whichever is heard first."""

    ticket: Ticket


@dataclass(frozen=True)
class Closed:
    """The site closed this driver's session; its ticket comes with the charge point's last telemetry."""

    cp: str
    session: str


@dataclass(frozen=True)
class Lapsed:
    """This driver's request left the site with no session: its time ran out, or it was withdrawn."""

    cp: str


Event = Started | Ended | Closed | Lapsed


@dataclass
class _Mine:
    """What this driver has at the site, as last learned."""

    cp: str
    session: str | None = None      # known once started
    in_state: bool = False          # a state showed it (until then, an older retained state must not end it)
    stop_requested: str | None = None
    energy_wh: int | None = None


class DriverView:
    """The fold for driver `driver` of site `site` (topics under `prefix`)."""

    def __init__(self, driver: str, site: str, prefix: str = "evnet", log: EventLogger | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.driver, self.site, self.prefix = driver, site, prefix
        self.log = log or event_logger("driver", driver=driver, site=site)
        self._folded = FoldedLog(self.log, monotonic=monotonic)
        self.dropped = self._folded.counts      # bad messages, by (reason, kind of topic)
        self.statuses: dict[str, CpStatus] = {}
        self.state: SiteState | None = None
        self.live: dict[str, tuple[Telemetry, float]] = {}  # cp -> its last telemetry, when it came
        self.mine: _Mine | None = None
        self.redirect: Redirect | None = None
        self.ticket: Ticket | None = None       # the last ticket of this driver's
        self._ended: deque[str] = deque(maxlen=REMEMBER)
        self._closed: deque[str] = deque(maxlen=REMEMBER)  # closed at the site, ticket not heard yet

    # -- inputs ------------------------------------------------------------------------------

    def received(self, topic: str, payload: bytes, now: float) -> list[Event]:
        """A message from the broker, as it came; a bad one is dropped, counted and logged (folded)."""
        try:
            msg = decode(self.prefix, topic, payload)
        except BadMessage as exc:
            kind = topic.rsplit("/", 1)[-1][:20]
            self._folded.warning("driver.message_dropped", key=(exc.reason, kind), reason=exc.reason,
                                 topic=topic[:120], detail=exc.detail[:120], size=len(payload))
            return []
        return [] if msg is None or msg.site != self.site else self.feed(msg, now)

    def feed(self, msg: Message, now: float) -> list[Event]:
        """A message of this driver's site (status, telemetry, state; others are not the driver's)."""
        match msg:
            case CpStatus(cp=cp):
                if cp in self.statuses or len(self.statuses) < 64:
                    self.statuses[cp] = msg
                return []
            case Telemetry():
                return self._telemetry(msg, now)
            case SiteState():
                return self._state(msg)
        return []

    def answered(self, op: str, result: dict[str, Any]) -> list[Event]:
        """The site's answer to this driver's own `op` (its result fields, as SiteClient returns them)."""
        match op:
            case "request_charge":
                cp = result.get("cp")
                if not isinstance(cp, str) or not ID_RE.match(cp):
                    self.log.warning("driver.bad_answer", op=op, result=str(result)[:120])
                    return []
                self.mine = _Mine(cp)
                why = result.get("redirect_reason")
                self.redirect = Redirect(_short(result.get("redirected_from")), str(why)[:40]) if why else None
            case "stop_charge" if result.get("withdrawn") and self.mine is not None and self.mine.session is None:
                cp, self.mine = self.mine.cp, None
                return [Lapsed(cp)]
            case "stop_charge" if self.mine is not None:
                self.mine.stop_requested = self.mine.stop_requested or "driver"
        return []

    # -- what the driver sees ----------------------------------------------------------------

    def points(self) -> list[Point]:
        site = {c.cp: c for c in self.state.cps} if self.state is not None else {}
        out = []
        for cp in sorted(set(site) | set(self.statuses)):
            s, own = site.get(cp), self.statuses.get(cp)
            known = s is not None and s.status != "DISCONNECTED"  # registered at the site
            if own is not None and (not known or own.status in OVERRIDES):
                status = own.status
            else:
                status = s.status if s is not None else "DISCONNECTED"
            if known:
                location, price = s.location, s.price_eur_kwh  # type: ignore[union-attr]
            else:
                location, price = (own.location or "", own.price_eur_kwh) if own is not None else ("", None)
            out.append(Point(cp, status, location, price, own.fault if own is not None else None,
                             s.limit_reason if s is not None else None))
        return out

    def session(self, now: float) -> MySession | None:
        m = self.mine
        if m is None:
            return None
        point = next((p for p in self.points() if p.cp == m.cp), None)
        location, price = (point.location, point.price_eur_kwh) if point is not None else ("", None)
        tele, at = self.live.get(m.cp, (None, 0.0))
        if tele is None or m.session is None or tele.session != m.session:
            kwh = None if m.energy_wh is None else m.energy_wh / 1000
            cost = None if kwh is None or price is None else round(kwh * price, 2)
            live: tuple[float | None, ...] = (kwh, cost, None, None, None)
            reason = point.limit_reason if point is not None and m.session is not None else None
        else:
            fresh = now - at <= STALE_S
            live = (tele.energy_kwh, tele.cost_eur, *((tele.power_kw, tele.current_a, tele.limit_a) if fresh
                                                      else (None, None, None)))
            reason = tele.limit_reason or (point.limit_reason if point is not None else None)
        phase: Literal["waiting", "charging", "stopping"] = (
            "waiting" if m.session is None else "stopping" if m.stop_requested else "charging")
        return MySession(phase, m.cp, location, price, m.session, *live, reason, self.redirect)

    # -- folding -----------------------------------------------------------------------------

    def _telemetry(self, t: Telemetry, now: float) -> list[Event]:
        if t.ticket is not None:
            return self._ticket(t.ticket)
        if t.session is None or t.session in self._ended:
            return []  # no session named: nothing a driver follows
        self.live[t.cp] = (t, now)
        if t.driver == self.driver:
            return self._started(t.cp, t.session)
        return []

    def _ticket(self, ticket: Ticket) -> list[Event]:
        self.live.pop(ticket.cp, None)
        if ticket.driver != self.driver or ticket.session in self._ended:
            return []
        self._ended.append(ticket.session)
        self.ticket = ticket
        if self.mine is not None and self.mine.cp == ticket.cp:
            self.mine = None
            self.redirect = None
        return [Ended(ticket)]

    def _started(self, cp: str, session: str) -> list[Event]:
        if self.mine is not None and self.mine.session == session:
            return []
        if self.mine is None or self.mine.cp != cp:
            self.redirect = None
        self.mine = _Mine(cp, session)
        return [Started(cp, session)]

    def _state(self, st: SiteState) -> list[Event]:
        if self.state is not None and st.slot < self.state.slot:
            return []  # older than the one we have (a new leader's first may lag): not news
        self.state = st
        # A session of ours the site closed whose final telemetry we missed (our link was down, or it is not
        # sent yet): its ticket waits at the site until Central takes it, in the state's oldest 100.
        mine = {*self._closed, *([self.mine.session] if self.mine is not None and self.mine.session else [])}
        ended = [e for t in st.tickets if t.session in mine and t.driver == self.driver for e in self._ticket(t)]
        if ended:
            return ended
        m = self.mine
        session = next((s for s in st.sessions if s.driver == self.driver and s.session not in self._ended), None)
        if session is not None:
            out = self._started(session.cp, session.session)
            m = self.mine
            assert m is not None
            m.energy_wh, m.in_state = session.energy_wh, True
            m.stop_requested = session.stop_requested or m.stop_requested
            return out
        if m is not None and m.session is not None:
            if not m.in_state:
                return []  # known from its telemetry: this state is older than its start
            self.mine, self.redirect = None, None  # the site closed it; its ticket comes with the telemetry
            self._closed.append(m.session)        # or with a later state's tickets
            return [Closed(m.cp, m.session)]
        waiting = next((w for w in st.waiting if w.driver == self.driver), None)
        if waiting is not None:
            if m is None or m.cp != waiting.cp:
                self.redirect = None
                self.mine = m = _Mine(waiting.cp)
            m.in_state = True
            return []
        if m is not None and m.in_state:  # it was waiting, and went without a session
            self.mine, self.redirect = None, None
            return [Lapsed(m.cp)]
        return []


def _short(v: Any) -> str | None:
    return v[:32] if isinstance(v, str) else None
