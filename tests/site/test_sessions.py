"""Sessions: started, checkpointed, stopped or closed by the site, each with exactly one ticket worth its energy."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.site import sessions as sessions_module
from firmware.site.sessions import cost_cents


def test_a_start_consumes_the_drivers_request(site: Any) -> None:
    site.online("cp1")
    site.add_driver("D1")
    assert site.signed("D1", "request_charge", at="cp1")["ok"]
    result = site.member("cp1", "start_session", cp="cp1", session="S1", meter_wh=1000)
    assert result == {"ok": True, "session": "S1", "driver": "D1", "cp": "cp1"}
    assert not site.m.state.authorizations and site.cp_view("cp1")["status"] == "CHARGING"
    assert site.cp_view("cp1")["driver"] == "D1"


def test_a_manual_start_names_a_known_driver_and_uses_the_reservation(site: Any) -> None:
    site.online("cp1")
    site.add_driver("D1")
    assert site.signed("D1", "reserve", at="cp1")["ok"]
    assert site.cp_view("cp1")["status"] == "RESERVED"
    result = site.member("cp1", "start_session", cp="cp1", session="S1", meter_wh=0, driver="D1")
    assert result["ok"] and result["driver"] == "D1"
    assert not site.m.state.reservations


def test_a_start_for_another_driver_than_the_one_waiting_is_refused(site: Any) -> None:
    site.online("cp1")
    site.add_driver("D1")
    site.add_driver("D2")
    site.signed("D1", "request_charge", at="cp1")
    result = site.member("cp1", "start_session", cp="cp1", session="S1", meter_wh=0, driver="D2")
    assert result["error"] == "not_authorized"


def test_a_start_at_a_busy_point_is_refused(site: Any) -> None:
    site.online("cp1")
    site.charging("cp1", "D1")
    site.add_driver("D2")
    result = site.member("cp1", "start_session", cp="cp1", session="S2", meter_wh=0, driver="D2")
    assert result["error"] == "cp_busy"


def test_a_driver_charges_at_one_point_at_a_time(site: Any) -> None:
    site.online("cp1", "cp2")
    site.charging("cp1", "D1")
    result = site.member("cp2", "start_session", cp="cp2", session="S2", meter_wh=0, driver="D1")
    assert result["error"] == "already_charging"


def test_checkpoint_answers_the_energy_so_far(site: Any) -> None:
    site.online("cp1")
    session = site.charging("cp1", "D1", meter_wh=5000)
    result = site.member("cp1", "checkpoint", cp="cp1", session=session, meter_wh=7500)
    assert result == {"ok": True, "session": session, "energy_wh": 2500}


def test_stop_answers_the_ticket_worth_the_metered_energy(site: Any) -> None:
    site.register("cp1", price=0.37)
    site.member("cp1", "renew", cp="cp1")
    session = site.charging("cp1", "D1", meter_wh=12_345)
    site.tick(60_000)
    site.member("cp1", "checkpoint", cp="cp1", session=session, meter_wh=15_000)
    result = site.member("cp1", "stop_session", cp="cp1", session=session, meter_wh=20_456, reason="unplugged")
    ticket = result["ticket"]
    assert ticket["energy_wh"] == 8111 and ticket["kwh"] == 8.111
    assert ticket["cost_cents"] == 300 and ticket["eur"] == 3.0  # 8.111 kWh x 0.37 = 3.00107
    assert ticket["end_ms"] - ticket["start_ms"] == 60_000 and ticket["reason"] == "unplugged"
    assert ticket["driver"] == "D1" and ticket["cp"] == "cp1"
    assert site.cp_view("cp1")["status"] == "AVAILABLE" and site.m.summary()["tickets_waiting"] == 1


def test_the_price_is_the_one_at_the_start(site: Any) -> None:
    site.online("cp1")
    session = site.charging("cp1", "D1")
    site.register("cp1", price=9.0)
    ticket = site.member("cp1", "stop_session", cp="cp1", session=session, meter_wh=1000, reason="ev")["ticket"]
    assert ticket["cost_cents"] == 30


def test_cost_rounds_half_up_to_the_cent() -> None:
    assert cost_cents(1000, 300_000) == 30
    assert cost_cents(15, 1_000_000) == 2  # 1.5 cents
    assert cost_cents(14, 1_000_000) == 1


def test_a_driver_stop_is_recorded_for_the_charge_point_to_carry_out(site: Any) -> None:
    site.online("cp1")
    session = site.charging("cp1", "D1")
    assert site.grant("cp1") == 32
    assert site.signed("D1", "stop_charge") == {"ok": True, "session": session, "cp": "cp1"}
    assert site.m.state.sessions[session].stop_requested == "driver"
    assert site.grant("cp1") == 0 and site.reason("cp1") == "stopping"
    assert site.member("cp1", "stop_session", cp="cp1", session=session, meter_wh=10, reason="driver")["ok"]


def test_the_site_closes_the_session_of_a_silent_point_from_its_last_checkpoint(site: Any) -> None:
    site.online("cp1", "cp2")
    session = site.charging("cp1", "D1", meter_wh=1000)
    site.tick(30_000)
    site.member("cp1", "checkpoint", cp="cp1", session=session, meter_wh=4000)
    checkpoint_at = site.m.state.now
    site.tick(site.setup.params.cp_lost_ms - 1)
    assert site.member("cp2", "close_lost", cp="cp1")["error"] == "not_silent"
    site.tick(1)
    ticket = site.member("cp2", "close_lost", cp="cp1")["ticket"]
    assert ticket["reason"] == "cp_lost" and ticket["energy_wh"] == 3000 and ticket["end_ms"] == checkpoint_at
    late = site.member("cp1", "stop_session", cp="cp1", session=session, meter_wh=9000, reason="ev")
    assert late["error"] == "ticket_exists" and late["ticket"] == ticket


def test_central_takes_tickets_and_totals_remain(site: Any) -> None:
    site.online("cp1")
    s1 = site.charging("cp1", "D1", meter_wh=0)
    site.member("cp1", "stop_session", cp="cp1", session=s1, meter_wh=10_000, reason="ev")
    s2 = site.charging("cp1", "D1", meter_wh=10_000)
    site.member("cp1", "stop_session", cp="cp1", session=s2, meter_wh=15_000, reason="ev")
    result = site.signed("op1", "ack_tickets", sessions=[s1, s2])
    assert result == {"ok": True, "acked": 2, "waiting": 0,
                      "totals": {"tickets": 2, "energy_wh": 15_000, "cost_cents": 450}}
    assert not site.m.state.tickets
    late = site.member("cp1", "stop_session", cp="cp1", session=s1, meter_wh=20_000, reason="ev")
    assert late["error"] == "ticket_exists" and "ticket" not in late


def test_tickets_waiting_for_central_hold_new_sessions_back_but_never_a_stop(site: Any,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    site.online("cp1", "cp2")
    monkeypatch.setattr(sessions_module, "MAX_TICKETS", 1)
    running = site.charging("cp2", "D2")
    done = site.charging("cp1", "D1")
    site.member("cp1", "stop_session", cp="cp1", session=done, meter_wh=1, reason="ev")
    site.signed("D1", "request_charge", at="cp1")
    assert site.member("cp1", "start_session", cp="cp1", session="S9", meter_wh=0)["error"] == "full"
    assert site.member("cp2", "stop_session", cp="cp2", session=running, meter_wh=1, reason="ev")["ok"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(["checkpoint", "stop", "close", "silence", "ack"]),
                                st.integers(0, 5000)), max_size=12))
def test_exactly_one_ticket_per_session_whatever_the_order(make_site: Any, steps: list[tuple[str, int]]) -> None:
    s = make_site({"cp1": 0, "cp2": 0})
    s.online("cp1", "cp2")
    session = s.charging("cp1", "D1", meter_wh=1000, session="S")
    reading, first = 1000, 1000
    tickets = []
    for op, amount in [*steps, ("silence", 0), ("close", 0), ("stop", 0)]:
        if op == "checkpoint":
            result = s.member("cp1", "checkpoint", cp="cp1", session=session, meter_wh=reading + amount)
            if result.get("ok"):
                reading += amount
        elif op == "stop":
            result = s.member("cp1", "stop_session", cp="cp1", session=session, meter_wh=reading + amount,
                              reason="ev")
            if result.get("ok"):
                reading += amount
        elif op == "close":
            result = s.member("cp2", "close_lost", cp="cp1")
        elif op == "silence":
            s.tick(s.setup.params.cp_lost_ms)
            continue
        else:
            result = s.signed("op1", "ack_tickets", sessions=[session])
        if "ticket" in result and result.get("ok"):
            tickets.append(result["ticket"])
        if result.get("error") == "ticket_exists" and tickets:
            assert result.get("ticket", tickets[0]) == tickets[0]
    assert len(tickets) == 1
    ticket = tickets[0]
    assert ticket["energy_wh"] == reading - first
    assert ticket["cost_cents"] == cost_cents(reading - first, 300_000)
