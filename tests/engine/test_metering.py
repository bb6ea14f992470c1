"""Metering and tickets: kWh between the start and end readings, € at the price, live figures."""

import pytest

from firmware.engine.metering import SessionMeter
from hal.meter.reading import MeterReading


def reading(kwh, at, power_w=0.0, amps=0.0):
    return MeterReading((230.0, 230.0, 230.0), (amps, amps, amps), power_w, kwh, at)


def test_ticket_is_the_energy_between_start_and_end_at_the_price():
    meter = SessionMeter("cp1", price_eur_kwh=0.30)
    meter.start("s1", "alice", reading(1000.0, 100.0))
    live = meter.update(reading(1005.5, 200.0, power_w=11040.0, amps=16.0))
    assert (live.energy_kwh, live.cost_eur, live.power_kw, live.current_a) == (5.5, 1.65, 11.04, 16.0)
    ticket = meter.close("ev_stopped", reading(1012.345, 3823.0))
    assert ticket.kwh == pytest.approx(12.345) and ticket.cost_eur == 3.70
    assert (ticket.driver, ticket.session_id, ticket.reason, ticket.duration_s) == ("alice", "s1", "ev_stopped", 3723.0)
    assert ticket.line() == ("Ticket s1 at cp1 for alice: 12.345 kWh x 0.30 EUR/kWh = 3.70 EUR, 1h02m03s "
                             "(ev_stopped)")
    assert ticket.to_dict()["kwh"] == pytest.approx(12.345) and ticket.to_dict()["cost_eur"] == 3.70
    assert not meter.active


def test_a_dead_meter_closes_the_ticket_on_the_last_good_reading():
    meter = SessionMeter("cp1", 0.25)
    meter.start("s1", "bob", reading(10.0, 0.0))
    meter.update(reading(12.0, 60.0))
    ticket = meter.close("fault:meter")
    assert (ticket.end_kwh, ticket.end_ts, ticket.kwh, ticket.cost_eur) == (12.0, 60.0, 2.0, 0.5)


def test_a_register_that_goes_back_is_refused():
    meter = SessionMeter("cp1", 0.25)
    meter.start("s1", "bob", reading(10.0, 0.0))
    assert meter.update(reading(9.0, 1.0)) is None and meter.refused == 1
    assert meter.close("x").kwh == 0.0


def test_no_session_no_live_figures_and_no_double_start():
    meter = SessionMeter("cp1", 0.25)
    assert meter.update(reading(1.0, 0.0)) is None and meter.live is None
    with pytest.raises(RuntimeError):
        meter.close("x")
    meter.start("s1", "a", reading(1.0, 0.0))
    with pytest.raises(RuntimeError, match="still open"):
        meter.start("s2", "b", reading(1.0, 0.0))
