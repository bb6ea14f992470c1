"""The pure pilot arithmetic: current <-> duty, voltage -> state, the circuit's levels."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.pilot.conversions import (
    DUTY_HLC,
    DUTY_OFF,
    DUTY_STEADY,
    PilotState,
    PilotValueError,
    check_duty,
    current_for_duty,
    duty_for_current,
    state_for_voltage,
)
from hal.pilot.physics import EvLoad, classify, pilot_levels, reading_for


@pytest.mark.parametrize(("amps", "duty"), [
    (6, 10.0), (10, 16.666666), (16, 26.666666), (32, 53.333333), (48, 80.0), (51, 85.0),
    (51.5, 84.6), (60, 88.0), (63, 89.2), (80, 96.0),
])
def test_duty_for_current_follows_the_two_formulas(amps: float, duty: float) -> None:
    assert duty_for_current(amps) == pytest.approx(duty, abs=1e-5)


@pytest.mark.parametrize("amps", [5.99, 0, -6, 80.01, 100, math.nan, math.inf, True, "16", None])
def test_duty_for_current_refuses_what_is_out_of_range(amps: object) -> None:
    with pytest.raises(PilotValueError):
        duty_for_current(amps)  # type: ignore[arg-type]


@given(st.floats(min_value=6, max_value=80))
def test_current_round_trips_through_the_duty(amps: float) -> None:
    # Exact, except just above the 51 A knee: A / 2.5 + 64 gives 84.4-85 % for 51-52.5 A, which the
    # EV reads with the lower formula as less current. Less, never more: the safe direction.
    back = current_for_duty(duty_for_current(amps))
    if 51 < amps < 52.5:
        assert 50.6 <= back < amps
    else:
        assert back == pytest.approx(amps, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("duty", "amps"), [
    (0, 0.0), (2.99, 0.0),           # no charging allowed
    (3, None), (5, None), (7, None),  # high-level communication required
    (7.5, 0.0),                      # between 7 and 8 %: not allowed
    (8, 6.0), (9.99, 6.0),           # 8-10 %: 6 A
    (10, 6.0), (50, 30.0), (85, 51.0),
    (85.01, 52.525), (90, 65.0), (96, 80.0),
    (96.5, 80.0), (97, 80.0),
    (97.01, 0.0), (100, 0.0),        # over 97 % (and the steady +12 V): not allowed
])
def test_current_for_duty_follows_iec_61851_table_a8(duty: float, amps: float | None) -> None:
    got = current_for_duty(duty)
    if amps is None:
        assert got is None
    else:
        assert got == pytest.approx(amps)


@pytest.mark.parametrize("duty", [-0.01, 100.01, 200, math.nan, -math.inf, None])
def test_current_for_duty_refuses_impossible_duties(duty: object) -> None:
    with pytest.raises(PilotValueError):
        current_for_duty(duty)  # type: ignore[arg-type]


@pytest.mark.parametrize("duty", [DUTY_OFF, DUTY_HLC, 10, 26.6, 85, 96, DUTY_STEADY])
def test_check_duty_accepts_what_an_evse_may_send(duty: float) -> None:
    assert check_duty(duty) == duty


@pytest.mark.parametrize("duty", [1, 4.9, 5.1, 9.99, 96.01, 99.9, -1, 101, math.nan])
def test_check_duty_refuses_the_rest(duty: float) -> None:
    with pytest.raises(PilotValueError):
        check_duty(duty)


@pytest.mark.parametrize(("volts", "state"), [
    (13.0, PilotState.A), (12.0, PilotState.A), (11.0, PilotState.A),
    (10.0, PilotState.B), (9.0, PilotState.B), (8.0, PilotState.B),
    (7.0, PilotState.C), (6.0, PilotState.C), (5.0, PilotState.C),
    (4.0, PilotState.D), (3.0, PilotState.D), (2.0, PilotState.D),
    (1.0, PilotState.E), (0.0, PilotState.E), (-1.0, PilotState.E),
    (-11.0, PilotState.F), (-12.0, PilotState.F), (-13.0, PilotState.F),
])
def test_state_for_voltage_inside_each_band_including_its_edges(volts: float, state: PilotState) -> None:
    assert state_for_voltage(volts) is state


@pytest.mark.parametrize("volts", [13.01, 20, 10.5, 10.01, 7.5, 4.5, 1.5, -1.01, -6, -10.99, -13.01, -30])
def test_a_voltage_outside_every_band_is_invalid(volts: float) -> None:
    assert state_for_voltage(volts) is PilotState.INVALID


@pytest.mark.parametrize("volts", [math.nan, math.inf, None, "9"])
def test_state_for_voltage_refuses_non_numbers(volts: object) -> None:
    with pytest.raises(PilotValueError):
        state_for_voltage(volts)  # type: ignore[arg-type]


@given(st.floats(min_value=-20, max_value=20))
def test_every_voltage_maps_to_exactly_one_answer(volts: float) -> None:
    state = state_for_voltage(volts)
    if state is not PilotState.INVALID:
        nominal = {"A": 12, "B": 9, "C": 6, "D": 3, "E": 0, "F": -12}[state.value]
        assert abs(volts - nominal) <= 1.0


@pytest.mark.parametrize(("load", "state"), [
    (EvLoad.NOT_CONNECTED, PilotState.A), (EvLoad.B, PilotState.B), (EvLoad.C, PilotState.C),
    (EvLoad.D, PilotState.D), (EvLoad.SHORT, PilotState.E),
])
def test_the_circuit_gives_the_nominal_levels(load: EvLoad, state: PilotState) -> None:
    for duty in (DUTY_HLC, 26.6, DUTY_STEADY):
        reading = reading_for(duty, load)
        assert reading.state is state
        assert not reading.diode_fault
    high, low = pilot_levels(26.6, load)
    assert high == pytest.approx({"A": 12, "B": 9, "C": 6, "D": 3, "E": 0}[state.value], abs=0.1)
    assert low == (0.0 if load is EvLoad.SHORT else -12.0)


def test_off_reads_f_and_steady_has_no_negative_half() -> None:
    assert reading_for(DUTY_OFF, EvLoad.B).state is PilotState.F
    assert reading_for(DUTY_STEADY, EvLoad.B).low_v is None
    assert reading_for(DUTY_OFF, EvLoad.NOT_CONNECTED).fault is False


@pytest.mark.parametrize("load", [EvLoad.B, EvLoad.C, EvLoad.D])
def test_a_missing_diode_is_seen_on_the_negative_half_while_pwm_runs(load: EvLoad) -> None:
    reading = reading_for(26.6, load, diode=False)
    assert reading.diode_fault and reading.fault
    assert reading.state.value == load.value


def test_classify_faults() -> None:
    assert classify(0.0, 0.0).fault  # E: shorted pilot
    assert classify(10.5, -12.0).state is PilotState.INVALID and classify(10.5, -12.0).fault
    assert not classify(9.0, -12.0).fault
    assert classify(9.0, -9.0).diode_fault
    assert not classify(12.0, -9.0).diode_fault  # no EV: nothing to check
