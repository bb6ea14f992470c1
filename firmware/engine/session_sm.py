"""The charging session, SECC side of the ISO 15118-2 message flow, sans-I/O.

States (docs/architecture.md): WaitingEV -> BeginSession -> Authentication -> EnergyNegotiation ->
Charging -> EndSession -> WaitingEV, plus RestartingSession (paused) and Failure.

The EV asks, the SECC answers: every request gets exactly one response (`Send`), and every
awaited request has a deadline (`sequence_timeout_s`, ISO's V2G_SECC_Sequence_Timeout); a
missed deadline, a request out of sequence or for another session leads to Failure, which
withdraws the energy and holds until the EV is unplugged (a start the site refused, or a charge without
profile the EVSE stopped, also ends with a new authorization: `authorize`).

An EV that says nothing within `hlc_wait_s` of plugging in has no high-level communication:
it charges "without profile" on the PWM duty alone (`UseMode(Mode.PWM)`), once authorized.
Authorization comes from `authorize(driver_id)` (the app; later the site) or from the
manual-start button checked against the local list (`manual_start`). One given with no EV
plugged in lapses after `connection_timeout_s` (OCPP's ConnectionTimeOut: the driver did not
plug in), so an EV that comes later is not billed to that driver.

With `confirm_starts` (a charge point of a site) a session that started waits for `confirm`
(the site committed its start) before its energy may flow: no `Energize(True)` for an EV on PWM,
"Ongoing" to an ISO 15118 EV's AuthorizationReq. `refuse` (the site said no) ends it in Failure;
a session that ends unconfirmed says so in its `SessionEnded` (no energy can have flowed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from itertools import count

from firmware.engine.pilot_sm import Mode
from firmware.protocols import iso15118 as m

SEQUENCE_TIMEOUT_S = 60.0
HLC_WAIT_S = 5.0
AUTH_TIMEOUT_S = 300.0
# OCPP 1.6's ConnectionTimeOut (2.0.1: TxCtrlr.EVConnectionTimeOut) has no default in the standard;
# reference configurations use 10 s (EVerest libocpp) to 50 s (ChargePi-go). A minute to walk to the car.
CONNECTION_TIMEOUT_S = 60.0


class SessionState(StrEnum):
    WAITING_EV = "WaitingEV"
    BEGIN_SESSION = "BeginSession"
    AUTHENTICATION = "Authentication"
    ENERGY_NEGOTIATION = "EnergyNegotiation"
    CHARGING = "Charging"
    END_SESSION = "EndSession"
    RESTARTING_SESSION = "RestartingSession"
    FAILURE = "Failure"


@dataclass(frozen=True)
class Send:
    """Send this response to the EV over the cable's message channel."""

    message: m.Message


@dataclass(frozen=True)
class Energize:
    """The EVSE is (or is no longer) ready to deliver energy: the pilot machine's `set_ready`."""

    on: bool


@dataclass(frozen=True)
class UseMode:
    """Advertise the current by HLC (5 %) or by the PWM duty (charging without profile)."""

    mode: Mode


@dataclass(frozen=True)
class SessionStarted:
    session_id: str
    driver: str
    hlc: bool
    evcc_id: str = ""


@dataclass(frozen=True)
class SessionEnded:
    session_id: str
    reason: str
    confirmed: bool = True  # False: it ended before its start was confirmed, so its energy never flowed


@dataclass(frozen=True)
class AuthorizationExpired:
    """An authorization given with no EV lapsed: no EV plugged in within `connection_timeout_s`."""

    driver: str


@dataclass(frozen=True)
class Refused:
    """An input that was not acted on (bad message, unknown driver, ...): for the log."""

    what: str
    why: str


Action = Send | Energize | UseMode | SessionStarted | SessionEnded | AuthorizationExpired | Refused

# The request each state waits for next (besides the ones always accepted in Charging).
_FLOW = {
    SessionState.BEGIN_SESSION: (m.SessionSetupReq,),
    SessionState.RESTARTING_SESSION: (m.SessionSetupReq,),
    SessionState.END_SESSION: (m.SessionStopReq,),
    SessionState.CHARGING: (m.ChargingStatusReq, m.PowerDeliveryReq, m.SessionStopReq),
}


class SessionMachine:
    """One connector's sessions. Feed it pilot events, EV messages, authorizations and time."""

    def __init__(self, evse_id: str, local_drivers: Iterable[str] = (), phases: int = 3,
                 new_session_id: Callable[[], str] | None = None, sequence_timeout_s: float = SEQUENCE_TIMEOUT_S,
                 hlc_wait_s: float = HLC_WAIT_S, auth_timeout_s: float = AUTH_TIMEOUT_S,
                 connection_timeout_s: float = CONNECTION_TIMEOUT_S, confirm_starts: bool = False) -> None:
        self.evse_id = evse_id
        self.local_drivers = tuple(local_drivers)
        self.energy_mode = "AC_three_phase_core" if phases == 3 else "AC_single_phase_core"
        counter = count(1)
        self._new_id = new_session_id or (lambda: f"{evse_id}-{next(counter):04d}")
        self.sequence_timeout_s = sequence_timeout_s
        self.hlc_wait_s = hlc_wait_s
        self.auth_timeout_s = auth_timeout_s
        self.connection_timeout_s = connection_timeout_s
        self.confirm_starts = confirm_starts
        self.confirmed = False  # the started session may have energy (set at its start unless `confirm_starts`)
        self.state = SessionState.WAITING_EV
        self.plugged = False
        self.hlc = False
        self.session_id = ""
        self.started = False  # SessionStarted was sent for `session_id`
        self.driver: str | None = None
        self.pending_driver: str | None = None  # authorized before a session could use it
        self.pending_deadline: float | None = None  # when `pending_driver` lapses if no EV plugs in
        self.evcc_id = ""
        self.expected: tuple[type[m.Message], ...] = ()
        self.deadline: float | None = None
        self.deadline_reason = ""
        self.allowed_a = 0.0
        self.offered_a = 0.0
        self.ev_max_a = 0.0
        self.ev_energy_kwh = 0.0
        self.departure_s = 0.0
        self.meter_kwh = 0.0
        self.schedule_id = 0
        self.notify: str = "None"  # the next ChargingStatusRes's EVSENotification
        self.stop_reason: str | None = None  # why the EVSE asked an HLC EV to stop
        self.failure: str | None = None  # why the machine is in Failure
        self.auth_deadline: float | None = None

    # ------------------------------------------------------------------ inputs from the pilot

    def plugged_in(self, now: float) -> list[Action]:
        """An EV is seen (pilot A -> B, or B after a fault's -12 V hid it): wait for it to open an ISO 15118
        session, or fall back to PWM. The Failure a fault left ends here: to the EV, who saw the -12 V
        too, this is a new connection, as after a replug."""
        self.plugged = True
        self.pending_deadline = None  # the EV came: an authorization waiting for it is used, not lapsed
        if self.state is SessionState.FAILURE:
            self.failure = None
            self._enter(SessionState.WAITING_EV, now)
        if self.state is not SessionState.WAITING_EV:
            return []
        self.hlc = False
        return [UseMode(Mode.HLC)] + self._enter(SessionState.BEGIN_SESSION, now, (m.SessionSetupReq,),
                                                 self.hlc_wait_s, "no_hlc")

    def unplugged(self, now: float) -> list[Action]:
        """Pilot -> A: whatever the session was doing, it is over."""
        if self.plugged:
            self.pending_driver = self.pending_deadline = None  # one made for this plug-in does not outlive it
        self.plugged = False
        actions = self._end("unplugged") + [Energize(False)]
        self.failure = None
        return actions + self._enter(SessionState.WAITING_EV, now)

    # ------------------------------------------------------------------ inputs from people and the site

    def authorize(self, driver_id: str, now: float) -> list[Action]:
        """A driver is authorized (by the app, later the site) to charge here."""
        if not driver_id:
            return [Refused("authorize", "empty driver id")]
        actions = self._start_over(now) if self._over() else []
        if self.driver is not None:
            return [Refused("authorize", f"session already authorized for {self.driver}")]
        self.pending_driver = driver_id
        self.pending_deadline = None if self.plugged else now + self.connection_timeout_s
        return actions + self._maybe_start(now)

    def _over(self) -> bool:
        """The EV is still plugged in, its session over without a fault: the site refused its start, or the
        EVSE stopped a charge without profile (an operator's stop, a driver's). A new authorization then starts
        over as after a replug: the driver whose request the site accepted is not told to unplug first."""
        if not self.plugged or self.started:
            return False
        refused = self.state is SessionState.FAILURE and (self.failure or "").startswith("refused:")
        return refused or (self.state is SessionState.END_SESSION and not self.hlc)

    def _start_over(self, now: float) -> list[Action]:
        self.failure = None
        self._enter(SessionState.WAITING_EV, now)
        return self.plugged_in(now)

    def manual_start(self, now: float, driver_id: str | None = None) -> list[Action]:
        """The manual-start button: a plain press charges to the first local driver (the point's
        owner); a reader that identifies the driver passes its id, which must be on the local list."""
        if not self.local_drivers:
            return [Refused("manual_start", "no local drivers configured")]
        driver = self.local_drivers[0] if driver_id is None else driver_id
        if driver not in self.local_drivers:
            return [Refused("manual_start", f"driver {driver!r} is not on the local list")]
        return self.authorize(driver, now)

    def confirm(self, session_id: str, now: float) -> list[Action]:
        """The site committed the start of `session_id`: its energy may flow (an ISO 15118 EV hears "Finished"
        at its next AuthorizationReq). Anything else (another session, none, confirmed already) is ignored."""
        if not self.started or session_id != self.session_id or self.confirmed:
            return []
        self.confirmed = True
        if not self.hlc and self.state is SessionState.CHARGING:
            return [Energize(True)]
        return []

    def refuse(self, session_id: str, why: str, now: float) -> list[Action]:
        """The site refused the start of `session_id`: it ends in Failure, without energy (until unplugged or
        authorized again)."""
        if not self.started or session_id != self.session_id or self.confirmed:
            return []
        return self._fail(f"refused:{why}", now)

    def set_current(self, amps: float, now: float) -> list[Action]:
        """The allowed current changed: an HLC EV is told at its next ChargingStatus and asked to renegotiate."""
        changed = amps != self.allowed_a
        self.allowed_a = amps
        if changed and self.hlc and self.state is SessionState.CHARGING and self.notify == "None":
            self.notify = "ReNegotiation"
        return []

    def update_meter(self, kwh: float) -> None:
        self.meter_kwh = kwh

    def stop(self, reason: str, now: float) -> list[Action]:
        """The EVSE ends the charge (driver, operator, EV full by the meter): withdraw energy, tell the EV."""
        if self.state in (SessionState.WAITING_EV, SessionState.FAILURE) or not self.plugged:
            return []
        actions: list[Action] = [Energize(False)]
        if self.hlc and self.state is SessionState.CHARGING:
            self.notify = "StopCharging"  # the EV answers with PowerDelivery(Stop), SessionStop
            self.stop_reason = reason
            return actions
        return actions + self._end(reason) + self._enter(SessionState.END_SESSION, now)

    def fault(self, code: str, now: float) -> list[Action]:
        """The charge point faulted (meter, pilot, relay...): the session ends in Failure."""
        if self.state is SessionState.WAITING_EV and not self.started:
            return []
        return self._fail(f"fault:{code}", now)

    # ------------------------------------------------------------------ messages from the EV

    def receive(self, msg: m.Message, now: float) -> list[Action]:
        if not msg.is_request:
            return [Refused(type(msg).__name__, "the SECC only takes requests")]
        name = type(msg).__name__
        if self.state is SessionState.FAILURE or not self.plugged:
            return [self._respond(msg, m.FAILED)]
        if self.state is SessionState.WAITING_EV and isinstance(msg, m.SessionSetupReq):
            self.state, self.expected = SessionState.BEGIN_SESSION, (m.SessionSetupReq,)  # cable still plugged in
        if not isinstance(msg, self.expected):
            return [self._respond(msg, m.FAILED_SEQUENCE)] + self._fail(f"sequence:{name}", now)
        if not isinstance(msg, m.SessionSetupReq) and msg.session_id != self.session_id:
            return [self._respond(msg, m.FAILED_UNKNOWN_SESSION)] + self._fail(f"unknown_session:{name}", now)
        return getattr(self, "_on_" + name)(msg, now)

    def _on_SessionSetupReq(self, msg: m.SessionSetupReq, now: float) -> list[Action]:  # noqa: N802
        actions: list[Action] = []
        if self.state is SessionState.RESTARTING_SESSION and msg.session_id == self.session_id:
            code = m.OK_OLD_SESSION
        else:
            actions += self._end("replaced")
            self.session_id, self.driver, self.started, code = self._new_id(), None, False, m.OK_NEW_SESSION
        self.hlc, self.evcc_id = True, msg.evcc_id
        actions.append(Send(m.SessionSetupRes(session_id=self.session_id, response_code=code, evse_id=self.evse_id)))
        return actions + self._enter(SessionState.AUTHENTICATION, now, (m.ServiceDiscoveryReq,))

    def _on_ServiceDiscoveryReq(self, msg: m.ServiceDiscoveryReq, now: float) -> list[Action]:  # noqa: N802
        res = m.ServiceDiscoveryRes(session_id=self.session_id, energy_modes=(self.energy_mode,))
        return [Send(res)] + self._await((m.PaymentServiceSelectionReq,), now)

    def _on_PaymentServiceSelectionReq(self, msg: m.PaymentServiceSelectionReq, now: float) -> list[Action]:  # noqa: N802
        if msg.payment_option != "ExternalPayment":
            res = m.PaymentServiceSelectionRes(session_id=self.session_id, response_code=m.FAILED_PAYMENT)
            return [Send(res)] + self._fail(f"payment:{msg.payment_option}", now)
        res = m.PaymentServiceSelectionRes(session_id=self.session_id)
        return [Send(res)] + self._await((m.AuthorizationReq,), now)

    def _on_AuthorizationReq(self, msg: m.AuthorizationReq, now: float) -> list[Action]:  # noqa: N802
        actions = self._maybe_start(now)
        done = self.started and self.confirmed
        actions.append(Send(m.AuthorizationRes(session_id=self.session_id,
                                               evse_processing="Finished" if done else "Ongoing")))
        if done:
            return actions + self._enter(SessionState.ENERGY_NEGOTIATION, now, (m.ChargeParameterDiscoveryReq,))
        if self.auth_deadline is None:
            self.auth_deadline = now + self.auth_timeout_s
        return actions + self._await((m.AuthorizationReq,), now)

    def _on_ChargeParameterDiscoveryReq(self, msg: m.ChargeParameterDiscoveryReq, now: float) -> list[Action]:  # noqa: N802
        if not (msg.max_current_a > 0 and msg.energy_request_kwh >= 0 and msg.departure_time_s >= 0):
            res = m.ChargeParameterDiscoveryRes(session_id=self.session_id, response_code=m.FAILED_CHARGE_PARAMETER)
            return [Send(res)] + self._fail("charge_parameter", now)
        self.ev_max_a, self.ev_energy_kwh, self.departure_s = msg.max_current_a, msg.energy_request_kwh, \
            msg.departure_time_s
        self.offered_a = min(self.allowed_a, self.ev_max_a)
        self.schedule_id += 1
        res = m.ChargeParameterDiscoveryRes(session_id=self.session_id, evse_max_current_a=self.offered_a,
                                            schedule_id=self.schedule_id,
                                            schedule=(m.ScheduleEntry(0.0, self.offered_a),))
        return [Send(res)] + self._await((m.PowerDeliveryReq,), now)

    def _on_PowerDeliveryReq(self, msg: m.PowerDeliveryReq, now: float) -> list[Action]:  # noqa: N802
        res = Send(m.PowerDeliveryRes(session_id=self.session_id))
        if msg.charge_progress == "Stop":
            return [Energize(False), res] + self._enter(SessionState.END_SESSION, now, (m.SessionStopReq,))
        if msg.charge_progress == "Renegotiate":
            self.notify = "None"
            return [res] + self._enter(SessionState.ENERGY_NEGOTIATION, now, (m.ChargeParameterDiscoveryReq,))
        if self.state is not SessionState.ENERGY_NEGOTIATION or self.schedule_id == 0:
            return [self._respond(msg, m.FAILED_SEQUENCE)] + self._fail("power_delivery_before_schedule", now)
        self.notify = "None"
        return [Energize(True), res] + self._enter(SessionState.CHARGING, now, _FLOW[SessionState.CHARGING])

    def _on_ChargingStatusReq(self, msg: m.ChargingStatusReq, now: float) -> list[Action]:  # noqa: N802
        res = m.ChargingStatusRes(session_id=self.session_id, evse_max_current_a=min(self.allowed_a, self.ev_max_a),
                                  meter_kwh=self.meter_kwh, evse_notification=self.notify)  # type: ignore[arg-type]
        return [Send(res)] + self._await(_FLOW[SessionState.CHARGING], now)

    def _on_SessionStopReq(self, msg: m.SessionStopReq, now: float) -> list[Action]:  # noqa: N802
        res = Send(m.SessionStopRes(session_id=self.session_id))
        if msg.charging_session == "Pause":
            return [Energize(False), res] + self._enter(SessionState.RESTARTING_SESSION, now, (m.SessionSetupReq,),
                                                        timeout=None)
        reason = self.stop_reason or "ev_stopped"
        return [Energize(False), res] + self._end(reason) + self._enter(SessionState.WAITING_EV, now)

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        moments = [t for t in (self.deadline, self.auth_deadline, self.pending_deadline) if t is not None]
        return min(moments, default=None)

    def tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.pending_deadline is not None and now >= self.pending_deadline and self.pending_driver is not None:
            actions.append(AuthorizationExpired(self.pending_driver))
            self.pending_driver = self.pending_deadline = None
        if self.auth_deadline is not None and now >= self.auth_deadline:
            return actions + self._fail("timeout:authorization", now)
        if self.deadline is None or now < self.deadline:
            return actions
        if self.deadline_reason == "no_hlc":
            self._enter(SessionState.AUTHENTICATION, now)
            self.auth_deadline = now + self.auth_timeout_s
            return actions + [UseMode(Mode.PWM)] + self._maybe_start(now)
        return actions + self._fail(self.deadline_reason, now)

    # ------------------------------------------------------------------ helpers

    def _maybe_start(self, now: float) -> list[Action]:
        """Start the session once there is a driver and an EV in Authentication."""
        if self.pending_driver is None or self.state is not SessionState.AUTHENTICATION or self.started:
            return []
        self.driver, self.pending_driver, self.auth_deadline = self.pending_driver, None, None
        self.pending_deadline = None
        if not self.session_id:
            self.session_id = self._new_id()
        self.started = True
        self.confirmed = not self.confirm_starts
        actions: list[Action] = [SessionStarted(self.session_id, self.driver, self.hlc, self.evcc_id)]
        if not self.hlc:  # charging without profile: the duty carries the current
            if self.confirmed:
                actions.append(Energize(True))
            self._enter(SessionState.CHARGING, now)
        return actions

    def _enter(self, state: SessionState, now: float, expected: tuple[type[m.Message], ...] = (),
               timeout: float | None = -1.0, reason: str = "") -> list[Action]:
        self.state = state
        self.auth_deadline = None if state is not SessionState.AUTHENTICATION else self.auth_deadline
        if state is SessionState.WAITING_EV:
            self.session_id, self.driver, self.started, self.hlc, self.schedule_id = "", None, False, False, 0
            self.notify, self.stop_reason = "None", None
        if timeout == -1.0:
            timeout = self.sequence_timeout_s if expected else None
        self.expected = expected
        self.deadline = None if timeout is None else now + timeout
        self.deadline_reason = reason or ("timeout:" + "|".join(t.__name__ for t in expected))
        return []

    def _await(self, expected: tuple[type[m.Message], ...], now: float) -> list[Action]:
        """Stay in this state, now waiting for `expected`."""
        self.expected, self.deadline = expected, now + self.sequence_timeout_s
        self.deadline_reason = "timeout:" + "|".join(t.__name__ for t in expected)
        return []

    def _respond(self, msg: m.Message, code: str) -> Send:
        return Send(m.response_to(msg)(session_id=self.session_id, response_code=code))  # type: ignore[call-arg]

    def _end(self, reason: str) -> list[Action]:
        if not self.started:
            return []
        self.started = False
        return [SessionEnded(self.session_id, reason, self.confirmed)]

    def _fail(self, reason: str, now: float) -> list[Action]:
        actions: list[Action] = [Energize(False)] + self._end(reason)
        self._enter(SessionState.FAILURE, now)
        self.failure = reason
        return actions
