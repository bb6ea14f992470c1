"""The engine core (pilot + session + lease + metering) through whole sessions, in simulated time."""

import logging
import math

import pytest

from evnet.config.schema import SafetyConfig
from firmware.engine.core import EngineCore, ReadMeter, SendMessage, StatusChanged, TicketClosed
from firmware.engine.pilot_sm import SetContactor, SetPilotError, SetPwm
from firmware.protocols import iso15118 as m
from hal.meter.reading import MeterReading


def reading(kwh, at=0.0, amps=0.0):
    return MeterReading((230.0,) * 3, (amps,) * 3, amps * 690.0, kwh, at)


class Rig:
    """An EngineCore with a log of every action and helpers to play the EV and the meter."""

    def __init__(self, **kw):
        opts = dict(price_eur_kwh=0.30, max_current_a=32, fallback_a=6, local_drivers=("owner",))
        opts.update(kw)
        self.core = EngineCore("cp1", **opts)
        self.actions = []
        self.sid = ""
        self.do(self.core.start(0.0))
        self.do(self.core.grant(16, math.inf, 0.0))
        self.do(self.core.meter_reading(reading(100.0), 0.0))

    def do(self, actions):
        self.actions += actions
        return actions

    def contactor(self):
        moves = [a.closed for a in self.actions if isinstance(a, SetContactor)]
        return moves[-1] if moves else None

    def duty(self):
        return [a.duty_pct for a in self.actions if isinstance(a, SetPwm)][-1]

    def statuses(self):
        return [a.status for a in self.actions if isinstance(a, StatusChanged)]

    def tickets(self):
        return [a.ticket for a in self.actions if isinstance(a, TicketClosed)]

    def ask(self, msg, now):
        msg = type(msg)(**{**msg.__dict__, "session_id": self.sid}) if not isinstance(msg, m.SessionSetupReq) else msg
        out = self.do(self.core.message(msg.to_dict(), now))
        (res,) = [m.decode(a.data) for a in out if isinstance(a, SendMessage)]
        self.sid = res.session_id or self.sid
        return res

    def answer_reads(self, kwh, now):
        for read in [a for a in self.actions if isinstance(a, ReadMeter)]:
            self.actions.remove(read)
            self.do(self.core.meter_reading(reading(kwh, now), now, token=read.token))

    def hlc_to_charging(self, now=1.0):
        self.do(self.core.pilot_reading("B", now))
        assert self.duty() == 5.0
        self.ask(m.SessionSetupReq(evcc_id="ev-1"), now)
        self.ask(m.ServiceDiscoveryReq(), now)
        self.ask(m.PaymentServiceSelectionReq(), now)
        self.do(self.core.authorize("alice", now))
        assert self.ask(m.AuthorizationReq(), now).evse_processing == "Finished"
        assert self.ask(m.ChargeParameterDiscoveryReq(energy_request_kwh=10, max_current_a=32), now) \
            .evse_max_current_a == 16
        self.ask(m.PowerDeliveryReq(charge_progress="Start"), now)
        assert self.contactor() is False
        self.do(self.core.pilot_reading("C", now + 0.1))
        assert self.contactor() is True


def test_start_drives_safe_outputs_and_announces_available():
    rig = Rig()
    assert rig.actions[0] == SetContactor(False, "start")
    assert rig.statuses() == ["AVAILABLE"] and rig.core.allowed_a == 16


def test_hlc_session_charges_and_ends_with_a_ticket_matching_the_meter():
    rig = Rig()
    rig.hlc_to_charging(now=1.0)
    assert rig.statuses()[-1] == "CHARGING"
    rig.do(rig.core.meter_reading(reading(103.5, 600.0, amps=16), 600.0))
    assert rig.core.telemetry() == {"session": "cp1-0001", "driver": "alice", "power_kw": 11.04, "energy_kwh": 3.5,
                                    "cost_eur": 1.05, "current_a": 16, "limit_a": 16,
                                    "limit_reason": None}
    assert rig.ask(m.ChargingStatusReq(), 601).meter_kwh == 3.5
    rig.ask(m.PowerDeliveryReq(charge_progress="Stop"), 700)
    rig.do(rig.core.pilot_reading("B", 700.05))
    assert rig.contactor() is False
    rig.ask(m.SessionStopReq(), 701)
    assert rig.tickets() == []  # waits for a reading taken after the contactor opened
    rig.answer_reads(105.0, 701.0)
    (ticket,) = rig.tickets()
    assert (ticket.kwh, ticket.cost_eur, ticket.driver, ticket.reason) == (5.0, 1.5, "alice", "ev_stopped")
    assert rig.statuses()[-1] == "AVAILABLE"


def test_pwm_only_session_with_the_manual_start_button():
    rig = Rig()
    rig.do(rig.core.pilot_reading("B", 0.0))
    rig.do(rig.core.tick(5.0))  # no ISO 15118 within 5 s: charging without profile
    rig.do(rig.core.manual_start(6.0))
    assert rig.duty() == pytest.approx(16 / 0.6)
    rig.do(rig.core.pilot_reading("C", 7.0))
    assert rig.contactor() is True and rig.statuses()[-1] == "CHARGING"
    rig.do(rig.core.pilot_reading("A", 100.0))  # unplugged while charging
    assert rig.contactor() is False
    rig.answer_reads(102.0, 100.0)
    (ticket,) = rig.tickets()
    assert (ticket.kwh, ticket.driver, ticket.reason) == (2.0, "owner", "unplugged")


def test_the_ticket_read_is_asked_after_the_contactor_opens():
    rig = Rig()
    rig.hlc_to_charging()
    out = rig.do(rig.core.pilot_reading("A", 50.0))
    kinds = [type(a) for a in out]
    assert kinds.index(SetContactor) < kinds.index(ReadMeter)


def test_meter_dying_mid_session_opens_the_contactor_faults_and_closes_on_the_last_good_reading():
    rig = Rig()
    rig.hlc_to_charging(now=1.0)
    rig.do(rig.core.meter_reading(reading(104.0, 300.0, amps=16), 300.0))
    rig.do(rig.core.meter_failed("meter timeout: no answer", faulted=False, now=301.0))
    assert rig.contactor() is True  # one failed read is not yet a dead meter
    out = rig.do(rig.core.meter_failed("meter timeout: no answer", faulted=True, now=302.0))
    assert SetContactor(False, "fault:meter") in out and SetPilotError() in out
    assert rig.statuses()[-1] == "FAULTED" and rig.core.fault_code == "meter"
    (ticket,) = rig.tickets()
    assert (ticket.end_kwh, ticket.kwh, ticket.reason) == (104.0, 4.0, "fault:meter")
    rig.do(rig.core.meter_reading(reading(104.0, 400.0), 400.0))  # the meter is back
    assert rig.statuses()[-1] == "AVAILABLE" and rig.contactor() is False


def test_an_ev_that_never_answers_times_out_and_the_contactor_never_closes():
    rig = Rig()
    rig.do(rig.core.pilot_reading("B", 0.0))
    rig.ask(m.SessionSetupReq(evcc_id="mute"), 0.5)
    rig.do(rig.core.authorize("alice", 0.6))
    rig.do(rig.core.pilot_reading("C", 1.0))  # a rude EV asks for power without a PowerDelivery
    assert rig.core.next_deadline() == 60.5
    rig.do(rig.core.tick(60.5))
    assert rig.core.session.state.value == "Failure"
    assert rig.core.session.failure == "timeout:ServiceDiscoveryReq"
    assert all(not a.closed for a in rig.actions if isinstance(a, SetContactor))


@pytest.mark.parametrize("how", ["emergency_stop", "pilot_short", "diode"])
def test_emergency_stop_and_pilot_faults_open_at_once_and_fault(how):
    rig = Rig()
    rig.hlc_to_charging()
    if how == "emergency_stop":
        out = rig.do(rig.core.emergency_stop(True, 10.0))
    elif how == "pilot_short":
        out = rig.do(rig.core.pilot_reading("E", 10.0))
    else:
        out = rig.do(rig.core.pilot_reading("C", 10.0, diode_fault=True))
    assert isinstance(out[0], SetContactor) and out[0].closed is False
    assert rig.statuses()[-1] == "FAULTED" and rig.core.session.state.value == "Failure"
    rig.answer_reads(101.0, 10.0)
    assert rig.tickets()[0].reason.startswith("fault:")
    if how == "emergency_stop":
        rig.do(rig.core.emergency_stop(False, 20.0))
        assert rig.statuses()[-1] == "AVAILABLE"


def test_lease_running_out_drops_to_the_fallback_and_renegotiates():
    rig = Rig()
    rig.do(rig.core.grant(16, until=100.0, now=1.0))
    rig.hlc_to_charging(now=2.0)
    assert rig.core.next_deadline() == 60.0 + 2.0  # the session's sequence timer comes first
    rig.ask(m.ChargingStatusReq(), 50.0)
    rig.do(rig.core.tick(100.0))
    assert rig.core.allowed_a == 6
    res = rig.ask(m.ChargingStatusReq(), 101.0)
    assert res.evse_max_current_a == 6 and res.evse_notification == "ReNegotiation"
    rig.do(rig.core.set_limit(20, lease_until=200.0, now=102.0))
    assert rig.core.allowed_a == 20


def test_lease_expiry_in_pwm_mode_changes_the_duty():
    rig = Rig()
    rig.do(rig.core.grant(32, until=50.0, now=0.0))
    rig.do(rig.core.pilot_reading("B", 0.0))
    rig.do(rig.core.tick(5.0))
    rig.do(rig.core.authorize("bob", 6.0))
    assert rig.duty() == pytest.approx(32 / 0.6)
    assert rig.core.next_deadline() == 50.0
    rig.do(rig.core.tick(50.0))
    assert rig.duty() == pytest.approx(10.0)


def test_a_malformed_message_is_dropped():
    rig = Rig()
    rig.do(rig.core.pilot_reading("B", 0.0))
    assert rig.core.message({"type": "Nonsense"}, 1.0) == []
    assert rig.core.session.state.value == "BeginSession"


def test_bad_messages_are_dropped_counted_and_their_log_lines_folded(caplog):
    caplog.set_level(logging.WARNING, logger="evnet.engine")
    rig = Rig()
    rig.do(rig.core.pilot_reading("B", 0.0))
    for i in range(20):  # a 401-digit number used to raise OverflowError out of the core
        bad = {"type": "ChargeParameterDiscoveryReq", "max_current_a": 10**400}
        assert rig.core.message(bad, 1.0 + i * 0.01) == []
    assert rig.core.bad_messages == 20 and rig.core.session.state.value == "BeginSession"
    lines = [r.getMessage() for r in caplog.records if "event=engine.bad_message" in r.getMessage()]
    assert len(lines) == 1 and "source=ev" in lines[0] and "cp=cp1" in lines[0]


def test_a_hardware_fault_holds_until_its_part_says_it_recovered():
    rig = Rig()
    rig.hlc_to_charging()
    out = rig.do(rig.core.hardware_fault("pilot", "pilot_read_fault", 10.0))
    assert SetContactor(False, "fault:pilot_read_fault") in out and rig.core.status == "FAULTED"
    assert rig.core.hardware_fault("pilot", "pilot_read_fault", 11.0) == []  # said again: nothing new
    rig.do(rig.core.tick(100.0))
    assert rig.core.fault_code == "pilot_read_fault"  # not retried away like a pilot reading
    rig.do(rig.core.hardware_fault("pilot", "cable_fault", 101.0))
    assert rig.core.fault_code == "cable_fault"
    rig.do(rig.core.hardware_fault("pilot", None, 102.0))
    assert rig.core.status == "AVAILABLE" and rig.core.fault_code is None


def test_a_session_started_before_any_meter_reading_asks_for_one():
    core = EngineCore("cp1", price_eur_kwh=0.3, max_current_a=16, fallback_a=6)
    core.start(0.0)
    core.grant(16, math.inf, 0.0)
    core.pilot_reading("B", 0.0)
    core.tick(5.0)
    out = core.authorize("x", 6.0)
    (read,) = [a for a in out if isinstance(a, ReadMeter)]
    core.meter_reading(reading(50.0), 6.1, token=read.token)
    assert core.meter.active and core.meter.first.import_kwh == 50.0


def test_a_stop_the_pwm_ev_ignores_forces_the_contactor_open_after_6_s_and_closes_the_ticket():
    rig = Rig()
    rig.do(rig.core.pilot_reading("B", 0.0))
    rig.do(rig.core.tick(5.0))
    rig.do(rig.core.authorize("dave", 5.0))
    rig.do(rig.core.pilot_reading("C", 6.0))
    assert rig.contactor() is True
    rig.do(rig.core.stop("operator_stop", 100.0))
    assert rig.duty() is None  # PWM withdrawn: steady +12 V
    assert rig.contactor() is True and rig.core.next_deadline() == 106.0
    rig.do(rig.core.tick(105.9))
    assert rig.contactor() is True
    rig.do(rig.core.tick(106.0))
    assert rig.contactor() is False
    assert [a for a in rig.actions if isinstance(a, SetContactor)][-1].reason == "stop_ignored"
    rig.answer_reads(103.0, 106.0)
    assert rig.tickets()[0].reason == "operator_stop" and rig.tickets()[0].kwh == 3.0


def test_status_goes_charging_and_back_with_the_session():
    rig = Rig()
    rig.hlc_to_charging()
    rig.do(rig.core.pilot_reading("A", 9.0))
    rig.answer_reads(101.0, 9.0)
    assert rig.statuses() == ["AVAILABLE", "CHARGING", "AVAILABLE"]


def test_meter_failures_are_logged_by_the_driver_and_the_fault_once_here(caplog):
    caplog.set_level(logging.INFO, logger="evnet.engine")
    rig = Rig()
    for i in range(10):  # the driver logs each failure (folded); the engine does not repeat them
        rig.do(rig.core.meter_failed("meter timeout: no answer", faulted=False, now=1.0 + i))
    for i in range(10):
        rig.do(rig.core.meter_failed("meter timeout: no answer", faulted=True, now=20.0 + i))
    lines = [r.getMessage() for r in caplog.records if "meter" in r.getMessage() and r.levelno >= logging.WARNING]
    assert sum("event=engine.meter_faulted" in line for line in lines) == 1
    assert not any("meter_read_failed" in line for line in lines)


def test_the_meter_dying_before_the_end_reading_closes_the_ticket_on_the_last_good_one():
    rig = Rig()
    rig.hlc_to_charging()
    rig.do(rig.core.meter_reading(reading(102.0, 50.0), 50.0))
    rig.do(rig.core.pilot_reading("A", 60.0))  # unplugged: a ReadMeter is out
    assert rig.tickets() == []
    rig.do(rig.core.meter_failed("meter timeout", faulted=True, now=61.0))
    (ticket,) = rig.tickets()
    assert (ticket.end_kwh, ticket.reason) == (102.0, "unplugged")


def test_a_new_session_before_the_end_reading_closes_the_old_ticket_first():
    rig = Rig()
    rig.hlc_to_charging()
    rig.do(rig.core.meter_reading(reading(102.0, 50.0), 50.0))
    rig.do(rig.core.pilot_reading("A", 60.0))
    rig.do(rig.core.pilot_reading("B", 61.0))
    rig.do(rig.core.tick(66.0))  # no HLC: PWM only
    rig.do(rig.core.authorize("erin", 66.0))
    assert [t.driver for t in rig.tickets()] == ["alice"] and rig.core.meter.driver == "erin"


def test_an_ev_drawing_too_much_for_7_s_is_cut_off():
    rig = Rig()
    rig.do(rig.core.pilot_reading("B", 0.0))
    rig.do(rig.core.tick(5.0))
    rig.do(rig.core.authorize("greedy", 5.0))
    rig.do(rig.core.pilot_reading("C", 6.0))
    rig.do(rig.core.meter_reading(reading(100.1, 7.0, amps=18.0), 7.0))  # 16 A offered: within (16 + 0.5) x 1.1
    assert rig.contactor() is True and rig.core.status == "CHARGING"
    rig.do(rig.core.meter_reading(reading(100.2, 8.0, amps=25.0), 8.0))
    rig.do(rig.core.meter_reading(reading(100.3, 14.9, amps=25.0), 14.9))
    assert rig.contactor() is True  # the EV gets its time to follow
    out = rig.do(rig.core.meter_reading(reading(100.4, 15.0, amps=25.0), 15.0))
    assert SetContactor(False, "fault:over_current") in out and rig.core.status == "FAULTED"
    assert rig.core.next_deadline() == 25.0  # retried like a pilot fault


def charging_at(rig, offer_a, now=6.0):
    rig.do(rig.core.grant(offer_a, math.inf, 0.0))
    rig.do(rig.core.pilot_reading("B", 0.0))
    rig.do(rig.core.tick(5.0))
    rig.do(rig.core.authorize("driver", 5.0))
    rig.do(rig.core.pilot_reading("C", now))
    assert rig.contactor() is True


def draw(rig, amps, start, seconds, kwh=100.0):
    """Readings every second at `amps` on three phases, the register following the energy."""
    for t in range(seconds + 1):
        kwh += amps * 690.0 / 3_600_000.0
        rig.do(rig.core.meter_reading(reading(round(kwh, 2), start + t, amps=amps), start + t))
    return kwh


def test_36_a_on_a_32_a_offer_trips_after_7_s_and_35_a_never_does():
    """(32 A + 0.5 A noise) x 1.1 = 35.75 A: EVerest's defaults, the [safety] section's."""
    rig = Rig(max_current_a=32)
    charging_at(rig, 32)
    kwh = draw(rig, 35.0, start=10, seconds=120)
    assert rig.core.status == "CHARGING"
    kwh = draw(rig, 36.0, start=200, seconds=6, kwh=kwh)
    assert rig.core.status == "CHARGING"  # 6 s over: not yet
    rig.do(rig.core.meter_reading(reading(kwh + 0.01, 207.0, amps=36.0), 207.0))
    assert rig.contactor() is False and rig.core.fault_code == "over_current"


def test_the_over_current_tolerance_and_delay_come_from_the_configuration():
    rig = Rig(max_current_a=32, safety=SafetyConfig(overcurrent_tolerance_pct=0, overcurrent_noise_a=0,
                                                    overcurrent_delay_s=6))
    charging_at(rig, 32)
    kwh = draw(rig, 32.0, start=10, seconds=30)
    assert rig.core.status == "CHARGING"
    draw(rig, 32.5, start=100, seconds=6, kwh=kwh)
    assert rig.core.fault_code == "over_current"


def test_an_ev_that_follows_a_lower_offer_in_time_is_fine():
    rig = Rig()
    rig.hlc_to_charging(now=1.0)
    rig.do(rig.core.grant(8, math.inf, 10.0))
    rig.do(rig.core.meter_reading(reading(100.1, 11.0, amps=16.0), 11.0))
    rig.do(rig.core.meter_reading(reading(100.2, 15.0, amps=8.0), 15.0))
    rig.do(rig.core.meter_reading(reading(100.3, 30.0, amps=8.0), 30.0))
    assert rig.contactor() is True and rig.core.status == "CHARGING"


def test_an_ev_that_follows_successive_lowerings_in_5_s_each_keeps_charging():
    """The site lowers a grant three times, 2 s apart; the EV takes each in 5 s after it (IEC 61851-1's
    limit), so it is above the latest offer for 9 s: compliant, not over-current (site simulation seed 24)."""
    rig = Rig(max_current_a=32)
    charging_at(rig, 32)
    kwh = draw(rig, 32.0, start=10, seconds=10)
    for t, offer in ((20, 24), (22, 16), (24, 8)):
        rig.do(rig.core.grant(offer, math.inf, float(t)))
    kwh = draw(rig, 32.0, start=21, seconds=4, kwh=kwh)  # the 32 A offer's 5 s
    kwh = draw(rig, 24.0, start=26, seconds=1, kwh=kwh)
    kwh = draw(rig, 16.0, start=28, seconds=1, kwh=kwh)
    draw(rig, 8.0, start=30, seconds=30, kwh=kwh)
    assert rig.contactor() is True and rig.core.status == "CHARGING"


def test_pending_end_read_names_the_read_a_ticket_waits_for():
    rig = Rig()
    assert rig.core.pending_end_read() is None
    rig.hlc_to_charging()
    rig.do(rig.core.pilot_reading("A", 30.0))
    read = rig.core.pending_end_read()
    assert read is not None
    rig.do(rig.core.meter_reading(reading(101.0, 30.0), 30.0, token=read.token))
    assert rig.tickets()[0].end_kwh == 101.0 and rig.core.pending_end_read() is None


def test_an_ev_plugged_in_while_the_charge_point_is_faulted_gets_a_session_when_the_fault_clears():
    rig = Rig()
    rig.do(rig.core.emergency_stop(True, 1.0))
    rig.do(rig.core.pilot_reading("F", 1.0))  # what the EVSE reads while it drives -12 V itself
    rig.do(rig.core.pilot_reading("F", 2.0))  # an EV plugs in now: still -12 V
    rig.do(rig.core.emergency_stop(False, 3.0))
    assert rig.statuses()[-1] == "AVAILABLE"
    rig.do(rig.core.pilot_reading("B", 3.0))  # +12 V again: the EV is seen
    assert rig.core.session.state.value == "BeginSession" and rig.duty() == 5.0
    rig.do(rig.core.tick(8.0))  # no ISO 15118: charging without profile
    rig.do(rig.core.authorize("alice", 9.0))
    rig.do(rig.core.pilot_reading("C", 10.0))
    assert rig.contactor() is True and rig.statuses()[-1] == "CHARGING"


def test_an_ev_plugged_in_through_a_fault_gets_a_new_session_when_it_clears():
    rig = Rig()
    rig.hlc_to_charging(now=1.0)
    rig.do(rig.core.meter_failed("meter timeout", True, 50.0))
    rig.do(rig.core.pilot_reading("F", 50.0))
    assert rig.core.session.state.value == "Failure" and rig.contactor() is False
    (first,) = rig.tickets()
    rig.do(rig.core.meter_reading(reading(104.0, 60.0), 60.0))  # the meter is back: the fault clears
    assert rig.statuses()[-1] == "AVAILABLE"
    rig.do(rig.core.pilot_reading("B", 60.0))  # the EV never left
    assert rig.core.session.state.value == "BeginSession"
    rig.sid = ""
    rig.ask(m.SessionSetupReq(evcc_id="ev-1"), 61.0)
    rig.ask(m.ServiceDiscoveryReq(), 61.0)
    rig.ask(m.PaymentServiceSelectionReq(), 61.0)
    rig.do(rig.core.authorize("alice", 61.0))
    assert rig.ask(m.AuthorizationReq(), 61.0).evse_processing == "Finished"
    rig.ask(m.ChargeParameterDiscoveryReq(energy_request_kwh=10, max_current_a=32), 61.0)
    rig.ask(m.PowerDeliveryReq(charge_progress="Start"), 61.0)
    rig.do(rig.core.pilot_reading("C", 61.1))
    assert rig.contactor() is True and rig.statuses()[-1] == "CHARGING"
    assert rig.core.sessions[-1].session_id != first.session_id


def test_an_authorization_with_no_ev_expires_and_an_ev_an_hour_later_is_not_billed_to_that_driver():
    rig = Rig()  # the default connection timeout: 60 s
    rig.do(rig.core.authorize("alice", 0.0))
    assert rig.core.next_deadline() == 60.0
    rig.do(rig.core.tick(60.0))
    assert rig.core.session.pending_driver is None
    rig.do(rig.core.pilot_reading("B", 3600.0))
    rig.do(rig.core.tick(3605.0))  # no ISO 15118: waits for an authorization
    rig.do(rig.core.pilot_reading("C", 3606.0))
    assert rig.contactor() is not True and rig.statuses()[-1] == "AVAILABLE" and not rig.core.sessions
