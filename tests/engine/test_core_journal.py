"""The core's side of the journal: a session's first reading goes out (`SessionOpened`) before anything that
may close its contactor, and a session a crash left open is closed from the meter (`recover`)."""

from __future__ import annotations

import math

from firmware.engine.core import EngineCore, ReadMeter, SessionOpened, StatusChanged, TicketClosed
from firmware.engine.pilot_sm import SetContactor
from hal.meter.reading import MeterReading


def reading(kwh, at=0.0, amps=0.0):
    return MeterReading((230.0,) * 3, (amps,) * 3, amps * 690.0, kwh, at)


def core():
    c = EngineCore("cp1", price_eur_kwh=0.30, max_current_a=32, fallback_a=6)
    c.start(0.0)
    c.grant(16, math.inf, 0.0)
    return c


def kinds(actions):
    return [type(a).__name__ for a in actions]


def test_the_session_is_recorded_before_its_contactor_may_close():
    c = core()
    c.meter_reading(reading(100.0), 0.0)
    c.pilot_reading("C", 0.0)  # an EV that asks for energy at once
    c.tick(5.0)  # no ISO 15118: charging without profile
    out = c.authorize("alice", 6.0)
    assert SessionOpened(c.meter.session_id, "alice", reading(100.0)) in out
    assert kinds(out).index("SessionOpened") < kinds(out).index("SetContactor")
    assert SetContactor(True, "state_c_ready") in out


def test_with_no_reading_yet_the_contactor_waits_for_the_first_one():
    c = core()
    c.pilot_reading("C", 0.0)
    c.tick(5.0)
    out = c.authorize("alice", 6.0)
    assert not [a for a in out if isinstance(a, SetContactor) and a.closed] and ReadMeter in map(type, out)
    assert not c.pilot.contactor
    out = c.meter_reading(reading(100.0, 7.0), 7.0)
    assert kinds(out).index("SessionOpened") < kinds(out).index("SetContactor")
    assert c.pilot.contactor


def test_a_session_left_open_is_closed_from_the_meter_with_its_reason():
    c = core()
    out = c.recover("cp1-x", "alice", reading(100.0, 10.0), "power_loss", 1.0, reading(104.5, 500.0))
    (ticket,) = [a.ticket for a in out if isinstance(a, TicketClosed)]
    assert (ticket.session_id, ticket.driver, ticket.reason) == ("cp1-x", "alice", "power_loss")
    assert (ticket.start_kwh, ticket.end_kwh, ticket.kwh) == (100.0, 104.5, 4.5)
    assert c.status == "AVAILABLE" and not c.meter.active


def test_until_the_meter_answers_no_new_session_starts_and_then_the_ticket_closes_on_a_new_reading():
    c = core()
    out = c.recover("cp1-x", "alice", reading(100.0, 10.0), "restart", 1.0, None)
    assert c.status == "FAULTED" and c.fault_code == "recovery" and ReadMeter in map(type, out)
    c.meter_failed("meter timeout", True, 2.0)  # still no meter: no ticket on the reading from before the crash
    c.pilot_reading("C", 2.0)
    c.authorize("bob", 3.0)
    assert not c.pilot.contactor and not c.tickets and not c.sessions
    token = [a for a in out if isinstance(a, ReadMeter)][0].token
    out = c.meter_reading(reading(102.0, 20.0), 20.0, token=token)
    (ticket,) = [a.ticket for a in out if isinstance(a, TicketClosed)]
    assert (ticket.kwh, ticket.reason) == (2.0, "restart")
    assert StatusChanged("AVAILABLE", None) in out
