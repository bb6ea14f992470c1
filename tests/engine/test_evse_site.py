"""`Evse` as a site's charge point (`site_observer`, what `evnet cp` builds on), on the mock HAL: the observer
sees what the engine does, the lease is the site's alone, a contactor waits for `confirm_start`, the button asks
the bridge, and a ticket stays in the journal until the site has it (and is shown again after a restart)."""

from __future__ import annotations

import pytest

from evnet.clock import RealClock
from firmware.engine import core as c
from firmware.engine.evse import Evse, ManualStartPressed
from hal.meter import MeterReading
from hal.pilot import EvLoad

from .conftest import make_config, wait_for


class Seen:
    """What a bridge would be shown, in order (called on the engine's control loop)."""

    def __init__(self) -> None:
        self.events: list = []

    def __call__(self, event: object, now: float) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in list(self.events) if isinstance(e, kind)]


def contactor_pin(evse: Evse) -> int:
    return evse.board.contactor._device.value


def press_start(evse: Evse) -> None:
    pin = evse.board.pin_factory.pin(evse.cfg.hal.pins.button_start.pin)
    pin.drive_low()  # active low
    pin.drive_high()


def test_a_site_charge_point_waits_for_the_site_and_shows_the_bridge_what_it_does(evse_factory) -> None:
    seen = Seen()
    evse = evse_factory(speed=50.0, site_observer=seen)
    assert evse.core.allowed_a == 6.0  # no lease of its own: the fallback until the site grants one
    wait_for(lambda: seen.of(MeterReading), what="meter readings shown")
    press_start(evse)
    wait_for(lambda: seen.of(ManualStartPressed), what="the button shown to the bridge")
    assert evse.core.session.pending_driver is None  # the button alone starts nothing: the bridge asks the site
    ev = evse.cable.ev
    ev.set_load(EvLoad.B)
    wait_for(lambda: c.PlugChanged(True) in seen.events, what="the plug-in shown")
    wait_for(lambda: evse.core.session.state.value == "Authentication", what="PWM fallback")
    evse.set_limit(16.0, evse.clock.monotonic() + 1000.0)
    evse.authorize("alice")
    ev.set_load(EvLoad.C)
    wait_for(lambda: seen.of(c.SessionOpened), what="the session opened (journaled) and shown")
    (opened,) = seen.of(c.SessionOpened)
    assert evse.ledger.journal.state.open is not None
    loops = evse.loop_iterations
    wait_for(lambda: evse.loop_iterations > loops + 5, what="the loop to run")
    assert contactor_pin(evse) == 0  # not before the site confirms
    evse.confirm_start(opened.session_id)
    wait_for(lambda: contactor_pin(evse) == 1, what="contactor closed once confirmed")
    evse.request_stop("operator")
    ev.set_load(EvLoad.B)
    wait_for(lambda: seen.of(c.TicketClosed), what="the ticket shown")
    (ticket,) = [t.ticket for t in seen.of(c.TicketClosed)]
    assert ticket.session_id == opened.session_id
    loops = evse.loop_iterations
    wait_for(lambda: evse.loop_iterations > loops + 5, what="the loop to run")
    assert list(evse.ledger.journal.state.tickets) == [ticket.session_id]  # kept until the site has it
    evse.ticket_taken(ticket.session_id)
    wait_for(lambda: evse.ledger.journal.state.tickets == {}, what="the ticket taken")


def test_a_refused_start_leaves_no_ticket_and_the_journal_no_open_session(evse_factory) -> None:
    seen = Seen()
    evse = evse_factory(speed=50.0, site_observer=seen)
    ev = evse.cable.ev
    ev.set_load(EvLoad.B)
    wait_for(lambda: evse.core.session.state.value == "Authentication", what="PWM fallback")
    evse.authorize("mallory")
    ev.set_load(EvLoad.C)
    wait_for(lambda: seen.of(c.SessionOpened), what="the session opened")
    evse.refuse_start(seen.of(c.SessionOpened)[0].session_id, "not_authorized")
    wait_for(lambda: seen.of(c.SessionVoided), what="the session voided")
    wait_for(lambda: evse.ledger.journal.state.open is None, what="the journal to close it")
    assert contactor_pin(evse) == 0 and seen.of(c.TicketClosed) == [] and evse.ledger.untaken == []


def test_tickets_nobody_took_are_shown_to_the_bridge_again_at_start(tmp_path, evse_factory) -> None:
    first = Seen()
    evse = evse_factory(speed=50.0, site_observer=first)
    ev = evse.cable.ev
    ev.set_load(EvLoad.B)
    wait_for(lambda: evse.core.session.state.value == "Authentication", what="PWM fallback")
    evse.set_limit(16.0, evse.clock.monotonic() + 1000.0)
    evse.authorize("bob")
    ev.set_load(EvLoad.C)
    wait_for(lambda: first.of(c.SessionOpened), what="the session opened")
    evse.confirm_start(first.of(c.SessionOpened)[0].session_id)
    wait_for(lambda: contactor_pin(evse) == 1, what="contactor closed")
    ev.set_load(EvLoad.NOT_CONNECTED)
    wait_for(lambda: first.of(c.TicketClosed), what="the ticket")
    evse.stop()
    again = Seen()
    restarted = Evse(make_config(tmp_path), clock=RealClock(50.0), mqtt=False, monitor=False, site_observer=again)
    try:
        restarted.start()
        assert [t.ticket for t in again.of(c.TicketClosed)] == [t.ticket for t in first.of(c.TicketClosed)]
    finally:
        restarted.stop()


def test_a_site_charge_point_has_no_standing_driver(tmp_path) -> None:
    with pytest.raises(ValueError, match="bridge"):
        Evse(make_config(tmp_path), mqtt=False, monitor=False, site_observer=Seen(), standing_driver="owner")
