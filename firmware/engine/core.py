"""The charge point's engine as one sans-I/O object: pilot + session + lease + metering.

`EngineCore` takes what the adapters saw (pilot readings, EV messages, meter readings and
failures, buttons, authorizations, grants) with the time, and returns what they must do
(`SetContactor`, `SetPwm`, `SetPilotError`, `SendMessage`, `ReadMeter`, `StatusChanged`,
`SessionOpened`, `TicketClosed`). `evse.py` runs it on a control loop; the tests run it on a ManualClock.

How the machines meet: the pilot's plug/unplug drives the session; the session's `Energize`
and `UseMode` drive the pilot; any fault opens the contactor (pilot) and ends the session in
Failure; the lease's current feeds both. A session's metering starts on a reading taken
before its energy flowed and ends on a reading asked for after the contactor opened (or on the
last good reading if the meter died). Nothing metered is lost: the session's first reading goes
out as `SessionOpened` (the adapter journals it) before anything that may close its contactor,
which waits for that reading; a session a crash left open is closed from the meter by `recover`.

A charge point of a site (`confirm_starts`) runs its sessions under the site's word: a session
waits for `confirm_start` (the site committed its start) before its contactor may close;
`refuse_start` ends it without energy, and a session that ends unconfirmed leaves no ticket
(`SessionVoided`: nothing flowed, and the site has no session to bill). `set_available(False)` is
the operator's OUT_OF_ORDER. `PlugChanged` and `EvMaxChanged` tell the site's bridge what it reports.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from evnet.config.schema import SafetyConfig
from evnet.logs import EventLogger, FoldedLog, event_logger
from firmware.engine import pilot_sm as p
from firmware.engine import session_sm as s
from firmware.engine.actions import (
    Action,
    EvMaxChanged,
    PlugChanged,
    ReadMeter,
    SendMessage,
    SessionOpened,
    SessionVoided,
    StatusChanged,
    TicketClosed,
)
from firmware.engine.checks import RELAY_WELDED, MeterChecks
from firmware.engine.lease import CurrentLease
from firmware.engine.metering import Reading, SessionMeter, Ticket
from firmware.protocols import iso15118 as m

HISTORY = 32


def _reads_last(method: Callable[..., list[Action]]) -> Callable[..., list[Action]]:
    """Meter reads go after every output change of the same step: a reading asked for when the
    contactor opens must be taken after it opened."""

    def wrapper(*args: Any, **kwargs: Any) -> list[Action]:
        actions = method(*args, **kwargs)
        return [a for a in actions if not isinstance(a, ReadMeter)] + [a for a in actions if isinstance(a, ReadMeter)]

    wrapper.__doc__, wrapper.__name__ = method.__doc__, method.__name__
    return wrapper


class EngineCore:
    """One charge point. Every input takes `now` (the domain clock's monotonic seconds)."""

    def __init__(self, cp: str, *, price_eur_kwh: float, max_current_a: float, fallback_a: float,
                 local_drivers: tuple[str, ...] | list[str] = (), phases: int = 3,
                 new_session_id: Callable[[], str] | None = None, log: EventLogger | None = None,
                 safety: SafetyConfig | None = None, confirm_starts: bool = False,
                 **session_options: float) -> None:
        self.cp = cp
        self.log = log or event_logger("engine", cp=cp)
        self.pilot = p.PilotMachine()
        self.session = s.SessionMachine(cp, local_drivers=local_drivers, phases=phases,
                                        new_session_id=new_session_id, confirm_starts=confirm_starts,
                                        **session_options)
        self.lease = CurrentLease(max_current_a, fallback_a)
        self.meter = SessionMeter(cp, price_eur_kwh)
        self.status = "AVAILABLE"
        self.fault_code: str | None = None
        self.available = True  # False: OUT_OF_ORDER (an operator's stop, through the site)
        self._ev_max_a: float | None = None
        self.allowed_a = -1.0
        self.limit_reason = ""  # why the site granted what it did (its `limit_reason`), for telemetry
        self._limit_lapsed = True  # the lease ran out: the fallback current, whatever the site said
        self.last_reading: Reading | None = None
        self.tickets: deque[Ticket] = deque(maxlen=HISTORY)  # the latest, for tests and diagnostics
        self.sessions: deque[s.SessionStarted] = deque(maxlen=HISTORY)
        self._pending_start: s.SessionStarted | None = None
        self._energize_held = False  # the session may have energy once its first reading is taken
        self._recovering = False  # the pending close is of a session a crash left open
        self._pending_close: str | None = None
        self._token = 0
        self._close_token = 0
        self._faults_seen: set[str] = set()
        self._session_state = self.session.state
        self.checks = MeterChecks(safety, self.log)  # over-current, welded contactor, stuck meter
        self._hardware_faults: dict[str, str] = {}  # HAL part -> the fault it reported
        self.bad_messages = 0  # EV messages that were not valid ISO 15118 messages
        self._log_now = 0.0  # the `now` of the input being handled: repeated log lines fold on domain time
        self._folded = FoldedLog(self.log, monotonic=lambda: self._log_now)

    # ------------------------------------------------------------------ inputs

    @_reads_last
    def start(self, now: float) -> list[Action]:
        """First call: drive the outputs to their initial state and announce the status."""
        actions: list[Action] = [p.SetContactor(False, "start"), p.SetPwm(None), self._token_read()]
        return actions + self._apply_current(now) + [StatusChanged(self.status, self.fault_code)]

    @_reads_last
    def pilot_reading(self, state: p.PilotState | str, now: float, diode_fault: bool = False) -> list[Action]:
        """What the pilot reads (on every change the cable reports)."""
        actions = self._pilot(self.pilot.pilot(state, now), now)
        if diode_fault:
            actions += self.fault("diode_fault", now)
        return actions

    @_reads_last
    def message(self, data: Any, now: float) -> list[Action]:
        """A dict from the cable's message channel; one that is not a valid message is dropped, counted
        (`bad_messages`) and logged, and changes nothing (the EV's sequence timer still runs)."""
        try:
            msg = m.decode(data)
        except m.MessageError as exc:
            self.bad_messages += 1
            self._log_now = now
            self._folded.warning("engine.bad_message", source="ev", error=str(exc), dropped=self.bad_messages)
            return []
        self.log.debug("engine.message_in", type=type(msg).__name__)
        return self._session(self.session.receive(msg, now), now)

    @_reads_last
    def authorize(self, driver_id: str, now: float) -> list[Action]:
        return self._session(self.session.authorize(driver_id, now), now)

    @_reads_last
    def manual_start(self, now: float, driver_id: str | None = None) -> list[Action]:
        return self._session(self.session.manual_start(now, driver_id), now)

    @_reads_last
    def stop(self, reason: str, now: float, session_id: str | None = None) -> list[Action]:
        """End the running session (`session_id`: only if it is that one, so a late stop never ends the next)."""
        if session_id is not None and session_id != self.session.session_id:
            return []
        return self._session(self.session.stop(reason, now), now)

    @_reads_last
    def confirm_start(self, session_id: str, now: float) -> list[Action]:
        """The site committed the start of `session_id`: its contactor may close (with `confirm_starts`)."""
        return self._session(self.session.confirm(session_id, now), now)

    @_reads_last
    def refuse_start(self, session_id: str, why: str, now: float) -> list[Action]:
        """The site refused the start of `session_id`: it ends without energy and without a ticket."""
        return self._session(self.session.refuse(session_id, why, now), now)

    def set_available(self, available: bool, now: float) -> list[Action]:
        """The operator's OUT_OF_ORDER (False) or its end: the status says it; the site refuses new sessions."""
        self.available = available
        return self._update_status(now)

    @_reads_last
    def emergency_stop(self, pressed: bool, now: float) -> list[Action]:
        """The emergency-stop button: contactor open at once while pressed; released -> fault cleared."""
        if pressed:
            return self.fault("emergency_stop", now)
        return self.clear_fault("emergency_stop", now)

    @_reads_last
    def fault(self, code: str, now: float) -> list[Action]:
        return self._pilot(self.pilot.fault(code, now), now)

    @_reads_last
    def clear_fault(self, code: str, now: float) -> list[Action]:
        return self._pilot(self.pilot.clear_fault(code, now), now)

    @_reads_last
    def hardware_fault(self, part: str, code: str | None, now: float) -> list[Action]:
        """A HAL part (`part`: "pilot", ...) failed with `code`, or works again (None): its fault is raised,
        replaced or cleared. It holds until the part itself says it recovered."""
        previous = self._hardware_faults.get(part)
        if code == previous:
            return []
        actions = self.clear_fault(previous, now) if previous is not None else []
        if code is None:
            del self._hardware_faults[part]
        else:
            self._hardware_faults[part] = code
            actions += self.fault(code, now)
        return actions

    @_reads_last
    def grant(self, current_a: float, until: float, now: float) -> list[Action]:
        """Allow `current_a` until `until` (the configuration's renewal, later the site's `set_limit`)."""
        self.lease.grant(current_a, until)
        return self._apply_current(now)

    def set_limit(self, amps: float, lease_until: float, now: float, reason: str = "") -> list[Action]:
        """The site's form of `grant` (docs/architecture.md: limits are granted with a lease); `reason` is the
        site's `limit_reason`, shown in telemetry so a driver knows why the car charges as it does."""
        self.limit_reason = reason
        return self.grant(amps, lease_until, now)

    @_reads_last
    def meter_reading(self, reading: Reading, now: float, token: int = 0) -> list[Action]:
        """A good reading (`token`: the `ReadMeter` it answers, 0 for a routine poll)."""
        self.last_reading = reading
        actions: list[Action] = []
        if "meter" in self.pilot.faults:
            self.log.info("engine.meter_recovered", import_kwh=reading.import_kwh)
            actions += self.clear_fault("meter", now)
        if self._pending_start is not None:
            started, self._pending_start = self._pending_start, None
            actions += self._open_metering(started, reading, now)
        else:
            live = self.meter.update(reading)
            if live is not None:
                self.session.update_meter(live.energy_kwh)
        if self._pending_close is not None and token >= self._close_token and not self.pilot.contactor:
            recovered, self._recovering = self._recovering, False
            actions += self._close_ticket(self._pending_close, reading)
            if recovered:
                actions += self.clear_fault("recovery", now)
        code = self.checks.reading(reading, now)  # firmware/engine/checks.py
        if code is not None:
            actions += self.fault(code, now)
        return actions

    @_reads_last
    def meter_failed(self, error: str, faulted: bool, now: float) -> list[Action]:
        """A read failed; once the driver calls the meter faulted, the charge point faults at once (the
        driver logs each failure, folded; this logs the fault once)."""
        if not faulted:
            return []
        if "meter" not in self.pilot.faults:
            self.log.error("engine.meter_faulted", error=error)
        actions = self.fault("meter", now)
        if self._pending_close is not None and not self._recovering:  # no end reading will come: the last good one
            actions += self._close_ticket(self._pending_close, None)
        return actions

    @_reads_last
    def recover(self, session_id: str, driver: str, start: Reading, reason: str, now: float,
                reading: Reading | None) -> list[Action]:
        """A session the journal found open at start: close it from the meter (its register kept counting),
        with `reason`. With no reading yet the point is FAULTED ("recovery") until one comes: no new
        session before this one's ticket, and no ticket on a reading taken before the crash."""
        self.log.warning("engine.session_recovered", session=session_id, driver=driver, reason=reason)
        self.meter.start(session_id, driver, start)
        if reading is not None:
            self.last_reading = reading
            return self._close_ticket(reason, reading)
        self._pending_close, self._recovering = reason, True
        return self.fault("recovery", now) + [self._token_read(closing=True)]

    @_reads_last
    def tick(self, now: float) -> list[Action]:
        """Run every timer that is due: pilot, session, lease."""
        actions = self._pilot(self.pilot.tick(now), now)
        actions += self._session(self.session.tick(now), now)
        actions += self._apply_current(now)
        self.lease.lapse(now)
        return actions

    # ------------------------------------------------------------------ queries

    @property
    def safety_cut(self) -> bool:
        """True while the contactor cannot stop the energy (welded shut): the monitor must cut the safety line."""
        return RELAY_WELDED in self.pilot.faults

    def pending_end_read(self) -> ReadMeter | None:
        """The meter read a finished session's ticket still waits for (a process stopping must do it now)."""
        if self._pending_close is None or self.pilot.contactor:
            return None
        return ReadMeter(self._close_token)

    def next_deadline(self) -> float | None:
        moments = (self.pilot.next_deadline(), self.session.next_deadline(), self.lease.expires_at)
        return min((t for t in moments if t is not None), default=None)

    def telemetry(self) -> dict[str, Any] | None:
        """The live figures of the running session (docs/mqtt-api.md's telemetry fields), None without one."""
        live = self.meter.live
        if live is None:
            return None
        return {"session": self.meter.session_id, "driver": self.meter.driver, "power_kw": live.power_kw,
                "energy_kwh": live.energy_kwh, "cost_eur": live.cost_eur, "current_a": live.current_a,
                "limit_a": self.allowed_a,
                "limit_reason": "fallback" if self._limit_lapsed else (self.limit_reason or None)}

    # ------------------------------------------------------------------ plumbing between the machines

    def _pilot(self, actions: list[p.Action], now: float) -> list[Action]:
        out: list[Action] = []
        for action in actions:
            if isinstance(action, p.PilotChanged):
                self.log.info("engine.pilot", previous=action.previous.value, state=action.state.value)
            elif isinstance(action, p.EvPresence):
                out.append(PlugChanged(action.present))
                session = self.session.plugged_in(now) if action.present else self.session.unplugged(now)
                out += self._session(session, now)
            else:
                if isinstance(action, p.SetContactor):
                    self.log.info("engine.contactor", closed=action.closed, reason=action.reason)
                    self.checks.contactor(action.closed, now)
                    if not action.closed and self._pending_close is not None:
                        out.append(self._token_read(closing=True))
                out.append(action)
        new_faults = set(self.pilot.faults) - self._faults_seen
        self._faults_seen = set(self.pilot.faults)
        for code in sorted(new_faults):
            self.log.warning("engine.fault", code=code)
            out += self._session(self.session.fault(code, now), now)
        return out + self._update_status(now)

    def _session(self, actions: list[s.Action], now: float) -> list[Action]:
        out: list[Action] = []
        if self.session.state is not self._session_state:
            self.log.info("engine.session_state", previous=self._session_state.value, state=self.session.state.value,
                          failure=self.session.failure if self.session.state is s.SessionState.FAILURE else None)
            self._session_state = self.session.state
        for action in actions:
            if isinstance(action, s.Send):
                out.append(SendMessage(action.message.to_dict()))
            elif isinstance(action, s.Energize):
                if action.on and not self.meter.active:  # no contactor before the first reading is journaled
                    self._energize_held = True
                    continue
                self._energize_held = False
                out += self._pilot(self.pilot.set_ready(action.on, now), now)
            elif isinstance(action, s.UseMode):
                self.log.info("engine.mode", mode=action.mode.value)
                out += self._pilot(self.pilot.set_mode(action.mode, now), now)
            elif isinstance(action, s.SessionStarted):
                self.log.info("engine.session_started", session=action.session_id, driver=action.driver,
                              hlc=action.hlc, evcc=action.evcc_id or None)
                if self._pending_close is not None:  # a new session before the last one's end reading
                    out += self._close_ticket(self._pending_close, None)
                self._pending_start = action
                self.sessions.append(action)
                if self.last_reading is not None and "meter" not in self.pilot.faults:
                    self._pending_start = None
                    out += self._open_metering(action, self.last_reading, now)
                else:
                    out.append(self._token_read())
            elif isinstance(action, s.SessionEnded):
                self.log.info("engine.session_ended", session=action.session_id, reason=action.reason,
                              confirmed=action.confirmed)
                out += self._end_metering(action.reason, action.confirmed)
            elif isinstance(action, s.AuthorizationExpired):
                self.log.warning("engine.authorization_expired", driver=action.driver,
                                 after_s=self.session.connection_timeout_s)
            elif isinstance(action, s.Refused):
                self.log.warning("engine.refused", what=action.what, why=action.why)
        session = self.session
        ev_max = session.ev_max_a if session.hlc and session.schedule_id else None
        if ev_max != self._ev_max_a:
            self._ev_max_a = ev_max
            out.append(EvMaxChanged(ev_max))
        return out + self._update_status(now)

    def _open_metering(self, started: s.SessionStarted, reading: Reading, now: float) -> list[Action]:
        """Start metering on `reading`; a contactor held for it may close after the journal has it."""
        self.meter.start(started.session_id, started.driver, reading)
        out: list[Action] = [SessionOpened(started.session_id, started.driver, reading)]
        if self._energize_held:
            self._energize_held = False
            out += self._pilot(self.pilot.set_ready(True, now), now)
        return out

    def _end_metering(self, reason: str, confirmed: bool = True) -> list[Action]:
        if self._pending_start is not None:  # never got a first reading: nothing was delivered
            self.log.warning("engine.session_unmetered", session=self._pending_start.session_id, reason=reason)
            self._pending_start = None
            self._energize_held = False
            return []
        if not self.meter.active:
            return []
        if not confirmed:  # its contactor never closed: nothing to bill, and the site has no session to close
            voided = self.meter.close(reason)
            self.log.info("engine.session_voided", session=voided.session_id, driver=voided.driver, reason=reason)
            return [SessionVoided(voided.session_id, voided.driver, reason)]
        if "meter" in self.pilot.faults or self.last_reading is None:
            return self._close_ticket(reason, None)
        self._pending_close = reason
        return [] if self.pilot.contactor else [self._token_read(closing=True)]

    def _close_ticket(self, reason: str, reading: Reading | None) -> list[Action]:
        self._pending_close = None
        ticket = self.meter.close(reason, reading)
        self.tickets.append(ticket)
        self.log.info("engine.ticket", **ticket.to_dict())
        return [TicketClosed(ticket)]

    def _token_read(self, closing: bool = False) -> ReadMeter:
        self._token += 1
        if closing:
            self._close_token = self._token
        return ReadMeter(self._token)

    def _apply_current(self, now: float) -> list[Action]:
        amps = self.lease.current(now)
        self._limit_lapsed = self.lease.expired(now)
        if amps == self.allowed_a:
            return []
        self.log.info("engine.allowed_current", amps=amps, lease_expired=self.lease.expired(now))
        self.allowed_a = amps
        self.checks.offer(amps, now)
        out = self._pilot(self.pilot.set_current(amps, now), now)
        return out + self._session(self.session.set_current(amps, now), now)

    def _update_status(self, now: float) -> list[Action]:
        faults = sorted(self.pilot.faults)
        fault = ",".join(faults) if faults else None
        if fault:
            status = "FAULTED"
        elif not self.available:
            status = "OUT_OF_ORDER"
        elif self.session.started:
            status = "CHARGING"
        else:
            status = "AVAILABLE"
        if (status, fault) == (self.status, self.fault_code):
            return []
        self.status, self.fault_code = status, fault
        self.log.info("engine.status", status=status, fault=fault)
        return [StatusChanged(status, fault)]
