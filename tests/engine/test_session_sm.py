"""The SECC session machine: every state and transition, every timeout, in simulated time."""

import pytest

from firmware.engine.pilot_sm import Mode
from firmware.engine.session_sm import (
    AuthorizationExpired,
    Energize,
    Refused,
    Send,
    SessionEnded,
    SessionMachine,
    SessionStarted,
    SessionState,
    UseMode,
)
from firmware.protocols import iso15118 as m

S = SessionState


def sent(actions):
    return [a.message for a in actions if isinstance(a, Send)]


def one_response(actions):
    (res,) = sent(actions)
    return res


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


class Ev:
    """Drives a SessionMachine as an ISO 15118 EV would (the messages, not the emulator)."""

    def __init__(self, sm: SessionMachine):
        self.sm, self.sid, self.log = sm, "", []

    def ask(self, msg, now):
        actions = self.sm.receive(msg, now)
        self.log += actions
        return actions

    def setup(self, now=1.0, sid=""):
        res = one_response(self.ask(m.SessionSetupReq(session_id=sid, evcc_id="ev-1"), now))
        self.sid = res.session_id
        return res

    def through_authorization(self, now=1.0):
        self.setup(now)
        self.ask(m.ServiceDiscoveryReq(session_id=self.sid), now)
        self.ask(m.PaymentServiceSelectionReq(session_id=self.sid), now)
        return one_response(self.ask(m.AuthorizationReq(session_id=self.sid), now))

    def negotiate(self, now=1.0, max_a=32.0):
        return one_response(self.ask(m.ChargeParameterDiscoveryReq(
            session_id=self.sid, energy_request_kwh=20, max_current_a=max_a, departure_time_s=3600), now))

    def power(self, progress, now=1.0):
        return self.ask(m.PowerDeliveryReq(session_id=self.sid, charge_progress=progress), now)


def plugged(**kw) -> SessionMachine:
    sm = SessionMachine("cp1", local_drivers=kw.pop("local_drivers", ("owner", "guest")), **kw)
    sm.set_current(16, 0)
    assert of(sm.plugged_in(0.0), UseMode) == [UseMode(Mode.HLC)]
    assert sm.state is S.BEGIN_SESSION
    return sm


def hlc_charging(**kw):
    sm = plugged(**kw)
    sm.authorize("alice", 0.5)
    ev = Ev(sm)
    assert ev.through_authorization().evse_processing == "Finished"
    ev.negotiate()
    ev.power("Start")
    assert sm.state is S.CHARGING
    return sm, ev


def test_full_hlc_session_walks_every_state_and_answers_every_request():
    sm = plugged()
    ev = Ev(sm)
    res = ev.setup(1.0)
    assert res.response_code == m.OK_NEW_SESSION and res.session_id == "cp1-0001" and res.evse_id == "cp1"
    assert sm.state is S.AUTHENTICATION
    disc = one_response(ev.ask(m.ServiceDiscoveryReq(session_id=ev.sid), 2))
    assert disc.payment_options == ("ExternalPayment",) and disc.energy_modes == ("AC_three_phase_core",)
    assert one_response(ev.ask(m.PaymentServiceSelectionReq(session_id=ev.sid), 3)).response_code == m.OK
    assert one_response(ev.ask(m.AuthorizationReq(session_id=ev.sid), 4)).evse_processing == "Ongoing"
    assert of(sm.authorize("alice", 5), SessionStarted) == [SessionStarted("cp1-0001", "alice", True, "ev-1")]
    assert one_response(ev.ask(m.AuthorizationReq(session_id=ev.sid), 6)).evse_processing == "Finished"
    assert sm.state is S.ENERGY_NEGOTIATION
    cpd = ev.negotiate(7, max_a=32)
    assert cpd.evse_max_current_a == 16 and cpd.schedule == (m.ScheduleEntry(0.0, 16.0),)
    actions = ev.power("Start", 8)
    assert of(actions, Energize) == [Energize(True)] and sm.state is S.CHARGING
    sm.update_meter(1.5)
    status = one_response(ev.ask(m.ChargingStatusReq(session_id=ev.sid), 9))
    assert (status.evse_max_current_a, status.meter_kwh, status.evse_notification) == (16, 1.5, "None")
    actions = ev.power("Stop", 10)
    assert of(actions, Energize) == [Energize(False)] and sm.state is S.END_SESSION
    actions = ev.ask(m.SessionStopReq(session_id=ev.sid), 11)
    assert of(actions, SessionEnded) == [SessionEnded("cp1-0001", "ev_stopped")]
    assert sm.state is S.WAITING_EV and sm.session_id == ""
    assert all(isinstance(r, m.Message) and not r.is_request for r in sent(ev.log))


def test_ev_max_current_caps_the_offer():
    sm = plugged()
    sm.authorize("alice", 0)
    ev = Ev(sm)
    ev.through_authorization()
    assert ev.negotiate(max_a=10).evse_max_current_a == 10


def test_renegotiation_when_the_allowed_current_changes():
    sm, ev = hlc_charging()
    assert sm.set_current(10, 20) == []
    status = one_response(ev.ask(m.ChargingStatusReq(session_id=ev.sid), 21))
    assert status.evse_notification == "ReNegotiation" and status.evse_max_current_a == 10  # lower at once
    ev.power("Renegotiate", 22)
    assert sm.state is S.ENERGY_NEGOTIATION
    cpd = ev.negotiate(23)
    assert cpd.evse_max_current_a == 10 and cpd.schedule_id == 2
    ev.power("Start", 24)
    assert sm.state is S.CHARGING
    assert one_response(ev.ask(m.ChargingStatusReq(session_id=ev.sid), 25)).evse_notification == "None"


def test_evse_stop_in_hlc_tells_the_ev_and_closes_with_the_reason():
    sm, ev = hlc_charging()
    assert of(sm.stop("driver_stop", 30), Energize) == [Energize(False)]
    status = one_response(ev.ask(m.ChargingStatusReq(session_id=ev.sid), 31))
    assert status.evse_notification == "StopCharging"
    ev.power("Stop", 32)
    actions = ev.ask(m.SessionStopReq(session_id=ev.sid), 33)
    assert of(actions, SessionEnded) == [SessionEnded(ev.sid, "driver_stop")]


def test_pause_and_resume_keeps_the_session():
    sm, ev = hlc_charging()
    ev.power("Stop", 10)
    actions = ev.ask(m.SessionStopReq(session_id=ev.sid, charging_session="Pause"), 11)
    assert sm.state is S.RESTARTING_SESSION and not of(actions, SessionEnded)
    assert sm.next_deadline() is None  # a pause waits for the EV as long as it stays plugged
    old = ev.sid
    assert ev.setup(500.0, sid=old).response_code == m.OK_OLD_SESSION and ev.sid == old
    ev.ask(m.ServiceDiscoveryReq(session_id=old), 501)
    ev.ask(m.PaymentServiceSelectionReq(session_id=old), 501)
    assert one_response(ev.ask(m.AuthorizationReq(session_id=old), 502)).evse_processing == "Finished"
    ev.negotiate(503)
    ev.power("Start", 504)
    assert sm.state is S.CHARGING and sm.driver == "alice"
    assert len(of(ev.log, SessionStarted)) == 1  # one session, started once


def test_unplug_during_charging_ends_the_session():
    sm, ev = hlc_charging()
    actions = sm.unplugged(40)
    assert of(actions, SessionEnded) == [SessionEnded(ev.sid, "unplugged")]
    assert Energize(False) in actions and sm.state is S.WAITING_EV


@pytest.mark.parametrize("stage", ["setup", "discovery", "payment", "negotiation", "power", "status", "stop"])
def test_every_awaited_message_times_out_into_failure(stage):
    sm = plugged(sequence_timeout_s=60.0)
    sm.authorize("alice", 0)
    ev = Ev(sm)
    steps = {
        "discovery": lambda: ev.setup(1),
        "payment": lambda: ev.ask(m.ServiceDiscoveryReq(session_id=ev.sid), 1),
        "negotiation": lambda: (ev.ask(m.PaymentServiceSelectionReq(session_id=ev.sid), 1),
                                ev.ask(m.AuthorizationReq(session_id=ev.sid), 1)),
        "power": lambda: ev.negotiate(1),
        "status": lambda: ev.power("Start", 1),
        "stop": lambda: ev.power("Stop", 1),
    }
    if stage == "setup":  # the EV started HLC (no-HLC fallback is another test): silence after setup
        ev.setup(1)
        stage_deadline = 61.0
    else:
        for name, step in steps.items():
            step()
            if name == stage:
                break
        stage_deadline = 61.0
    assert sm.next_deadline() == stage_deadline
    assert sm.tick(60.999) == []
    actions = sm.tick(61.0)
    assert sm.state is S.FAILURE and Energize(False) in actions
    assert sm.failure.startswith("timeout:")
    if sm.started or stage in ("status", "stop"):
        assert of(actions, SessionEnded)
    assert one_response(sm.receive(m.ChargingStatusReq(session_id=ev.sid), 62)).response_code == m.FAILED
    sm.unplugged(70)
    assert sm.state is S.WAITING_EV and sm.failure is None


def test_ev_that_polls_authorization_for_ever_times_out():
    sm = plugged(auth_timeout_s=300.0)
    ev = Ev(sm)
    ev.through_authorization(now=1.0)
    for t in range(10, 301, 10):  # polls keep the sequence timer fresh, not the authorization limit
        assert sm.state is S.AUTHENTICATION
        ev.ask(m.AuthorizationReq(session_id=ev.sid), float(t))
        sm.tick(float(t))
    sm.tick(301.0)
    assert sm.state is S.FAILURE and sm.failure == "timeout:authorization"


def test_no_hlc_falls_back_to_pwm_and_charges_without_profile_once_authorized():
    sm = plugged(hlc_wait_s=5.0)
    assert sm.next_deadline() == 5.0
    actions = sm.tick(5.0)
    assert of(actions, UseMode) == [UseMode(Mode.PWM)] and sm.state is S.AUTHENTICATION and not sm.hlc
    actions = sm.manual_start(7.0)
    assert of(actions, SessionStarted) == [SessionStarted("cp1-0001", "owner", False, "")]
    assert Energize(True) in actions and sm.state is S.CHARGING and sm.next_deadline() is None
    actions = sm.stop("driver_stop", 100)
    assert of(actions, SessionEnded) == [SessionEnded("cp1-0001", "driver_stop")]
    assert sm.state is S.END_SESSION
    sm.unplugged(110)
    assert sm.state is S.WAITING_EV


def test_no_hlc_without_authorization_times_out():
    sm = plugged(hlc_wait_s=5.0, auth_timeout_s=60.0)
    sm.tick(5.0)
    assert sm.next_deadline() == 65.0
    actions = sm.tick(65.0)
    assert sm.state is S.FAILURE and not of(actions, SessionStarted)


def test_authorization_before_plug_in_is_used_by_the_next_session():
    sm = SessionMachine("cp1", hlc_wait_s=2)
    sm.authorize("bob", 0)
    sm.plugged_in(1)
    actions = sm.tick(3)
    assert of(actions, SessionStarted)[0].driver == "bob"


def test_manual_start_checks_the_local_list():
    sm = plugged(local_drivers=("owner",))
    assert of(sm.manual_start(1, "mallory"), Refused) == [Refused("manual_start", "driver 'mallory' is not on the "
                                                                                  "local list")]
    assert of(sm.manual_start(1, "owner"), Refused) == []
    assert sm.pending_driver == "owner"
    empty = plugged(local_drivers=())
    assert of(empty.manual_start(1), Refused)[0].why == "no local drivers configured"


def test_a_second_authorization_of_a_running_session_is_refused():
    sm, _ = hlc_charging()
    assert of(sm.authorize("bob", 5), Refused)[0].why == "session already authorized for alice"


@pytest.mark.parametrize("msg", [m.ChargingStatusReq(), m.PowerDeliveryReq(), m.SessionStopReq()])
def test_a_request_out_of_sequence_fails_the_session(msg):
    sm = plugged()
    actions = sm.receive(msg, 1)
    assert one_response(actions).response_code == m.FAILED_SEQUENCE
    assert sm.state is S.FAILURE and sm.failure.startswith("sequence:")


def test_power_delivery_start_before_a_schedule_is_a_sequence_error():
    sm = plugged()
    sm.authorize("a", 0)
    ev = Ev(sm)
    ev.through_authorization()
    actions = ev.power("Start", 2)
    assert one_response(actions).response_code == m.FAILED_SEQUENCE and sm.state is S.FAILURE
    assert Energize(True) not in actions


def test_a_request_for_another_session_fails():
    sm = plugged()
    ev = Ev(sm)
    ev.setup()
    actions = sm.receive(m.ServiceDiscoveryReq(session_id="other"), 2)
    assert one_response(actions).response_code == m.FAILED_UNKNOWN_SESSION and sm.state is S.FAILURE


def test_contract_payment_is_refused():
    sm = plugged()
    ev = Ev(sm)
    ev.setup()
    ev.ask(m.ServiceDiscoveryReq(session_id=ev.sid), 1)
    res = one_response(ev.ask(m.PaymentServiceSelectionReq(session_id=ev.sid, payment_option="Contract"), 1))
    assert res.response_code == m.FAILED_PAYMENT and sm.state is S.FAILURE


def test_bad_charge_parameters_are_refused():
    sm = plugged()
    sm.authorize("a", 0)
    ev = Ev(sm)
    ev.through_authorization()
    res = ev.negotiate(max_a=0)
    assert res.response_code == m.FAILED_CHARGE_PARAMETER and sm.state is S.FAILURE


def test_a_fault_mid_session_ends_it_in_failure():
    sm, ev = hlc_charging()
    actions = sm.fault("meter", 50)
    assert of(actions, SessionEnded) == [SessionEnded(ev.sid, "fault:meter")]
    assert Energize(False) in actions and sm.state is S.FAILURE


def test_a_fault_with_nothing_plugged_changes_nothing():
    sm = SessionMachine("cp1")
    assert sm.fault("meter", 1) == [] and sm.state is S.WAITING_EV


def test_responses_from_the_ev_side_are_refused():
    sm = plugged()
    assert of(sm.receive(m.SessionSetupRes(), 1), Refused)
    assert sm.state is S.BEGIN_SESSION


def test_a_new_session_on_a_cable_still_plugged_in():
    sm, ev = hlc_charging()
    ev.power("Stop", 2)
    ev.ask(m.SessionStopReq(session_id=ev.sid), 3)
    assert sm.state is S.WAITING_EV
    res = ev.setup(4)
    assert res.response_code == m.OK_NEW_SESSION and res.session_id == "cp1-0002"


def test_a_paused_session_ends_when_the_ev_is_unplugged():
    sm, ev = hlc_charging()
    ev.power("Stop", 10)
    ev.ask(m.SessionStopReq(session_id=ev.sid, charging_session="Pause"), 11)
    actions = sm.unplugged(20)
    assert of(actions, SessionEnded) == [SessionEnded(ev.sid, "unplugged")] and sm.state is S.WAITING_EV


def test_a_paused_session_replaced_by_a_new_one_is_ended_first():
    sm, ev = hlc_charging()
    old = ev.sid
    ev.power("Stop", 10)
    ev.ask(m.SessionStopReq(session_id=old, charging_session="Pause"), 11)
    actions = sm.receive(m.SessionSetupReq(evcc_id="ev-1"), 12)  # no session id: a new session
    assert of(actions, SessionEnded) == [SessionEnded(old, "replaced")]
    assert one_response(actions).response_code == m.OK_NEW_SESSION and sm.session_id != old
    assert sm.driver is None and sm.state is S.AUTHENTICATION


def test_an_ev_seen_again_after_a_fault_starts_afresh():
    """The fault ended the session in Failure; the EV, still plugged in, is seen again when the fault
    clears (the pilot machine says so): a new connection, as after a replug, not a Failure for ever."""
    sm, ev = hlc_charging()
    sm.fault("meter", 50)
    assert sm.state is S.FAILURE
    actions = sm.plugged_in(60)
    assert of(actions, UseMode) == [UseMode(Mode.HLC)] and sm.state is S.BEGIN_SESSION and sm.failure is None
    sm.authorize("alice", 61)
    ev.sid = ""
    assert ev.through_authorization(now=62).evse_processing == "Finished"
    assert sm.session_id != "" and sm.started and sm.driver == "alice"


def test_an_authorization_with_no_ev_lapses_after_the_connection_timeout():
    sm = SessionMachine("cp1", hlc_wait_s=2, connection_timeout_s=60)
    sm.authorize("bob", 0)
    assert sm.next_deadline() == 60
    assert sm.tick(59.9) == [] and sm.pending_driver == "bob"
    assert sm.tick(60) == [AuthorizationExpired("bob")]
    assert sm.pending_driver is None and sm.next_deadline() is None
    sm.plugged_in(3600)  # an EV an hour later is nobody's yet
    sm.tick(3602)
    assert sm.state is S.AUTHENTICATION and not sm.started and sm.driver is None


def test_an_ev_that_comes_in_time_takes_the_authorization_and_it_does_not_lapse():
    sm = SessionMachine("cp1", hlc_wait_s=2, connection_timeout_s=60)
    sm.authorize("bob", 0)
    sm.plugged_in(59)
    assert of(sm.tick(61), SessionStarted)[0].driver == "bob"
    assert not of(sm.tick(120), AuthorizationExpired)


def test_an_authorization_given_while_an_ev_is_plugged_in_does_not_lapse():
    sm = plugged(hlc_wait_s=5.0, connection_timeout_s=60)
    sm.authorize("ann", 1)  # the EV is there, still in its HLC wait
    assert sm.pending_deadline is None
    assert of(sm.tick(5.0), SessionStarted)[0].driver == "ann"
