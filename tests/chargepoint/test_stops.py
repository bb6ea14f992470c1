"""Checkpoints while a session runs, and its end: a stop the site decided (an operator, the driver) ends the
session with one ticket; a session the site closed while the point was cut off (`close_lost`) ends in the
site's ticket, the point's own one dropped; a ticket from before a restart reaches the site once."""

from __future__ import annotations

from firmware.chargepoint import BILLED, SITE_TICKET, Bridge, SetAvailable, StopSession, TicketSettled
from firmware.engine.core import TicketClosed


def one_ticket_each(r, session: str, outcome: str = BILLED) -> None:
    """The engine's ticket, the site's ticket and the settlement: one each, for the same energy."""
    (ticket,) = r.engine_tickets()
    (site,) = r.site_tickets().values()
    (settled,) = r.of(TicketSettled)
    assert ticket.session_id == site.session == settled.session_id == session
    assert settled.outcome == outcome and settled.site_ticket["energy_wh"] == site.energy_wh
    if outcome == BILLED:
        assert site.energy_wh == round(ticket.end_kwh * 1000) - round(ticket.start_kwh * 1000) > 0


def test_a_running_session_checkpoints_its_reading_every_interval_while_it_moves(rig) -> None:
    r = rig(settings={"checkpoint_s": 60.0})
    session = r.charging()
    r.advance(185.0)
    marks = r.proposed("checkpoint")
    assert len(marks) == 3 and all(m["session"] == session for m in marks)
    assert [m["meter_wh"] for m in marks] == sorted(m["meter_wh"] for m in marks)
    assert r.site.view("cp1").session.last_wh == marks[-1]["meter_wh"]
    r.ev_wants_a = 0.0  # the EV is full: nothing moves, nothing to say
    r.advance(1.0)
    r.advance(180.0)
    assert len(r.proposed("checkpoint")) == 4  # the one that saw its last energy, then none


def test_an_operators_stop_ends_the_session_with_one_ticket(rig) -> None:
    r = rig()
    session = r.charging()
    r.advance(300.0)
    r.signed("op1", "stop_cp", cp="cp1")
    assert r.of(SetAvailable) == [SetAvailable(False)] and r.engine.status == "OUT_OF_ORDER"
    assert r.of(StopSession) == [StopSession(session, "operator")]
    assert r.offer_a() == 0.0  # the site's grant is 0 A (operator); the EV is told to stop by the PWM
    r.stop_asking()
    r.advance(5.0)
    assert not r.contactor
    one_ticket_each(r, session)
    assert r.engine_tickets()[0].reason == "operator" and next(iter(r.site_tickets().values())).reason == "operator"
    r.advance(60.0)
    assert len(r.of(StopSession)) == 1 and len(r.proposed("stop_session")) == 1  # once
    r.signed("op1", "resume_cp", cp="cp1")
    assert r.of(SetAvailable)[-1] == SetAvailable(True) and r.engine.status == "AVAILABLE"


def test_a_drivers_stop_ends_the_session_with_one_ticket(rig) -> None:
    r = rig()
    session = r.charging()
    r.advance(120.0)
    assert r.signed("D1", "stop_charge")["session"] == session
    assert r.of(StopSession) == [StopSession(session, "driver")]
    r.stop_asking()
    r.advance(5.0)
    one_ticket_each(r, session)
    assert next(iter(r.site_tickets().values())).reason == "driver"


def test_a_session_the_site_closed_while_the_point_was_cut_off_ends_in_the_sites_ticket(rig) -> None:
    r = rig(site_params={"cp_lost_ms": 120_000}, settings={"checkpoint_s": 30.0})
    session = r.charging()
    r.advance(100.0)
    checkpointed = r.site.view("cp1").session.last_wh
    r.site_up = False  # cut off: the point goes on charging at its fallback
    r.other_online("cp2")
    for _ in range(13):  # the rest of the site goes on; cp1 says nothing for more than cp_lost_ms
        r.advance(10.0)
        r.member("cp2", "renew", cp="cp2")
    assert r.contactor and r.draw_a == 6.0
    closed = r.member("cp2", "close_lost", cp="cp1")["ticket"]
    assert (closed["session"], closed["reason"]) == (session, "cp_lost")
    assert closed["energy_wh"] == checkpointed - 100_000
    r.site_up = True
    r.advance(5.0)  # back: its first checkpoint hears the session is closed, and it stops it here too
    assert r.of(StopSession) == [StopSession(session, "site_closed")]
    assert r.results("checkpoint")[-1]["error"] == "ticket_exists"
    r.stop_asking()
    r.advance(5.0)
    one_ticket_each(r, session, outcome=SITE_TICKET)
    (ticket,) = r.engine_tickets()
    assert round(ticket.end_kwh * 1000) - 100_000 > closed["energy_wh"]  # the point metered more; the site's counts


def test_a_session_that_ended_while_the_point_was_cut_off_and_closed_by_the_site_keeps_the_sites_ticket(rig) -> None:
    r = rig(site_params={"cp_lost_ms": 60_000})
    session = r.charging()
    r.advance(70.0)
    r.site_up = False
    r.stop_asking()
    r.unplug()
    r.advance(2.0)
    assert len(r.engine_tickets()) == 1 and r.of(TicketSettled) == []  # its stop waits for the site
    r.other_online("cp2")
    for _ in range(8):
        r.advance(10.0)
        r.member("cp2", "renew", cp="cp2")
    assert r.member("cp2", "close_lost", cp="cp1")["ticket"]["reason"] == "cp_lost"
    r.site_up = True
    r.advance(40.0)  # the stop is sent again (backing off) and finds the site's ticket
    one_ticket_each(r, session, outcome=SITE_TICKET)


def test_a_ticket_from_before_a_restart_reaches_the_site_once(rig) -> None:
    r = rig()
    session = r.charging()
    r.advance(120.0)
    r.stop_asking()
    r.unplug()
    r.site_up = False
    r.advance(2.0)
    (ticket,) = r.engine_tickets()
    r.bridge = Bridge(r.bridge.settings)  # a restart: a new bridge, the journal's ticket shown to it again
    r.site_up = True
    r.do(r.bridge.start(r.now))
    r.do(r.bridge.engine_action(TicketClosed(ticket), r.now))
    r.advance(5.0)
    (settled,) = r.of(TicketSettled)
    assert (settled.session_id, settled.outcome) == (session, BILLED)
    (site,) = r.site_tickets().values()
    assert site.energy_wh == round(ticket.end_kwh * 1000) - 100_000
