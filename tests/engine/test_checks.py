"""The checks a real charger makes on its meter's readings (firmware/engine/checks.py), in domain time."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evnet.config.schema import SafetyConfig
from firmware.engine.checks import (
    FLOW_A,
    METER_STUCK,
    RELAY_WELDED,
    STUCK_STEPS,
    MeterChecks,
    register_step_kwh,
)
from hal.meter.reading import MeterReading


def reading(kwh: float, amps: float | tuple[float, float, float], volts: float = 230.0) -> MeterReading:
    currents = amps if isinstance(amps, tuple) else (amps,) * 3
    return MeterReading((volts,) * 3, currents, volts * sum(currents), kwh, 0.0)


# ---- the welded contactor ----

def test_current_while_the_contactor_is_commanded_open_is_a_welded_relay() -> None:
    checks = MeterChecks()
    checks.contactor(True, 0.0)
    assert checks.reading(reading(100.0, 16.0), 1.0) is None
    checks.contactor(False, 10.0)  # opened; the meter still shows the current a moment
    assert checks.reading(reading(100.1, 16.0), 10.05) is None
    assert checks.reading(reading(100.1, 16.0), 11.9) is None  # within the grace
    assert checks.reading(reading(100.1, 16.0), 12.5) is None  # the first reading that shows it ...
    assert checks.reading(reading(100.1, 16.0), 13.5) == RELAY_WELDED  # ... and the next


def test_an_open_contactor_with_no_current_or_noise_is_not_welded() -> None:
    checks = MeterChecks()  # at start: open, and no command seen yet
    for t in range(0, 600, 1):
        assert checks.reading(reading(100.0, FLOW_A - 0.01), float(t)) is None
    checks.contactor(True, 600.0)
    checks.contactor(False, 700.0)
    assert checks.reading(reading(100.0, 16.0), 702.5) is None  # one reading is not yet a weld
    assert checks.reading(reading(100.0, 0.0), 703.5) is None  # and the next says it was a lag
    assert checks.reading(reading(100.0, 16.0), 704.5) is None


# ---- the stuck import register ----

def test_a_register_that_does_not_move_while_current_flows_is_stuck() -> None:
    checks = MeterChecks()
    checks.contactor(True, 0.0)
    checks.offer(16, 0.0)
    power_kw = 3 * 230 * 16 / 1000  # 11.04 kW
    due = STUCK_STEPS * 0.01 / power_kw * 3600  # 16.3 s of 16 A on three phases
    results = {t: checks.reading(reading(100.0, 16.0), float(t)) for t in range(0, 40)}
    (tripped,) = [t for t, code in results.items() if code == METER_STUCK][:1]
    assert due <= tripped <= due + 1


def test_current_below_the_flow_threshold_never_makes_a_register_stuck() -> None:
    checks = MeterChecks()
    checks.contactor(True, 0.0)
    checks.offer(16, 0.0)
    for t in range(0, 48 * 3600, 5):  # two days of 0.9 A: meter noise, not energy
        assert checks.reading(reading(100.0, FLOW_A - 0.1), float(t)) is None


def test_the_register_step_follows_float32_for_large_registers() -> None:
    assert register_step_kwh(123.45) == 0.01
    assert register_step_kwh(1_000_000.0) == pytest.approx(0.0625)  # float32's step at a million kWh


@settings(max_examples=300, deadline=None)
@given(amps=st.tuples(*[st.floats(0.0, 80.0)] * 3), interval_s=st.floats(0.1, 30.0),
       start_kwh=st.one_of(st.floats(0.0, 1e4), st.floats(1e4, 5e6)), power_factor=st.floats(0.5, 1.0),
       readings=st.integers(10, 400))
def test_a_working_meter_never_trips_the_stuck_check(amps, interval_s, start_kwh, power_factor, readings) -> None:
    """A register that shows the true energy rounded down to its step (0.01 kWh, or float32's) at any
    current, any reading interval, any power factor, is never called stuck."""
    checks = MeterChecks()
    checks.contactor(True, 0.0)
    true_kwh = start_kwh
    for i in range(readings):
        now = i * interval_s
        step = register_step_kwh(true_kwh)
        shown = math.floor(true_kwh / step) * step
        assert checks.reading(reading(shown, amps), now) != METER_STUCK
        true_kwh += 230.0 * sum(amps) * power_factor * interval_s / 3_600_000.0


# ---- over-current ----

@pytest.mark.parametrize(("offer", "drawn", "trips"), [(32, 35.0, False), (32, 36.0, True), (16, 18.0, False),
                                                       (16, 18.2, True), (6, 7.1, False), (6, 7.2, True)])
def test_over_current_limit_is_everests(offer: float, drawn: float, trips: bool) -> None:
    checks = MeterChecks()
    checks.contactor(True, 0.0)
    checks.offer(offer, 0.0)
    kwh = 100.0
    codes = []
    for t in range(0, 9):
        kwh += 0.02
        codes.append(checks.reading(reading(kwh, drawn), float(t)))
    assert ("over_current" in codes) is trips
    if trips:
        assert codes.index("over_current") == 7  # 7 s after it first read over the limit


def _draws(checks: MeterChecks, offers: dict[int, float], drawn: dict[int, float], seconds: int) -> list[str | None]:
    """Readings every second: the offer changes at the keys of `offers`, the draw at those of `drawn`."""
    checks.contactor(True, 0.0)
    kwh, amps, codes = 100.0, 0.0, []
    for t in range(seconds):
        if t in offers:
            checks.offer(offers[t], float(t))
        amps = drawn.get(t, amps)
        kwh += amps * 690.0 / 3_600_000.0
        codes.append(checks.reading(reading(round(kwh, 2), amps), float(t) + 0.5))
    return codes


def test_an_ev_that_follows_successive_lowerings_within_5_s_each_is_never_over_current() -> None:
    """32 A, then a lowering every 3 s (the site sharing with EVs that arrive): an EV that takes each
    new offer in 5 s later (IEC 61851-1's limit) is above the latest offer for 14 s, and is compliant."""
    offers = {0: 32.0, 10: 24.0, 13: 16.0, 16: 10.0, 19: 6.0}
    drawn = {0: 32.0} | {t + 5: a for t, a in offers.items() if t}
    assert set(_draws(MeterChecks(), offers, drawn, 60)) == {None}


def test_an_ev_that_ignores_a_lower_offer_is_cut_off_after_its_5_s_and_the_delay() -> None:
    codes = _draws(MeterChecks(), {0: 32.0, 10: 16.0}, {0: 32.0}, 60)
    assert codes.index("over_current") == 10 + 5 + 7  # 5 s to follow, then 7 s over


def test_a_raise_ends_an_over_current_at_once() -> None:
    """An EV drawing 32 A on a lowered 16 A: offered 32 A again, it draws what it is offered."""
    codes = _draws(MeterChecks(), {0: 32.0, 10: 16.0, 20: 32.0, 30: 16.0}, {0: 32.0}, 60)
    assert codes.index("over_current") == 30 + 5 + 7


def test_the_safety_section_is_read_checked_and_reaches_the_engine(tmp_path) -> None:
    from evnet.config import ConfigError
    from firmware.engine.evse import Evse

    from .conftest import make_config

    assert make_config(tmp_path).safety == SafetyConfig()  # the defaults: EVerest's
    cfg = make_config(tmp_path, extra="[safety]\novercurrent_tolerance_pct = 5\novercurrent_delay_s = 10\n")
    evse = Evse(cfg, mqtt=False, monitor=False, print_tickets=False)
    try:
        assert evse.core.checks.limits is cfg.safety and evse.core.checks.over_limit_a(32) == pytest.approx(34.125)
    finally:
        evse.stop()
    with pytest.raises(ConfigError, match="overcurrent_delay_s: .*6 to 60 s"):
        make_config(tmp_path, extra="[safety]\novercurrent_delay_s = 5\n")
