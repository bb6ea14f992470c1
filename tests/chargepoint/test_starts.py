"""Sessions start when the site commits a start for this charge point: a driver's request waiting here, the
button, a private point's standing driver; the contactor closes only then. A start the site refuses gets no
energy and no ticket; when the site does not answer, the local list decides a start the charge point asked
for itself, and the session is reported to the site once it answers."""

from __future__ import annotations

from firmware.chargepoint import (
    BILLED,
    NOT_AT_SITE,
    Authorize,
    ConfirmStart,
    Propose,
    RefuseStart,
    StopSession,
    TicketSettled,
)
from firmware.engine.core import SessionVoided


def committed_at(r, session: str) -> float:
    (when,) = [t for t, p, res in r.applied if p.tag.op == "start_session" and res.get("ok")
               and res["session"] == session]
    return when


def first_closed(r) -> float:
    return next(t for t, closed in r.closed_at if closed)


def test_a_drivers_request_starts_a_session_whose_contactor_closes_only_once_the_site_committed_it(rig):
    r = rig(latency=0.2)
    r.running()
    r.add_driver("D1")
    r.plug_in()
    r.ask_for_energy()  # the EV asks before anyone authorized it: nothing
    r.advance(1.0)
    assert not r.contactor and r.opened() == []
    assert r.signed("D1", "request_charge", at="cp1")["cp"] == "cp1"
    assert r.of(Authorize) == [Authorize("D1")]  # the replica's view shows the request waiting here
    (opened,) = r.opened()  # journaled with its first reading before anything else
    assert r.proposed("start_session") == [{"cp": "cp1", "session": opened.session_id, "meter_wh": 100_000,
                                            "driver": None}]  # the site's authorization names the driver
    r.advance(0.15)
    assert not r.contactor and r.engine.session.started  # the session is open; its energy waits for the site
    assert r.of(ConfirmStart) == [] and not r.engine.session.confirmed
    r.advance(0.1)
    assert r.contactor and first_closed(r) == committed_at(r, opened.session_id)
    assert r.site.view("cp1").session.driver == "D1" and r.site.view("cp1").authorization is None
    r.advance(3.0)
    assert r.draw_a == 32.0  # the site's grant reached the engine: 32 A of 63 A, nobody else charging


def test_a_request_withdrawn_before_the_start_commits_gives_no_energy_to_the_ev_plugged_in(rig):
    """D6's request was redirected here and an EV (anyone's) plugged in: the engine is authorized for D6. D6
    withdraws before the start is chosen: the site refuses it, and nobody charges on D6's account (site
    simulation seed 37: the start named D6, the site took it for a manual start, D6 was billed for
    another driver's energy)."""
    r = rig(latency=0.5)
    r.running()
    r.add_driver("D6")
    r.plug_in()
    r.ask_for_energy()
    r.signed("D6", "request_charge", at="cp1")
    assert r.of(Authorize) == [Authorize("D6")]
    (opened,) = r.opened()
    assert r.signed("D6", "stop_charge") == {"ok": True, "withdrawn": "cp1"}
    r.advance(1.0)
    assert r.results("start_session")[0]["error"] == "not_authorized"
    assert r.of(RefuseStart) == [RefuseStart(opened.session_id, "not_authorized")]
    r.advance(30.0)
    assert not r.ever_closed() and r.engine_tickets() == [] and r.site_tickets() == {}


def test_a_request_redirected_here_is_not_for_the_ev_already_plugged_in(rig):
    """D2 asked for cp2 (not registered): the site redirects to cp1, which it believes empty, its plug-in report
    lost. The EV there is someone else's: it does not charge on D2's account; an EV plugged in after the
    redirect does (site simulation short seeds 136, 221: D4 billed for D3's energy)."""
    r = rig()
    r.running()
    r.add_driver("D2")
    r.site_up = False  # the report of the plug-in is lost
    r.plug_in()
    r.ask_for_energy()
    r.site_up = True
    assert not r.site.view("cp1").authorization and not r.site.state.cps["cp1"].plugged
    answer = r.signed("D2", "request_charge", at="cp2")
    assert answer["cp"] == "cp1" and answer["redirected_from"] == "cp2" and r.site.view("cp1").redirected
    r.advance(5.0)
    assert r.of(Authorize) == [] and r.opened() == [] and not r.ever_closed()
    r.stop_asking()
    r.unplug()
    r.plug_in()  # D2 came: a plug-in after the redirect
    r.ask_for_energy()
    assert r.of(Authorize) == [Authorize("D2")]
    r.advance(1.0)
    assert r.contactor and r.site.view("cp1").session.driver == "D2"


def test_a_start_the_site_refuses_gets_no_energy_and_no_ticket(rig):
    r = rig(latency=0.5)
    r.running()
    r.add_driver("D1")
    r.plug_in()
    r.ask_for_energy()
    r.signed("D1", "request_charge", at="cp1")
    (opened,) = r.opened()
    r.signed("op1", "stop_cp", cp="cp1")  # the operator's stop is chosen before the start: the start is refused
    r.advance(1.0)
    assert r.results("start_session")[0]["error"] == "cp_unavailable"
    assert r.of(RefuseStart) == [RefuseStart(opened.session_id, "cp_unavailable")]
    assert [a for a in r.engine_actions if isinstance(a, SessionVoided)]
    r.advance(30.0)
    assert not r.ever_closed() and r.engine_tickets() == [] and r.of(TicketSettled) == []
    assert r.site.view("cp1").session is None and r.site_tickets() == {}
    assert r.engine.status == "OUT_OF_ORDER"


def test_the_button_asks_the_site_which_refuses_a_driver_it_does_not_know(rig):
    r = rig()
    r.running()
    r.plug_in()
    r.ask_for_energy()
    r.do(r.bridge.button(r.now))
    assert r.of(Authorize) == [Authorize("owner")]
    r.advance(1.0)
    assert r.results("start_session")[0]["error"] == "not_authorized"
    assert len(r.of(RefuseStart)) == 1 and not r.ever_closed() and r.engine_tickets() == []


def test_the_button_starts_a_known_driver_once_the_site_commits(rig):
    r = rig(latency=0.3)
    r.running()
    r.add_driver("owner")
    r.plug_in()
    r.ask_for_energy()
    r.do(r.bridge.button(r.now))
    r.advance(0.2)
    assert not r.contactor
    r.advance(0.2)
    (opened,) = r.opened()
    assert r.contactor and first_closed(r) == committed_at(r, opened.session_id)


def test_the_button_with_the_site_unreachable_lets_the_local_list_decide_and_the_session_is_reported_later(rig):
    r = rig(settings={"checkpoint_s": 30.0})
    r.running()
    r.add_driver("owner")  # a driver the site knows too: it takes the late report
    r.plug_in()
    r.site_up = False
    r.advance(8.0)  # a renewal went unanswered
    assert not r.bridge.site_reachable
    r.ask_for_energy()
    r.do(r.bridge.button(r.now))
    (opened,) = r.opened()
    assert r.of(ConfirmStart) == [ConfirmStart(opened.session_id)]  # no waiting: no quorum known
    lease_end = r.bridge.lease.until
    assert r.offer_a() == 0.0 and not r.contactor  # its last grant (0 A: no session at the site) holds until then
    r.advance(lease_end - r.now)
    assert r.contactor and r.offer_a() == 6.0  # then the fallback, as for any charge point cut off from the site
    r.advance(120.0)
    assert r.contactor and r.draw_a == 6.0  # charging at the fallback: no lease
    assert r.site.view("cp1").session is None
    r.site_up = True
    r.advance(40.0)  # the start is sent again (backing off) and committed; checkpoints follow
    assert r.site.view("cp1").session.id == opened.session_id
    assert r.site.view("cp1").session.first_wh == 100_000 and r.site.view("cp1").session.last_wh > 100_000
    r.stop_asking()
    r.unplug()
    r.advance(5.0)
    (ticket,) = r.engine_tickets()
    (settled,) = r.of(TicketSettled)
    assert settled.session_id == opened.session_id and settled.outcome == BILLED
    assert settled.site_ticket["energy_wh"] == round(ticket.end_kwh * 1000) - 100_000 > 0


def test_a_local_start_the_site_refuses_once_it_hears_stops_and_keeps_its_ticket_locally(rig):
    r = rig()
    r.running()  # "owner" is on the local list, not a driver of the site
    r.plug_in()
    r.site_up = False
    r.advance(8.0)
    r.ask_for_energy()
    r.do(r.bridge.button(r.now))
    (opened,) = r.opened()
    r.advance(60.0)
    assert r.contactor
    r.site_up = True
    r.advance(40.0)
    assert r.of(StopSession) == [StopSession(opened.session_id, "refused")]
    r.stop_asking()
    r.advance(2.0)
    (ticket,) = r.engine_tickets()
    assert ticket.kwh > 0 and r.of(TicketSettled) == [TicketSettled(opened.session_id, NOT_AT_SITE, None)]
    assert r.site_tickets() == {} and r.site.view("cp1").session is None


def test_the_site_silent_and_a_driver_not_on_the_local_list_gets_no_energy(rig):
    r = rig(local_drivers=())
    r.running()
    r.plug_in()
    r.site_up = False
    r.advance(8.0)
    r.ask_for_energy()
    r.do(r.bridge.button(r.now, driver="stranger"))
    r.advance(30.0)
    assert r.of(RefuseStart) and not r.ever_closed() and r.engine_tickets() == []


def test_a_private_points_standing_driver_charges_every_ev_plugged_in_once_the_site_commits(rig):
    r = rig(standing_driver="owner")
    r.running()
    r.add_driver("owner")
    r.plug_in()
    assert r.of(Authorize) == [Authorize("owner")]
    r.ask_for_energy()
    r.advance(1.0)
    (opened,) = r.opened()
    assert r.contactor and r.site.view("cp1").session.id == opened.session_id


def test_an_ev_unplugged_before_its_start_committed_leaves_a_site_ticket_of_nothing_and_no_local_one(rig):
    r = rig(latency=1.0)
    r.running()
    r.add_driver("D1")
    r.plug_in()
    r.signed("D1", "request_charge", at="cp1")
    (opened,) = r.opened()
    r.unplug()  # before the start's result: the engine voids the session (no energy can have flowed)
    r.advance(5.0)
    assert r.engine_tickets() == [] and not r.ever_closed()
    (ticket,) = r.site_tickets().values()  # the site committed the start: the bridge stopped it there
    assert (ticket.session, ticket.energy_wh, ticket.reason) == (opened.session_id, 0, "unplugged")
    assert r.site.view("cp1").session is None
    assert [p.tag.op for p in r.of(Propose)].count("stop_session") == 1


def test_a_point_that_boots_without_the_site_starts_on_the_local_list_and_is_billed_once_the_site_is_back(rig):
    r = rig(site_up=False)
    r.add_driver("owner")
    r.plug_in()
    r.ask_for_energy()
    r.do(r.bridge.button(r.now))
    (opened,) = r.opened()
    r.advance(30.0)
    assert r.contactor and r.draw_a == 6.0 and not r.bridge.registered  # never heard the site: the fallback
    r.site_up = True
    r.advance(60.0)  # registration and the start, sent again, in whatever order they arrive
    assert r.bridge.registered and r.site.view("cp1").session.id == opened.session_id
    assert r.draw_a == 32.0
    r.stop_asking()
    r.unplug()
    r.advance(5.0)
    (settled,) = r.of(TicketSettled)
    assert settled.outcome == BILLED and settled.site_ticket["energy_wh"] > 0


def test_a_reservation_holds_the_point_for_its_driver_who_then_asks(rig):
    r = rig()
    r.running()
    r.add_driver("D1")
    r.add_driver("D2")
    assert r.signed("D1", "reserve", at="cp1")["cp"] == "cp1"
    r.plug_in()  # D1's EV arrives; the reservation alone starts nothing
    r.ask_for_energy()
    r.advance(2.0)
    assert r.of(Authorize) == [] and r.site.view("cp1").reservation == "D1"
    assert r.signed("D2", "request_charge", at="cp1")["why"] == "reserved"  # not for D2 (cp2 is not online)
    r.advance(1.0)
    assert r.of(Authorize) == []
    assert r.signed("D1", "request_charge")["cp"] == "cp1"  # anywhere: the site picks D1's reserved point
    r.advance(1.0)
    assert r.of(Authorize) == [Authorize("D1")] and r.contactor
    assert r.site.view("cp1").reservation is None and r.site.view("cp1").session.driver == "D1"
