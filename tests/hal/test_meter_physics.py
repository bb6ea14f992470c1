"""Energy integration of the simulated meter, in domain time."""

import pytest

from hal.meter.physics import EnergyIntegrator, phase_currents


def test_one_hour_at_32_a_on_three_phases_is_22_08_kwh():
    e = EnergyIntegrator(phases=3, voltage_v=230.0, now=0.0)
    e.advance(0.0, 32.0)
    assert e.power_w == pytest.approx(22_080.0)
    e.advance(3600.0, 32.0)
    assert e.import_kwh == pytest.approx(22.08)


def test_energy_of_an_interval_is_the_power_held_during_it():
    e = EnergyIntegrator(phases=3, voltage_v=230.0, now=0.0, import_kwh=100.0)
    e.advance(0.0, (16.0, 16.0, 16.0))
    e.advance(1800.0, 0.0)  # contactor opens after half an hour: that half hour counts at 16 A
    assert e.import_kwh == pytest.approx(100.0 + 3 * 230 * 16 * 0.5 / 1000)
    e.advance(7200.0, 0.0)  # nothing flows while open
    assert e.import_kwh == pytest.approx(100.0 + 5.52)
    assert e.power_w == 0.0


def test_single_phase_meter_sees_only_l1():
    e = EnergyIntegrator(phases=1, voltage_v=230.0, now=10.0)
    e.advance(10.0, (10.0, 20.0, 30.0))
    assert e.current_a == (10.0, 0.0, 0.0) and e.voltage_v == (230.0, 0.0, 0.0)
    e.advance(10.0 + 3600.0, 10.0)
    assert e.import_kwh == pytest.approx(2.3)


def test_time_never_runs_backwards_in_the_integral():
    e = EnergyIntegrator(phases=3, voltage_v=230.0, now=100.0)
    e.advance(100.0, 10.0)
    e.advance(50.0, 10.0)
    assert e.import_kwh == 0.0


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), (1.0, 2.0), (1.0, -2.0, 3.0)])
def test_bad_loads_are_refused(bad):
    with pytest.raises(ValueError, match="load"):
        phase_currents(bad, 3)


def test_a_refused_load_changes_nothing():
    e = EnergyIntegrator(phases=3, voltage_v=230.0, now=0.0)
    e.advance(0.0, 10.0)
    with pytest.raises(ValueError):
        e.advance(3600.0, -1.0)
    e.advance(3600.0, 10.0)
    assert e.import_kwh == pytest.approx(6.9)
