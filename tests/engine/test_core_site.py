"""The engine core of a site's charge point (`confirm_starts`): a session's contactor waits for the site's
confirmation; a refused or unconfirmed session ends without energy and without a ticket; what the bridge
reports (plug, the EV's maximum) and the operator's OUT_OF_ORDER."""

from __future__ import annotations

import math

import pytest

from firmware.engine.core import (
    EngineCore,
    EvMaxChanged,
    PlugChanged,
    ReadMeter,
    SendMessage,
    SessionOpened,
    SessionVoided,
    StatusChanged,
    TicketClosed,
)
from firmware.engine.pilot_sm import SetContactor
from firmware.protocols import iso15118 as m
from hal.meter.reading import MeterReading


def reading(kwh: float, at: float = 0.0, amps: float = 0.0) -> MeterReading:
    return MeterReading((230.0,) * 3, (amps,) * 3, amps * 690.0, kwh, at)


class Rig:
    def __init__(self, confirm_starts: bool = True) -> None:
        self.core = EngineCore("cp1", price_eur_kwh=0.30, max_current_a=32, fallback_a=6, local_drivers=("owner",),
                               confirm_starts=confirm_starts)
        self.actions: list = []
        self.sid = ""
        self.do(self.core.start(0.0))
        self.do(self.core.grant(16, math.inf, 0.0))
        self.do(self.core.meter_reading(reading(100.0), 0.0))

    def do(self, actions: list) -> list:
        self.actions += actions
        return actions

    def of(self, kind: type) -> list:
        return [a for a in self.actions if isinstance(a, kind)]

    def contactor(self) -> bool:
        moves = [a.closed for a in self.of(SetContactor)]
        return bool(moves and moves[-1])

    def answer_reads(self, kwh: float, now: float) -> None:
        for read in self.of(ReadMeter):
            self.actions.remove(read)
            self.do(self.core.meter_reading(reading(kwh, now), now, token=read.token))

    def ask(self, msg: m.Message, now: float) -> m.Message:
        if not isinstance(msg, m.SessionSetupReq):
            msg = type(msg)(**{**msg.__dict__, "session_id": self.sid})
        out = self.do(self.core.message(msg.to_dict(), now))
        (res,) = [m.decode(a.data) for a in out if isinstance(a, SendMessage)]
        self.sid = res.session_id or self.sid
        return res

    def hlc_authorized(self) -> None:
        """An ISO 15118 EV plugged in, its session set up and paid externally; "alice" authorized."""
        self.do(self.core.pilot_reading("B", 1.0))
        self.ask(m.SessionSetupReq(evcc_id="ev-1"), 1.0)
        self.ask(m.ServiceDiscoveryReq(), 1.0)
        self.ask(m.PaymentServiceSelectionReq(), 1.0)
        self.do(self.core.authorize("alice", 1.0))

    def pwm_session(self, driver: str = "alice") -> str:
        """An EV on PWM plugged in, authorized, asking for energy (state C): the session is open."""
        self.do(self.core.pilot_reading("B", 1.0))
        self.do(self.core.tick(6.0))  # no ISO 15118: PWM
        self.do(self.core.authorize(driver, 7.0))
        self.do(self.core.pilot_reading("C", 8.0))
        (opened,) = self.of(SessionOpened)
        return opened.session_id


def test_a_pwm_session_closes_its_contactor_only_once_the_site_confirms_its_start() -> None:
    rig = Rig()
    sid = rig.pwm_session()
    assert not rig.contactor() and rig.core.session.started
    rig.do(rig.core.confirm_start("another-session", 9.0))  # not ours: ignored
    assert not rig.contactor()
    rig.do(rig.core.confirm_start(sid, 10.0))
    assert rig.contactor()


def test_without_confirm_starts_the_contactor_closes_at_once() -> None:
    rig = Rig(confirm_starts=False)
    rig.pwm_session()
    assert rig.contactor()


def test_an_iso15118_ev_hears_ongoing_until_the_site_confirms() -> None:
    rig = Rig()
    rig.hlc_authorized()
    assert rig.ask(m.AuthorizationReq(), 1.1).evse_processing == "Ongoing"
    (opened,) = rig.of(SessionOpened)
    assert rig.ask(m.AuthorizationReq(), 1.5).evse_processing == "Ongoing"
    rig.do(rig.core.confirm_start(opened.session_id, 2.0))
    assert rig.ask(m.AuthorizationReq(), 2.1).evse_processing == "Finished"
    rig.ask(m.ChargeParameterDiscoveryReq(energy_request_kwh=10, max_current_a=20), 2.2)
    assert rig.of(EvMaxChanged)[-1] == EvMaxChanged(20)
    rig.ask(m.PowerDeliveryReq(charge_progress="Start"), 2.3)
    rig.do(rig.core.pilot_reading("C", 2.4))
    assert rig.contactor()


def test_a_refused_start_ends_without_energy_and_without_a_ticket() -> None:
    rig = Rig()
    sid = rig.pwm_session()
    out = rig.do(rig.core.refuse_start(sid, "not_authorized", 9.0))
    assert SessionVoided(sid, "alice", "refused:not_authorized") in out
    rig.answer_reads(100.0, 9.5)
    assert not rig.contactor() and rig.of(TicketClosed) == []
    assert rig.core.session.state.value == "Failure"  # until the EV is unplugged
    rig.do(rig.core.confirm_start(sid, 10.0))  # too late: nothing
    assert not rig.contactor()


def test_a_refused_start_with_the_ev_still_plugged_in_starts_over_on_the_next_authorization() -> None:
    """The site refused a start (the point was out of order, the request withdrawn): once a driver's request is
    accepted again, that EV charges without being unplugged (the site simulation's seeds 29, 54, 56, 71: the
    site said yes and the point refused every authorization until the EV left)."""
    rig = Rig()
    sid = rig.pwm_session()
    rig.do(rig.core.refuse_start(sid, "cp_unavailable", 9.0))
    rig.answer_reads(100.0, 9.5)
    rig.do(rig.core.authorize("alice", 20.0))
    assert not [a for a in rig.actions if getattr(a, "what", "") == "authorize"]  # not refused
    rig.do(rig.core.tick(25.1))  # the wait for ISO 15118 again, as after a replug: PWM
    rig.answer_reads(100.0, 25.2)
    new = [o for o in rig.of(SessionOpened) if o.session_id != sid]
    assert len(new) == 1 and new[0].driver == "alice"
    rig.do(rig.core.confirm_start(new[0].session_id, 26.0))
    assert rig.contactor() and rig.core.status == "CHARGING"


def test_a_charge_the_operator_stopped_starts_over_on_the_next_authorization() -> None:
    rig = Rig()
    sid = rig.pwm_session()
    rig.do(rig.core.confirm_start(sid, 9.0))
    assert rig.contactor()
    rig.do(rig.core.stop("operator", 10.0, sid))
    rig.do(rig.core.pilot_reading("B", 10.5))  # the PWM stopped: the EV stops asking
    rig.answer_reads(100.5, 10.6)
    assert not rig.contactor() and len(rig.of(TicketClosed)) == 1
    rig.do(rig.core.authorize("alice", 30.0))
    rig.do(rig.core.tick(35.1))
    rig.answer_reads(100.5, 35.2)
    (new,) = [o for o in rig.of(SessionOpened) if o.session_id != sid]
    rig.do(rig.core.confirm_start(new.session_id, 36.0))
    rig.do(rig.core.pilot_reading("C", 37.0))  # it asks again on the new duty
    assert rig.contactor()


def test_a_refused_iso15118_ev_gets_a_failed_answer() -> None:
    rig = Rig()
    rig.hlc_authorized()
    rig.ask(m.AuthorizationReq(), 1.1)
    (opened,) = rig.of(SessionOpened)
    rig.do(rig.core.refuse_start(opened.session_id, "cp_busy", 1.2))
    assert rig.ask(m.AuthorizationReq(), 1.3).response_code == m.FAILED
    assert rig.of(TicketClosed) == [] and rig.of(SessionVoided)


def test_a_session_unplugged_before_its_confirmation_is_voided() -> None:
    rig = Rig()
    sid = rig.pwm_session()
    rig.do(rig.core.pilot_reading("A", 9.0))
    rig.answer_reads(100.0, 9.1)
    assert rig.of(SessionVoided) == [SessionVoided(sid, "alice", "unplugged")] and rig.of(TicketClosed) == []


def test_a_confirmed_session_ends_with_its_ticket() -> None:
    rig = Rig()
    sid = rig.pwm_session()
    rig.do(rig.core.confirm_start(sid, 10.0))
    rig.do(rig.core.stop("operator", 100.0))
    rig.do(rig.core.pilot_reading("B", 100.1))
    rig.answer_reads(101.5, 100.2)
    (ticket,) = [a.ticket for a in rig.of(TicketClosed)]
    assert (ticket.session_id, ticket.kwh, ticket.reason) == (sid, 1.5, "operator")
    assert rig.of(SessionVoided) == []


def test_plug_changes_are_told() -> None:
    rig = Rig()
    rig.do(rig.core.pilot_reading("B", 1.0))
    rig.do(rig.core.pilot_reading("A", 2.0))
    assert rig.of(PlugChanged) == [PlugChanged(True), PlugChanged(False)]


def test_the_evs_maximum_is_known_from_its_charge_parameters_until_the_session_ends() -> None:
    rig = Rig(confirm_starts=False)
    rig.hlc_authorized()
    rig.ask(m.AuthorizationReq(), 1.1)
    assert rig.of(EvMaxChanged) == []
    rig.ask(m.ChargeParameterDiscoveryReq(energy_request_kwh=10, max_current_a=24.5), 1.2)
    assert rig.of(EvMaxChanged) == [EvMaxChanged(24.5)]
    rig.do(rig.core.pilot_reading("A", 5.0))
    assert rig.of(EvMaxChanged) == [EvMaxChanged(24.5), EvMaxChanged(None)]


@pytest.mark.parametrize("faulted", [False, True])
def test_out_of_order_is_a_status_a_fault_still_shows_first(faulted: bool) -> None:
    rig = Rig()
    if faulted:
        rig.do(rig.core.fault("meter", 1.0))
    rig.do(rig.core.set_available(False, 2.0))
    assert rig.core.status == ("FAULTED" if faulted else "OUT_OF_ORDER")
    if faulted:
        rig.do(rig.core.clear_fault("meter", 3.0))
    assert rig.of(StatusChanged)[-1].status == "OUT_OF_ORDER"
    rig.do(rig.core.set_available(True, 4.0))
    assert rig.of(StatusChanged)[-1].status == "AVAILABLE"


def test_a_stop_for_another_session_does_not_end_this_one() -> None:
    rig = Rig()
    sid = rig.pwm_session()
    rig.do(rig.core.confirm_start(sid, 10.0))
    rig.do(rig.core.stop("operator", 20.0, session_id="an-earlier-session"))
    assert rig.contactor() and rig.core.session.started
    rig.do(rig.core.stop("operator", 21.0, session_id=sid))
    assert rig.core.session.state.value == "EndSession"


def test_a_lease_nobody_renews_ends_at_the_fallback_and_is_not_a_timer_due_for_ever() -> None:
    core = EngineCore("cp1", price_eur_kwh=0.30, max_current_a=32, fallback_a=6, confirm_starts=True)
    core.start(0.0)
    core.grant(16, 10.0, 0.0)
    assert core.allowed_a == 16 and core.next_deadline() == 10.0
    core.tick(10.0)
    assert core.allowed_a == 6  # a site that stopped renewing: the fallback
    assert core.next_deadline() is None  # else a control loop would spin on a moment long past


def test_telemetry_says_why_the_current_is_what_it_is_and_the_fallback_once_the_lease_lapsed() -> None:
    rig = Rig()
    sid = rig.pwm_session()
    rig.do(rig.core.confirm_start(sid, 10.0))
    rig.do(rig.core.set_limit(10.5, 50.0, 11.0, "site_share"))
    rig.do(rig.core.meter_reading(reading(100.2, 12.0, amps=10.5), 12.0))
    telemetry = rig.core.telemetry()
    assert telemetry is not None and (telemetry["limit_a"], telemetry["limit_reason"]) == (10.5, "site_share")
    rig.do(rig.core.tick(50.0))  # nobody renewed: the lease lapsed
    telemetry = rig.core.telemetry()
    assert telemetry is not None and (telemetry["limit_a"], telemetry["limit_reason"]) == (6, "fallback")
