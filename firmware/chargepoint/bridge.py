"""The bridge between a charge point's engine and its site: pure, sans-I/O, like `EngineCore` and the replica.

It turns what the engine does into site commands and what the site decided into engine inputs. Each
input takes `now`, **the engine's clock** (`Evse.clock.monotonic()`, the value the engine core gets),
and returns what to do (outputs.py); `tick(now)` at `next_deadline()` runs its timers. Protocol timings
are real time, scaled onto that clock in settings.py; see there.

- Energy never waits for the site: nothing here opens a contactor. The site's silence reaches the
  engine only as a grant that is not renewed, so the engine's lease falls to the fallback by itself.
  A stop reaches the engine only when the site decided it (an operator, a driver, the site's own
  close of the session, or a start the site refused).
- At `start`: `register` (location, price, maximum, phases), then `report` and `renew` every half lease
  (grants.py); sessions (sessions.py) and reports (reports.py) as their modules say.
- A session starts when the site commits it: a driver's request waiting here (the replica's view
  shows it) with an EV plugged in -> `Authorize(driver)`; the button (`button`) or a private point's
  standing driver -> `Authorize` too, and the local list decides if the site does not answer. A request
  the site redirected here (the driver asked for another point) waits for an EV plugged in after it was
  seen: one already here is someone else's, whose plug-in the site had not heard of yet.
- The replica's view (`site_view`, after each command it applied) gives the grant, OUT_OF_ORDER
  (`SetAvailable`) and the stops the site asked for.
- A session the site holds at this charge point that this bridge does not know (its start was
  refused here, then committed late; a journal lost with its disk) and that the engine is not
  recovering is closed at the site after `orphan_after`, at its last checkpoint.
"""

from __future__ import annotations

from typing import Any

from evnet.logs import EventLogger, FoldedLog, event_logger
from firmware.chargepoint.grants import LeaseKeeper
from firmware.chargepoint.outbox import Outbox, Pending
from firmware.chargepoint.outputs import Authorize, Output, SetAvailable, Tag
from firmware.chargepoint.reports import Reporter
from firmware.chargepoint.sessions import Sessions, site_reason
from firmware.chargepoint.settings import BridgeSettings
from firmware.engine.actions import Action as EngineAction
from firmware.engine.actions import (
    EvMaxChanged,
    PlugChanged,
    SessionOpened,
    SessionVoided,
    StatusChanged,
    TicketClosed,
)
from firmware.engine.metering import Reading
from firmware.site import CpView

KEEP_LEASES = 3  # an overdue proposal is still waited for this many leases, then forgotten


class Bridge:
    def __init__(self, settings: BridgeSettings, log: EventLogger | None = None) -> None:
        self.settings = settings
        self.log = log or event_logger("bridge", cp=settings.cp)
        self._now = 0.0
        self._folded = FoldedLog(self.log, monotonic=lambda: self._now)
        lease = settings.on_engine_clock(settings.lease_s)
        self.outbox = Outbox(settings.on_engine_clock(settings.result_timeout_s), KEEP_LEASES * lease, self.log)
        self.lease = LeaseKeeper(settings, self.log)
        self.sessions = Sessions(settings, self.outbox, self.log)
        self.reports = Reporter(settings)
        self.orphan_after = 2 * lease
        self.view: CpView | None = None
        self.registered = False
        self._registering: Tag | None = None
        self._register_at: float | None = None
        self._register_backoff = 0.0
        self.available = True           # what the engine was last told
        self.engine_faulted = False
        self.plugged = False
        self._authorized: str | None = None       # the driver the engine was authorized for (this plug-in)
        self._local_ok_driver: str | None = None  # a driver the button or the standing driver asked for
        self._redirected: str | None = None       # the driver of a request the site redirected here ...
        self._plugged_before = False              # ... first seen with an EV already plugged in (not theirs)
        self._orphan: tuple[str, float] | None = None  # (session, first seen) at the site, unknown here
        self._acked: dict[Tag, int] = {}          # ack_grant proposals -> the grant seq they acknowledge
        self._report: Tag | None = None           # the report in flight

    @property
    def site_reachable(self) -> bool:
        """Whether the site answers (Central shows it): a result came since the last one went overdue."""
        return self.outbox.reachable

    # -- inputs ------------------------------------------------------------------------------

    def start(self, now: float) -> list[Output]:
        self._now = now
        return self._register(now)

    def engine_action(self, action: EngineAction, now: float) -> list[Output]:
        """Each action the engine core returned, once the engine carried it out (evse.py's `site_observer`)."""
        self._now = now
        out: list[Output] = []
        match action:
            case SessionOpened(session_id, driver, start):
                local_ok = driver == self._local_ok_driver
                out += self.sessions.opened(session_id, driver, start.import_kwh, local_ok, now)
            case TicketClosed(ticket):
                self._authorized = None
                out += self.sessions.ended(ticket, now)
                out += self._authorize()
            case SessionVoided(session_id, _, reason):
                self._authorized = None
                out += self.sessions.voided(session_id, reason, now)
                out += self._authorize()
            case PlugChanged(present):
                self.plugged = present
                self._plugged_before = False  # a new plug-in (or none): a redirected driver's EV may be this one
                self.reports.update(plugged=present)
                if not present:
                    self._authorized = self._local_ok_driver = None
                out += self._authorize()
            case EvMaxChanged(max_current_a):
                self.reports.update(ev_max_a=max_current_a)
            case StatusChanged(_, fault):
                self.engine_faulted = fault is not None
                self.reports.update(fault=fault)
            case _:
                return []
        return out + self._flush(now)

    def meter(self, reading: Reading, now: float) -> list[Output]:
        """Each good meter reading the engine got."""
        self._now = now
        drawn = max(reading.current_a)
        self.reports.update(drawn_a=drawn)
        self.sessions.reading(reading.import_kwh)
        out: list[Output] = []
        seq = self.lease.ack_due(drawn, now)
        if seq is not None:
            proposal = self.outbox.propose("ack_grant", {"cp": self.settings.cp, "seq": seq}, now)
            self._acked[proposal.tag] = seq
            out.append(proposal)
        return out + self._flush(now)

    def button(self, now: float, driver: str | None = None) -> list[Output]:
        """The manual-start button (`driver`: who a card reader identified; else the first local driver)."""
        self._now = now
        driver = driver or next(iter(self.settings.local_drivers), None)
        why = self._may_not_start(driver)
        if why is not None or driver is None:
            self.log.warning("bridge.button_refused", driver=driver, why=why)
            return []
        self._local_ok_driver = driver
        self._authorized = driver
        self.log.info("bridge.button", driver=driver)
        return [Authorize(driver)]

    def site_result(self, tag: Tag, result: Any, now: float) -> list[Output]:
        """The result of a command this bridge proposed (the site's JSON, decoded)."""
        self._now = now
        was_reachable = self.outbox.reachable
        pending = self.outbox.answer(tag, now)
        if self.outbox.reachable and not was_reachable:
            self.sessions.checkpoint_soon(now)
        if pending is None:
            self._folded.info("bridge.result_dropped", tag=str(tag), why="not waited for (late or not ours)")
            return []
        if not isinstance(result, dict):
            self._folded.warning("bridge.bad_result", tag=str(tag), result=str(result)[:80])
            return self._overdue(pending, now)
        out = self._result(pending, result, now)
        if result.get("error") == "not_registered" and self.registered:  # the site lost us (a new genesis)
            self.registered = False
            out += self._register(now)
        return out + self._flush(now)

    def site_view(self, view: CpView, now: float) -> list[Output]:
        """This charge point's view of the state the replica has just applied (`SiteMachine.view(cp)`)."""
        self._now = now
        self.view = view
        redirected = view.authorization if view.redirected else None
        if redirected != self._redirected:
            self._redirected, self._plugged_before = redirected, self.plugged and redirected is not None
        out = self.lease.learned(view.grant, now)
        if view.available != self.available:
            self.available = view.available
            self.log.info("bridge.available", available=view.available)
            out.append(SetAvailable(view.available))
        self.sessions.available = view.available
        s = view.session
        if s is not None and s.stop_requested is not None:
            out += self.sessions.stop_asked(s.id, s.stop_requested)
        out += self._orphans(view, now)
        return out + self._authorize() + self._flush(now)

    def tick(self, now: float) -> list[Output]:
        """Run what is due: overdue results, renewals, checkpoints, reports, tries again."""
        self._now = now
        out: list[Output] = []
        for pending in self.outbox.overdue(now):
            out += self._overdue(pending, now)
        if self._register_at is not None and now >= self._register_at:
            out += self._register(now)
        out += self.sessions.tick(now)
        if self.view is not None:
            out += self._orphans(self.view, now)
        return out + self._flush(now)

    def next_deadline(self) -> float | None:
        moments = [self.outbox.next_deadline(), self.sessions.next_deadline(), self._register_at]
        if self.registered:
            moments += [self.lease.next_renewal, self.reports.next_deadline()]
        if self._orphan is not None:
            moments.append(self._orphan[1] + self.orphan_after)
        return min((m for m in moments if m is not None), default=None)

    # -- results -------------------------------------------------------------------------------

    def _result(self, pending: Pending, result: dict[str, Any], now: float) -> list[Output]:
        op, error = pending.tag.op, result.get("error")
        match op:
            case "register":
                return self._registered(pending, result, now)
            case "renew":
                return [] if error is not None else self.lease.renewed(pending.sent, result, now)
            case "report":
                if pending.tag == self._report:
                    self.reports.done(answered=True)
                return [] if error is not None else self.lease.learned(self.lease.parse(result, op), now)
            case "ack_grant":
                return self.lease.acked(self._acked.pop(pending.tag, -1), result, now)
            case "clear_fault":
                self.reports.clearing = False
                return []
            case "start_session" | "checkpoint" | "stop_session":
                return self.sessions.result(pending, result, now)
        return []

    def _overdue(self, pending: Pending, now: float) -> list[Output]:
        match pending.tag.op:
            case "register":
                return [] if self.registered or pending.tag != self._registering else self._register_later(now)
            case "report":
                if pending.tag == self._report:
                    self.reports.done(answered=False)
            case "ack_grant":
                self.lease.ack_lost(self._acked.pop(pending.tag, -1))
            case "clear_fault":
                self.reports.clearing = False
            case "start_session" | "checkpoint" | "stop_session":
                return self.sessions.overdue(pending, now)
        return []

    # -- registration ----------------------------------------------------------------------------

    def _register(self, now: float) -> list[Output]:
        s = self.settings
        proposal = self.outbox.propose("register", {"cp": s.cp, "location": s.location[:120],
                                                    "price_eur_kwh": s.price_eur_kwh,
                                                    "max_current_a": s.max_current_a, "phases": s.phases}, now)
        self._registering, self._register_at = proposal.tag, None
        return [proposal]

    def _registered(self, pending: Pending, result: dict[str, Any], now: float) -> list[Output]:
        """Any try's answer counts (registering again changes nothing), a late one too."""
        if pending.tag == self._registering:
            self._registering = None
        if "error" in result:  # a configuration the site does not take: said loudly, tried again slowly
            self.log.error("bridge.register_refused", error=result["error"], reason=str(result.get("reason"))[:120])
            if self.registered or self._registering is not None or self._register_at is not None:
                return []
            self._register_backoff = self.settings.on_engine_clock(self.settings.retry_max_s)
            return self._register_later(now)
        if self.registered:
            return self.lease.learned(self.lease.parse(result, "register"), now)
        self.registered, self._register_backoff, self._register_at = True, 0.0, None
        self.lease.next_renewal = now  # a lease at once
        self.log.info("bridge.registered", site_reachable=self.site_reachable)
        return self.lease.learned(self.lease.parse(result, "register"), now)

    def _register_later(self, now: float) -> list[Output]:
        timeout = self.settings.on_engine_clock(self.settings.result_timeout_s)
        retry_max = self.settings.on_engine_clock(self.settings.retry_max_s)
        self._register_backoff = min(max(2 * self._register_backoff, timeout), retry_max)
        self._registering, self._register_at = None, now + self._register_backoff
        return []

    # -- what is due after every input -------------------------------------------------------------

    def _flush(self, now: float) -> list[Output]:
        if not self.registered:
            return []
        out: list[Output] = []
        cp = self.settings.cp
        if self.lease.renewal_due(now):
            self.lease.renewal_sent(now)
            out.append(self.outbox.propose("renew", {"cp": cp}, now))
        if self.reports.due(now):
            report = self.outbox.propose("report", self.reports.sending(now), now)
            self._report = report.tag
            out.append(report)
        if self.view is not None and self.reports.clear_due(self.view.fault):
            self.reports.clearing = True
            out.append(self.outbox.propose("clear_fault", {"cp": cp}, now))
        return out

    def _authorize(self) -> list[Output]:
        """With an EV plugged in and no session: the driver waiting at the site, else a standing driver."""
        if not self.plugged or self.sessions.live is not None:
            return []
        driver = self.view.authorization if self.view is not None else None
        if driver is not None and driver == self._redirected and self._plugged_before:
            driver = None  # redirected here: not for the EV that was here before
        standing = self.settings.standing_driver
        if driver is None and standing is not None and self._may_not_start(standing) is None:
            driver = self._local_ok_driver = standing
        if driver is None or driver == self._authorized:
            return []
        self._authorized = driver
        self.log.info("bridge.authorize", driver=driver, standing=driver == standing or None)
        return [Authorize(driver)]

    def _may_not_start(self, driver: str | None) -> str | None:
        """Why no session may start here now as far as this bridge knows, or None."""
        if driver is None:
            return "no local driver"
        if self.sessions.live is not None:
            return "a session is in progress"
        if not self.available:
            return "out of order"
        return None

    def _orphans(self, view: CpView, now: float) -> list[Output]:
        s = view.session
        known = s is None or s.id in self.sessions.by_id or self.engine_faulted  # faulted: maybe recovering it
        if known or not self.registered:
            self._orphan = None
            return []
        assert s is not None
        if self._orphan is None or self._orphan[0] != s.id:
            self._orphan = (s.id, now)
            return []
        if now < self._orphan[1] + self.orphan_after:
            return []
        self._orphan = None
        self.log.warning("bridge.orphan_closed", session=s.id, driver=s.driver, meter_wh=s.last_wh)
        return [self.outbox.propose("stop_session", {"cp": self.settings.cp, "session": s.id, "meter_wh": s.last_wh,
                                                     "reason": site_reason("other")}, now)]
