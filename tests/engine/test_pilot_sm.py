"""The pilot state machine: every transition and timing rule, in simulated time (plain floats)."""

import pytest

from firmware.engine.pilot_sm import (
    EvPresence,
    Mode,
    PilotChanged,
    PilotMachine,
    PilotState,
    SetContactor,
    SetPilotError,
    SetPwm,
    duty_for_current,
)


def contactor_moves(actions):
    return [a for a in actions if isinstance(a, SetContactor)]


def pwm(actions):
    return [a.duty_pct for a in actions if isinstance(a, SetPwm)]


def charging(mode=Mode.PWM, current=16.0, now=0.0) -> PilotMachine:
    """A machine whose EV is in C with the contactor closed."""
    sm = PilotMachine()
    sm.set_mode(mode, now)
    sm.set_current(current, now)
    sm.pilot("B", now)
    sm.set_ready(True, now)
    sm.pilot("C", now)
    assert sm.contactor
    return sm


@pytest.mark.parametrize("amps, duty", [(6, 10.0), (16, 16 / 0.6), (32, 32 / 0.6), (51, 85.0), (63, 63 / 2.5 + 64),
                                        (80, 96.0)])
def test_duty_for_current_follows_iec_61851(amps, duty):
    assert duty_for_current(amps) == pytest.approx(duty)


def test_plug_in_reports_the_change_and_offers_hlc_at_5_percent():
    sm = PilotMachine()
    actions = sm.pilot("B", 1.0)
    assert PilotChanged(PilotState.A, PilotState.B) in actions
    assert pwm(actions) == [5.0]
    assert not contactor_moves(actions)


def test_basic_charging_offers_the_current_only_once_ready():
    sm = PilotMachine()
    sm.set_mode(Mode.PWM, 0)
    sm.set_current(16, 0)
    assert pwm(sm.pilot("B", 0)) == []  # not ready: steady +12 V (no PWM), nothing to change
    assert pwm(sm.set_ready(True, 0)) == [pytest.approx(16 / 0.6)]
    assert pwm(sm.set_current(10, 0)) == [pytest.approx(10 / 0.6)]


def test_contactor_closes_at_once_in_c_when_ready():
    sm = PilotMachine()
    sm.set_mode(Mode.PWM, 0)
    sm.set_current(16, 0)
    sm.pilot("B", 0)
    sm.set_ready(True, 0)
    assert contactor_moves(sm.pilot("C", 0.5)) == [SetContactor(True, "state_c_ready")]
    assert sm.closed_at == 0.5


def test_state_c_before_ready_waits_then_closes_when_ready_comes():
    sm = PilotMachine()
    sm.pilot("B", 0)
    assert contactor_moves(sm.pilot("C", 1)) == []
    assert contactor_moves(sm.set_ready(True, 2)) == [SetContactor(True, "state_c_ready")]


def test_basic_charging_below_6_amps_does_not_close():
    sm = PilotMachine()
    sm.set_mode(Mode.PWM, 0)
    sm.set_current(5, 0)
    sm.pilot("B", 0)
    sm.set_ready(True, 0)
    assert not sm.can_energize()
    assert contactor_moves(sm.pilot("C", 0)) == []


@pytest.mark.parametrize("reading, reason", [("B", "ev_stopped"), ("A", "unplugged"), ("D", "not_state_c")])
def test_contactor_opens_in_the_same_step_as_leaving_c(reading, reason):
    sm = charging()
    actions = sm.pilot(reading, 10.0)
    assert contactor_moves(actions) == [SetContactor(False, reason)]
    assert not sm.contactor


def test_unplug_turns_the_pwm_off():
    sm = charging()
    assert pwm(sm.pilot("A", 1)) == [None]


@pytest.mark.parametrize("code", ["meter", "emergency_stop", "relay"])
def test_a_fault_opens_the_contactor_at_once_and_drives_f(code):
    sm = charging()
    actions = sm.fault(code, 3.0)
    assert contactor_moves(actions) == [SetContactor(False, f"fault:{code}")]
    assert SetPilotError() in actions
    assert sm.faulted and not sm.can_energize()
    assert sm.tick(1000.0) == []  # latched: no retry of a non-pilot fault
    assert sm.faulted


def test_clearing_a_fault_restores_the_pilot_and_charging():
    sm = charging(mode=Mode.HLC)
    sm.fault("meter", 1)
    actions = sm.clear_fault("meter", 2)
    assert pwm(actions) == [5.0]
    assert contactor_moves(actions) == [SetContactor(True, "state_c_ready")]


@pytest.mark.parametrize("reading, code", [("E", "pilot_short"), ("F", "pilot_fault"), ("INVALID", "pilot_invalid")])
def test_pilot_faults_lead_to_f_and_are_retried(reading, code):
    sm = charging()
    actions = sm.pilot(reading, 5.0)
    assert contactor_moves(actions) == [SetContactor(False, f"fault:{code}")]
    assert SetPilotError() in actions and code in sm.faults
    assert sm.next_deadline() == 15.0
    assert sm.tick(14.9) == [] and sm.faulted
    sm.pilot("B", 14.95)  # the EV side is healthy again
    actions = sm.tick(15.0)
    assert not sm.faulted and pwm(actions) == [pytest.approx(16 / 0.6)]


def test_diode_fault_leads_to_f():
    sm = charging()
    actions = sm.fault("diode_fault", 1)
    assert SetPilotError() in actions and not sm.contactor
    assert sm.next_deadline() == 11.0


@pytest.mark.parametrize("reading", ["F", "INVALID", "E"])
def test_readings_while_the_evse_itself_drives_f_raise_no_new_fault(reading):
    sm = charging()
    sm.fault("meter", 0)
    sm.pilot(reading, 0.001)
    assert set(sm.faults) == {"meter"}


def test_pwm_stop_the_ev_obeys_opens_on_b():
    sm = charging(now=0)
    actions = sm.set_ready(False, 100.0)
    assert pwm(actions) == [None] and sm.contactor and sm.stopping
    assert sm.next_deadline() == 106.0
    assert contactor_moves(sm.pilot("B", 101.0)) == [SetContactor(False, "ev_stopped")]
    assert sm.next_deadline() is None


def test_pwm_stop_the_ev_ignores_forces_the_contactor_open_after_6_s():
    sm = charging()
    sm.set_ready(False, 100.0)
    assert contactor_moves(sm.tick(105.999)) == []
    assert sm.contactor
    assert contactor_moves(sm.tick(106.0)) == [SetContactor(False, "stop_ignored")]
    assert sm.next_deadline() is None  # no timer left to spin on
    assert sm.tick(200.0) == []


def test_current_below_6_amps_in_basic_charging_is_a_pwm_stop():
    sm = charging()
    actions = sm.set_current(0, 50.0)
    assert pwm(actions) == [None] and sm.stop_deadline == 56.0
    assert contactor_moves(sm.tick(56.0)) == [SetContactor(False, "stop_ignored")]


def test_hlc_keeps_5_percent_while_charging_whatever_the_current():
    sm = charging(mode=Mode.HLC, current=0.0)  # HLC tells the current in messages
    assert sm.duty == 5.0 and sm.contactor
    assert pwm(sm.set_current(32, 1)) == []


def test_ready_again_during_the_stop_cancels_it():
    sm = charging()
    sm.set_ready(False, 10)
    actions = sm.set_ready(True, 11)
    assert not sm.stopping and pwm(actions) == [pytest.approx(16 / 0.6)]
    assert sm.tick(20) == [] and sm.contactor


def test_repeated_readings_produce_no_actions():
    sm = charging()
    assert sm.pilot("C", 1) == []
    assert sm.set_ready(True, 1) == []


def presence(actions):
    return [a.present for a in actions if isinstance(a, EvPresence)]


def test_plug_in_and_unplug_are_told_once_each():
    sm = PilotMachine()
    assert presence(sm.pilot("B", 0)) == [True]
    assert presence(sm.pilot("C", 1)) == []  # B -> C is the same EV
    assert presence(sm.pilot("A", 2)) == [False]


def test_an_ev_plugged_in_while_the_evse_drives_f_is_seen_when_the_fault_clears():
    sm = PilotMachine()
    sm.fault("emergency_stop", 0)
    assert presence(sm.pilot("F", 1)) == []  # our own -12 V: the EV that plugs in now cannot be seen
    assert sm.ev_present is None
    actions = sm.clear_fault("emergency_stop", 2)
    assert pwm(actions) and SetPilotError() not in actions  # the pilot is driven again ...
    assert presence(sm.pilot("B", 2)) == [True]  # ... and the next reading shows the EV: a plug-in


def test_an_ev_that_stays_plugged_through_a_fault_is_seen_again_after_it():
    sm = charging()
    assert presence(sm.fault("meter", 1)) == []
    sm.pilot("F", 1)
    sm.clear_fault("meter", 2)
    assert presence(sm.pilot("B", 2)) == [True]


def test_an_ev_gone_during_a_fault_is_told_gone_after_it():
    sm = charging()
    sm.pilot("E", 1)  # a short: pilot fault, retried after 10 s
    sm.pilot("F", 1.1)
    sm.tick(11.0)
    assert presence(sm.pilot("A", 11.0)) == [False]
