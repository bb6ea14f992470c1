"""The engine's sessions as the site must know them: started by the site's word, checkpointed, stopped with
their ticket, settled once. Pure; times on the engine clock.

One session's way (`Tracked`):
- opened in the engine (journaled, its first reading taken) -> `start_session` proposed;
- committed -> `ConfirmStart` (the contactor may close); refused -> `RefuseStart` (no energy, no ticket);
  for a start the bridge asked for itself (the button, a standing driver: `local_ok`), a site that does
  not answer within the timeout (or is already known unreachable) lets the local list decide, and
  the start is reported to the site when it answers (it may still refuse: then the session stops);
- while it runs, `checkpoint` every `checkpoint_s` with the meter reading (if it moved); an answer
  `ticket_exists` means the site closed it (`close_lost`): the session stops here too;
- its end (the engine's ticket, or voided before its start was confirmed) -> `stop_session` with the
  final reading, once the start is known committed; the result settles the local ticket
  (`TicketSettled`): `billed` (our stop made the site's ticket), `site_ticket` (the site had closed it
  itself, and its ticket, perhaps billed already, is the truth: ours is dropped) or `not_at_site`.
A ticket the bridge never saw opened (the journal's, after a restart) is stopped at the site as it is;
if the site never heard of it and it carries energy, it is reported late (`start_session`, then stop).
A start or stop with no answer is sent again, backing off up to `retry_max_s`: each must reach the site.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evnet.logs import EventLogger
from firmware.chargepoint.outbox import Outbox, Pending
from firmware.chargepoint.outputs import (
    BILLED,
    NOT_AT_SITE,
    SITE_TICKET,
    ConfirmStart,
    Output,
    RefuseStart,
    StopSession,
    Tag,
    TicketSettled,
)
from firmware.chargepoint.settings import BridgeSettings
from firmware.engine.metering import Ticket
from firmware.site.commands import CP_LOST, STOP_REASONS

STARTING, COMMITTED, REFUSED, UNKNOWN = "starting", "committed", "refused", "unknown"
MAX_WH = 10**12


def wh(kwh: float) -> int:
    """A meter register in kWh as the site's integer Wh."""
    return min(max(round(kwh * 1000), 0), MAX_WH)


def site_reason(reason: str) -> str:
    """The engine's reason for an end, as one of the site's `stop_session` reasons."""
    if reason in STOP_REASONS:
        return reason
    if reason.startswith("fault:"):
        return "fault"
    named = {"ev_stopped": "ev", "driver_stop": "driver", "replaced": "ev", "charge_parameter": "ev",
             "power_delivery_before_schedule": "ev"}
    if reason in named:
        return named[reason]
    if reason.startswith(("timeout:", "sequence:", "unknown_session:", "payment:")):
        return "ev"  # the EV broke off the ISO 15118 exchange
    return "other"


@dataclass
class Tracked:
    id: str
    driver: str
    first_wh: int
    local_ok: bool = False          # the local list may decide if the site does not answer
    start: str = STARTING           # STARTING, COMMITTED, REFUSED; UNKNOWN for a ticket from before a restart
    confirmed: bool = False         # the engine was told ConfirmStart
    local: bool = False             # ... on the local list's word, the site not answering
    running: bool = True            # the engine's session is on
    ticket: Ticket | None = None    # the local ticket, once it ended with one
    end_wh: int = 0
    end_reason: str = ""
    stopping: bool = False          # the engine was asked to stop it
    late_report: bool = False       # a start sent after the site said it never heard of the session
    decide_at: float | None = None  # local_ok: the local list decides at this moment if the site said nothing
    checkpoint_wh: int = 0
    next_checkpoint: float = 0.0
    waiting: str | None = None      # "start_session" or "stop_session": the command it waits an answer for
    tag: Tag | None = None          # the latest proposal of that command
    next_try: float | None = None   # when to send it again (no answer)
    backoff: float = 0.0
    tags: set[Tag] = field(default_factory=set)


class Sessions:
    def __init__(self, settings: BridgeSettings, outbox: Outbox, log: EventLogger) -> None:
        self.settings = settings
        self.outbox = outbox
        self.log = log
        self.timeout = settings.on_engine_clock(settings.result_timeout_s)
        self.retry_max = settings.on_engine_clock(settings.retry_max_s)
        self.by_id: dict[str, Tracked] = {}   # every session not yet settled with the site
        self.live: Tracked | None = None      # the engine's running session
        self.by_tag: dict[Tag, str] = {}
        self.reading_wh: int | None = None
        self.available = True                 # the site's operator has not put this point out of order

    # -- from the engine -------------------------------------------------------------------

    def opened(self, session_id: str, driver: str, first_kwh: float, local_ok: bool, now: float) -> list[Output]:
        first = wh(first_kwh)
        t = Tracked(session_id, driver, first, local_ok=local_ok, checkpoint_wh=first,
                    next_checkpoint=now + self.settings.checkpoint_s)
        self.by_id[session_id] = self.live = t
        out = self._propose_start(t, now)
        if local_ok and self.outbox.reachable:
            t.decide_at = now + self.timeout
        elif local_ok:  # the site is already known not to answer: no waiting
            out += self._decide_locally(t, now)
        return out

    def ended(self, ticket: Ticket, now: float) -> list[Output]:
        t = self.by_id.get(ticket.session_id)
        if t is None:  # a ticket from before a restart (the journal's): the site may or may not know it
            t = self.by_id[ticket.session_id] = Tracked(ticket.session_id, ticket.driver, wh(ticket.start_kwh),
                                                        start=UNKNOWN, running=False)
            self.log.info("bridge.ticket_from_journal", session=ticket.session_id, kwh=ticket.kwh)
        elif t.ticket is not None:
            return []  # told twice
        t.ticket, t.end_wh, t.end_reason = ticket, max(wh(ticket.end_kwh), t.first_wh), ticket.reason
        return self._ended(t, now)

    def voided(self, session_id: str, reason: str, now: float) -> list[Output]:
        t = self.by_id.get(session_id)
        if t is None:
            return []
        t.end_wh, t.end_reason = t.first_wh, reason
        return self._ended(t, now)

    def reading(self, kwh: float) -> None:
        self.reading_wh = wh(kwh)

    def stop_asked(self, session_id: str, reason: str) -> list[Output]:
        """The site decided the running session ends (operator, driver, its own close)."""
        t = self.live
        if t is None or t.id != session_id or t.stopping:
            return []
        t.stopping = True
        self.log.info("bridge.stop", session=session_id, reason=reason)
        return [StopSession(session_id, reason)]

    # -- from the site ---------------------------------------------------------------------

    def result(self, pending: Pending, result: dict[str, Any], now: float) -> list[Output]:
        session_id = self.by_tag.pop(pending.tag, None)
        t = None if session_id is None else self.by_id.get(session_id)
        if t is None:
            return []
        t.tags.discard(pending.tag)
        if t.tag == pending.tag:
            t.waiting, t.tag, t.next_try = None, None, None
        match pending.tag.op:
            case "start_session":
                return self._start_result(t, result, now)
            case "checkpoint":
                return self._checkpoint_result(t, result)
            case "stop_session":
                return self._stop_result(t, result, now)
        return []

    def overdue(self, pending: Pending, now: float) -> list[Output]:
        """No answer in time: a start the local list may decide is decided; the command is sent again later."""
        session_id = self.by_tag.get(pending.tag)
        t = None if session_id is None else self.by_id.get(session_id)
        if t is None or t.tag != pending.tag:
            return []
        if t.start == REFUSED:  # refused here: not sent again (a late commit is closed as an orphan, bridge.py)
            t.waiting = t.tag = None
            return [] if t.running or t.ticket is not None else self._forget(t)
        t.backoff = min(max(2 * t.backoff, self.timeout), self.retry_max)
        t.next_try = now + t.backoff
        if pending.tag.op == "start_session" and t.local_ok:
            return self._decide_locally(t, now)
        return []

    # -- time --------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Output]:
        out: list[Output] = []
        for t in list(self.by_id.values()):
            if t.decide_at is not None and now >= t.decide_at:
                out += self._decide_locally(t, now)
            if t.next_try is None or now < t.next_try:
                continue
            if t.waiting == "start_session" and t.start == STARTING:
                out += self._propose_start(t, now)
            elif t.waiting == "stop_session":
                out += self._propose_stop(t, now)
            else:
                t.next_try = None
        t = self.live
        if t is not None and t.start == COMMITTED and t.confirmed and now >= t.next_checkpoint:
            t.next_checkpoint = now + self.settings.checkpoint_s
            if self.reading_wh is not None and self.reading_wh > t.checkpoint_wh:  # nothing new: nothing to say
                t.checkpoint_wh = self.reading_wh
                out.append(self._propose(t, "checkpoint", {"meter_wh": self.reading_wh}, now))
        return out

    def checkpoint_soon(self, now: float) -> None:
        """The site answers again: the running session's reading goes at once (and a close the site made
        while it could not hear us shows in the answer)."""
        if self.live is not None:
            self.live.next_checkpoint = now

    def next_deadline(self) -> float | None:
        moments = [m for t in self.by_id.values() for m in (t.decide_at, t.next_try) if m is not None]
        t = self.live
        if t is not None and t.start == COMMITTED and t.confirmed:
            moments.append(t.next_checkpoint)
        return min(moments, default=None)

    # -- the way of one session --------------------------------------------------------------

    def _propose(self, t: Tracked, op: str, args: dict[str, Any], now: float) -> Output:
        proposal = self.outbox.propose(op, {"cp": self.settings.cp, "session": t.id, **args}, now)
        self.by_tag[proposal.tag] = t.id
        t.tags.add(proposal.tag)
        if op != "checkpoint":
            t.waiting, t.tag, t.next_try = op, proposal.tag, None
        return proposal

    def _propose_start(self, t: Tracked, now: float) -> list[Output]:
        """A start on the site's authorization names no driver: the site takes the one still waiting here, or
        refuses if it was withdrawn meanwhile. Naming one is a manual start (the button, a standing driver, a
        late report), which the site takes for any known driver: another EV would charge on the account of a
        driver who had withdrawn (site simulation seed 37)."""
        driver = t.driver if t.local_ok or t.late_report else None
        return [self._propose(t, "start_session", {"meter_wh": t.first_wh, "driver": driver}, now)]

    def _propose_stop(self, t: Tracked, now: float) -> list[Output]:
        return [self._propose(t, "stop_session", {"meter_wh": t.end_wh, "reason": site_reason(t.end_reason)}, now)]

    def _decide_locally(self, t: Tracked, now: float) -> list[Output]:
        """The site did not answer a start the local list may decide: it does (the start goes on being sent)."""
        t.decide_at = None
        if t.start != STARTING or t.confirmed or not t.running:
            return []
        if t.driver in self.settings.local_drivers and self.available:
            t.confirmed = t.local = True
            self.log.warning("bridge.start_local", session=t.id, driver=t.driver, why="the site does not answer")
            return [ConfirmStart(t.id)]
        why = "site_unreachable" if self.available else "out_of_order"
        self.log.warning("bridge.start_refused_locally", session=t.id, driver=t.driver, why=why)
        t.start = REFUSED
        return [RefuseStart(t.id, why)]

    def _ended(self, t: Tracked, now: float) -> list[Output]:
        t.running = False
        if self.live is t:
            self.live = None
        if t.start in (COMMITTED, UNKNOWN):
            return self._propose_stop(t, now)
        if t.start == REFUSED and t.waiting is None:
            return self._settle(t, NOT_AT_SITE, None)
        return []  # its start's answer decides

    def _start_result(self, t: Tracked, result: dict[str, Any], now: float) -> list[Output]:
        error = result.get("error")
        if error == "not_registered" and t.start == STARTING:  # the site does not know us yet: again, soon
            t.waiting, t.next_try = "start_session", now + self.timeout
            return []
        ours = error == "session_exists" or (error == "cp_busy" and result.get("session") == t.id)
        if t.waiting == "start_session":  # whichever try answered, the start is decided
            t.waiting = t.tag = t.next_try = None
        if error is None or ours:
            was, t.start, t.decide_at = t.start, COMMITTED, None
            if was != COMMITTED:
                self.log.info("bridge.start_committed", session=t.id, driver=t.driver, late=t.late_report or None)
            if t.running:
                if t.confirmed:
                    return []
                t.confirmed = True
                return [ConfirmStart(t.id)]
            return self._propose_stop(t, now)  # it ended meanwhile (voided, or a local or late-reported ticket)
        if t.start == COMMITTED:
            return []  # an answer to an earlier try, after a later one committed it
        self.log.warning("bridge.start_refused", session=t.id, driver=t.driver, error=error,
                         reason=str(result.get("reason", ""))[:120])
        t.start, t.decide_at = REFUSED, None
        if t.running:
            if t.confirmed:  # started on the local list; the site says no now that it hears: it stops
                return self.stop_asked(t.id, "refused")
            return [RefuseStart(t.id, str(error))]
        return self._settle(t, NOT_AT_SITE, None) if t.ticket is not None else self._forget(t)

    def _checkpoint_result(self, t: Tracked, result: dict[str, Any]) -> list[Output]:
        error = result.get("error")
        if error == "ticket_exists":  # the site closed it (it thought this point lost): it ends here too
            self.log.warning("bridge.site_closed_session", session=t.id)
            return self.stop_asked(t.id, "site_closed")
        if error is not None:
            self.log.warning("bridge.checkpoint_refused", session=t.id, error=error)
        return []

    def _stop_result(self, t: Tracked, result: dict[str, Any], now: float) -> list[Output]:
        error = result.get("error")
        ticket = result.get("ticket") if isinstance(result.get("ticket"), dict) else None
        if error is None:
            return self._settle(t, BILLED, ticket)
        if error == "ticket_exists":
            mine = ticket is not None and ticket.get("reason") != CP_LOST
            if not mine:
                self.log.warning("bridge.site_ticket_kept", session=t.id, site_wh=None if ticket is None
                                 else ticket.get("energy_wh"), local_wh=t.end_wh - t.first_wh)
            return self._settle(t, BILLED if mine else SITE_TICKET, ticket)
        if error == "meter_backwards" and isinstance(result.get("last_wh"), int) and result["last_wh"] > t.end_wh:
            t.end_wh = result["last_wh"]  # never below the last checkpoint the site has
            return self._propose_stop(t, now)
        if error == "unknown_session":
            if t.start == UNKNOWN and t.ticket is not None and t.ticket.kwh > 0 and not t.late_report:
                t.start, t.late_report = STARTING, True  # it ran on the local list before a restart: report it
                return self._propose_start(t, now)
            return self._settle(t, NOT_AT_SITE, None) if t.ticket is not None else self._forget(t)
        if error != "not_registered":  # that one passes as soon as the bridge has registered again
            self.log.error("bridge.stop_refused", session=t.id, error=error, reason=str(result.get("reason", ""))[:120])
        t.backoff = self.timeout if error == "not_registered" else self.retry_max
        t.waiting, t.next_try = "stop_session", now + t.backoff
        return []

    def _settle(self, t: Tracked, outcome: str, site_ticket: dict[str, Any] | None) -> list[Output]:
        self._forget(t)
        if t.ticket is None:
            return []
        self.log.info("bridge.ticket_settled", session=t.id, outcome=outcome, local_kwh=t.ticket.kwh)
        return [TicketSettled(t.id, outcome, site_ticket)]

    def _forget(self, t: Tracked) -> list[Output]:
        self.by_id.pop(t.id, None)
        for tag in t.tags:
            self.by_tag.pop(tag, None)
        if self.live is t:
            self.live = None
        return []
