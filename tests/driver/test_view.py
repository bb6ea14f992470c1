"""The driver's view, pure: messages in (bytes as the broker gives them), what the driver sees and events out."""

from __future__ import annotations

import json
from typing import Any

from central_broker.driver.view import STALE_S, Closed, DriverView, Ended, Lapsed, Started
from evnet.mqtt import encode_payload
from firmware.engine.metering import Ticket
from firmware.site import Context, SiteMachine, SiteSetup, member_command, new_private_key, public_key_b64
from firmware.site import signed_request as sign

STATE = "evnet/s1/state"


def cp_row(status: str = "AVAILABLE", **kw: Any) -> dict[str, Any]:
    return {"status": status, "location": "Bay", "price_eur_kwh": 0.3, "limit_reason": "no_ev", **kw}


def state(slot: int, *, sessions: list | None = None, waiting: list | None = None, cps: dict | None = None) -> bytes:
    return encode_payload({"slot": slot, "site": "s1", "now_ms": slot * 1000, "limit_a": 63.0, "tickets_waiting": 0,
                           "charge_points": cps or {"cp1": cp_row(), "cp2": cp_row()},
                           "sessions": sessions or [], "waiting": waiting or [], "reservations": []})


def session(sid: str = "cp2-1", cp: str = "cp2", driver: str = "D1", wh: int = 0, stop: str | None = None) -> dict:
    return {"session": sid, "cp": cp, "driver": driver, "start_ms": 1, "energy_wh": wh, "stop_requested": stop}


def telemetry(cp: str = "cp2", sid: str = "cp2-1", driver: str = "D1", kw: float = 7.2, kwh: float = 1.5) -> bytes:
    return encode_payload({"cp": cp, "session": sid, "driver": driver, "power_kw": kw, "energy_kwh": kwh,
                           "cost_eur": round(kwh * 0.3, 2), "current_a": 10.0, "limit_a": 10.7,
                           "limit_reason": "site_share", "ts": 1.0})


def final(cp: str = "cp2", sid: str = "cp2-1", driver: str = "D1") -> bytes:
    t = Ticket(cp, sid, driver, 100.0, 700.0, 10.0, 12.5, 0.3, "unplugged")
    return encode_payload({"cp": cp, "session": sid, "final": True, "ticket": t.to_dict(), "ts": 2.0})


def view() -> DriverView:
    return DriverView("D1", "s1")


def test_a_request_waits_then_lapses_only_once_a_state_showed_it_and_a_later_one_does_not() -> None:
    v = view()
    assert v.received(STATE, state(5), 0.0) == []
    v.answered("request_charge", {"cp": "cp2", "expires_in_ms": 120000, "redirected_from": "cp1",
                                  "redirect_reason": "busy"})
    s = v.session(0.0)
    assert s is not None and s.phase == "waiting" and s.cp == "cp2" and s.redirect is not None
    assert (s.redirect.asked, s.redirect.reason) == ("cp1", "busy")
    assert v.received(STATE, state(5), 0.0) == []          # the retained state from before: not news
    assert v.session(0.0) is not None
    assert v.received(STATE, state(6, waiting=[{"cp": "cp2", "driver": "D1", "expires_ms": 9}]), 0.0) == []
    assert v.received(STATE, state(4), 0.0) == []          # an older slot is ignored
    assert v.received(STATE, state(7), 0.0) == [Lapsed("cp2")]
    assert v.session(0.0) is None


def test_a_session_from_the_state_with_live_figures_from_telemetry_ends_once_with_its_ticket() -> None:
    v = view()
    v.answered("request_charge", {"cp": "cp2", "expires_in_ms": 1000})
    assert v.received(STATE, state(2, sessions=[session(wh=500)]), 0.0) == [Started("cp2", "cp2-1")]
    s = v.session(0.0)
    assert s is not None and s.phase == "charging" and s.energy_kwh == 0.5 and s.cost_eur == 0.15
    assert s.power_kw is None and s.limit_reason == "no_ev"  # no telemetry yet: the site's word
    assert v.received("evnet/s1/cp/cp2/telemetry", telemetry(), 10.0) == []
    s = v.session(10.0)
    assert s is not None and (s.power_kw, s.energy_kwh, s.cost_eur, s.limit_reason) == (7.2, 1.5, 0.45, "site_share")
    assert v.session(10.0 + STALE_S + 1).power_kw is None  # type: ignore[union-attr]  # not live any more
    v.received(STATE, state(3, sessions=[session(wh=1500, stop="driver")]), 11.0)
    assert v.session(11.0).phase == "stopping"  # type: ignore[union-attr]
    (ended,) = v.received("evnet/s1/cp/cp2/telemetry", final(), 12.0)
    assert isinstance(ended, Ended) and ended.ticket.kwh == 2.5 and ended.ticket.eur == 0.75
    assert v.session(12.0) is None and v.ticket == ended.ticket
    assert v.received(STATE, state(4, sessions=[session(wh=1500)]), 13.0) == []  # a state that lags
    assert v.session(13.0) is None
    assert v.received("evnet/s1/cp/cp2/telemetry", final(), 14.0) == []  # the ticket sent again: once is enough
    assert v.received(STATE, state(5), 15.0) == []


def test_a_start_heard_in_telemetry_before_the_state_is_not_undone_by_the_older_state() -> None:
    v = view()
    v.answered("request_charge", {"cp": "cp2", "expires_in_ms": 1000})
    assert v.received("evnet/s1/cp/cp2/telemetry", telemetry(), 0.0) == [Started("cp2", "cp2-1")]
    assert v.received(STATE, state(2, waiting=[{"cp": "cp2", "driver": "D1", "expires_ms": 9}]), 0.0) == []
    assert v.received(STATE, state(3), 0.0) == []
    assert v.session(0.0).phase == "charging"  # type: ignore[union-attr]


def test_a_session_the_site_closed_without_a_ticket_heard_is_closed_and_the_ticket_still_counts() -> None:
    v = view()
    v.received(STATE, state(2, sessions=[session()]), 0.0)  # picked up: an app started after a crash
    assert v.received(STATE, state(3), 0.0) == [Closed("cp2", "cp2-1")]
    (ended,) = v.received("evnet/s1/cp/cp2/telemetry", final(), 1.0)
    assert isinstance(ended, Ended) and v.ticket == ended.ticket


def test_others_sessions_and_tickets_are_not_this_drivers() -> None:
    v = view()
    assert v.received(STATE, state(2, sessions=[session(driver="D2")]), 0.0) == []
    assert v.received("evnet/s1/cp/cp2/telemetry", telemetry(driver="D2"), 0.0) == []
    assert v.received("evnet/s1/cp/cp2/telemetry", final(driver="D2"), 0.0) == []
    assert v.session(0.0) is None and v.ticket is None


def test_a_withdrawn_request_lapses() -> None:
    v = view()
    v.answered("request_charge", {"cp": "cp1", "expires_in_ms": 1000})
    assert v.answered("stop_charge", {"withdrawn": "cp1"}) == [Lapsed("cp1")]


def test_the_list_takes_a_charge_points_own_word_when_it_is_gone_or_unknown_to_the_site() -> None:
    v = view()
    cps = {"cp1": cp_row("RESERVED"), "cp2": cp_row(), "cp3": cp_row("DISCONNECTED", location="", price_eur_kwh=0)}
    v.received(STATE, state(2, cps=cps), 0.0)
    for cp, status in (("cp1", "AVAILABLE"), ("cp2", "DISCONNECTED"), ("cp3", "AVAILABLE")):
        v.received(f"evnet/s1/cp/{cp}/status", encode_payload({"cp": cp, "status": status, "location": f"Bay {cp}",
                                                              "price_eur_kwh": 0.4, "fault": None}), 0.0)
    points = {p.cp: p for p in v.points()}
    assert points["cp1"].status == "RESERVED"        # the site knows the reservation
    assert points["cp2"].status == "DISCONNECTED"    # its Last Will: gone, whatever the site said last
    assert (points["cp3"].status, points["cp3"].location, points["cp3"].price_eur_kwh) == ("AVAILABLE", "Bay cp3", 0.4)


def test_bad_messages_are_dropped_counted_by_reason_and_nothing_raises() -> None:
    v = view()
    bad = [(STATE, b"not json"), (STATE, b'{"v":2}'), (STATE, encode_payload({"slot": -1, "charge_points": {}})),
           ("evnet/s1/cp/cp2/status", encode_payload({"cp": "cp2", "status": "ON_FIRE"})),
           ("evnet/s1/cp/cp2/status", encode_payload({"cp": "cp1", "status": "AVAILABLE"})),
           ("evnet/s1/cp/CP!/status", encode_payload({"status": "AVAILABLE"})),
           ("evnet/s1/cp/cp2/telemetry", encode_payload({"cp": "cp2", "session": "s", "power_kw": float("inf")})),
           ("evnet/s1/cp/cp2/telemetry", b"{" + b" " * 17000 + b"}"),
           (STATE, state(1, cps={f"c{i}": cp_row() for i in range(65)}))]
    for topic, payload in bad:
        assert v.received(topic, payload, 0.0) == []
    assert sum(v.dropped.values()) == len(bad)
    reasons = {key[0] for key in v.dropped}
    assert {"not_json", "bad_field", "bad_status", "wrong_cp", "bad_topic", "too_big"} <= reasons
    assert v.state is None and v.statuses == {} and v.received("evnet/s2/state", b"x", 0.0) == []


def test_it_reads_the_state_a_real_site_machine_publishes() -> None:
    key = new_private_key()
    m = SiteMachine(SiteSetup("s1", 63, {"cp1": 0, "cp2": 60}))
    ctx = Context("cp1", True, (1, "cp1"), 1000)
    for op, args in (("register", {"cp": "cp1", "price_eur_kwh": 0.3, "max_current_a": 32, "location": "Bay 1"}),
                     ("renew", {"cp": "cp1"}), ("add_principal", {"id": "op1", "role": "operator",
                                                                  "key": public_key_b64(key)})):
        assert json.loads(m.apply(member_command(op, args), ctx))["ok"]
    add_driver = sign(key, site="s1", by="op1", seq=1, op="add_principal",
                      args={"id": "D1", "role": "driver", "key": public_key_b64(key)})
    m.apply(add_driver, Context("op1", False, (1, "cp1"), 1001))
    m.apply(member_command("start_session", {"cp": "cp1", "session": "S1", "meter_wh": 5, "driver": "D1"}), ctx)
    v = view()
    assert v.received(STATE, encode_payload({**m.summary(), "slot": 7}), 0.0) == [Started("cp1", "S1")]
    assert [(p.cp, p.status, p.location) for p in v.points()] == [("cp1", "CHARGING", "Bay 1"),
                                                                  ("cp2", "DISCONNECTED", "")]


def _real_site() -> tuple[SiteMachine, Context]:
    """A real site machine where D1 charges at cp1 (session S1, meter at 5 Wh)."""
    key = new_private_key()
    m = SiteMachine(SiteSetup("s1", 630, {"cp1": 0, "cp2": 60}))
    ctx = Context("cp1", True, (1, "cp1"), 1000)
    for op, args in (("register", {"cp": "cp1", "price_eur_kwh": 0.3, "max_current_a": 32, "location": "Bay 1"}),
                     ("renew", {"cp": "cp1"}), ("add_principal", {"id": "op1", "role": "operator",
                                                                  "key": public_key_b64(key)})):
        assert json.loads(m.apply(member_command(op, args), ctx))["ok"]
    assert json.loads(m.apply(sign(key, site="s1", by="op1", seq=1, op="add_principal",
                                   args={"id": "D1", "role": "driver", "key": public_key_b64(key)}),
                              Context("op1", False, (1, "cp1"), 1001)))["ok"]
    assert json.loads(m.apply(member_command("start_session", {"cp": "cp1", "session": "S1", "meter_wh": 5,
                                                               "driver": "D1"}), ctx))["ok"]
    return m, ctx


def test_a_missed_final_telemetry_the_ticket_is_read_from_the_sites_waiting_tickets() -> None:
    m, ctx = _real_site()
    v = view()
    assert v.received(STATE, encode_payload({**m.summary(), "slot": 7}), 0.0) == [Started("cp1", "S1")]
    assert json.loads(m.apply(member_command("stop_session", {"cp": "cp1", "session": "S1", "meter_wh": 2505,
                                                              "reason": "unplugged"}), ctx))["ok"]
    # the engine's last telemetry, with its ticket, went by while the app's link was down: the next state says it
    (ended,) = v.received(STATE, encode_payload({**m.summary(), "slot": 8}), 1.0)
    assert isinstance(ended, Ended) and (ended.ticket.session, ended.ticket.cp, ended.ticket.kwh,
                                         ended.ticket.eur) == ("S1", "cp1", 2.5, 0.75)
    assert v.session(1.0) is None and v.ticket == ended.ticket
    assert v.received(STATE, encode_payload({**m.summary(), "slot": 9}), 2.0) == []  # once
    assert v.received("evnet/s1/cp/cp1/telemetry", final("cp1", "S1"), 3.0) == []  # the engine's, late: once


def test_a_session_closed_before_its_ticket_is_listed_ends_when_a_later_state_lists_it() -> None:
    v = view()
    v.received(STATE, state(2, sessions=[session()]), 0.0)
    assert v.received(STATE, state(3), 1.0) == [Closed("cp2", "cp2-1")]  # gone, its ticket not among the 100
    ticket = {"session": "cp2-1", "cp": "cp2", "driver": "D1", "start_ms": 1000, "end_ms": 61_000,
              "energy_wh": 2500, "kwh": 2.5, "cost_cents": 75, "eur": 0.75, "reason": "unplugged"}
    other = {**ticket, "session": "cp1-9", "cp": "cp1", "driver": "D2"}
    (ended,) = v.received(STATE, encode_payload({**json.loads(state(4)), "tickets": [other, ticket]}), 2.0)
    assert isinstance(ended, Ended) and ended.ticket.session == "cp2-1" and ended.ticket.duration_s == 60.0


def test_an_old_ticket_of_the_driver_in_the_state_is_not_taken_for_a_session_it_follows() -> None:
    v = view()
    old = {"session": "old-1", "cp": "cp1", "driver": "D1", "start_ms": 1, "end_ms": 2, "energy_wh": 1, "kwh": 0.001,
           "cost_cents": 0, "eur": 0.0, "reason": "ev"}
    assert v.received(STATE, encode_payload({**json.loads(state(4)), "tickets": [old]}), 0.0) == []
    assert v.ticket is None
