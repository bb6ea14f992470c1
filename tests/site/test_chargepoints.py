"""A charge point's own commands and an operator's commands about charge points: their documented results."""

from __future__ import annotations

from typing import Any


def test_register_answers_with_its_grant_and_makes_the_point_available(site: Any) -> None:
    result = site.member("cp1", "register", cp="cp1", location="Bay 1", price_eur_kwh=0.35, max_current_a=32,
                         phases=1)
    assert result == {"ok": True, "cp": "cp1", "grant_a": 0.0, "grant_seq": 0, "lease_ms": 10_000,
                      "fallback_a": 0.0, "limit_reason": "no_ev", "target_a": 0.0}
    view = site.cp_view("cp1")
    assert (view["status"], view["location"], view["price_eur_kwh"], view["max_current_a"], view["phases"]) == \
        ("AVAILABLE", "Bay 1", 0.35, 32.0, 1)
    assert site.cp_view("cp2")["status"] == "DISCONNECTED"


def test_register_again_updates_the_point(site: Any) -> None:
    site.register("cp1", price=0.30)
    site.register("cp1", price=0.40, max_a=16)
    assert site.cp_view("cp1")["price_eur_kwh"] == 0.40 and site.cp_view("cp1")["max_current_a"] == 16.0


def test_register_below_the_fallback_is_refused(make_site: Any) -> None:
    s = make_site({"cp1": 10, "cp2": 6})
    result = s.member("cp1", "register", cp="cp1", price_eur_kwh=0.3, max_current_a=8)
    assert result["error"] == "bad_field" and result["field"] == "max_current_a"


def test_report_is_kept_and_shown(site: Any) -> None:
    site.online("cp1")
    assert site.member("cp1", "report", cp="cp1", plugged=True, drawn_a=0, ev_max_a=16, health="degraded")["ok"]
    view = site.cp_view("cp1")
    assert (view["plugged"], view["ev_max_a"], view["health"]) == (True, 16.0, "degraded")


def test_a_fault_stays_until_cleared(site: Any) -> None:
    site.online("cp1")
    site.member("cp1", "report", cp="cp1", plugged=False, drawn_a=0, fault="relay_welded")
    site.member("cp1", "report", cp="cp1", plugged=False, drawn_a=0)
    assert site.cp_view("cp1")["status"] == "FAULTED" and site.cp_view("cp1")["fault"] == "relay_welded"
    result = site.member("cp1", "clear_fault", cp="cp1")
    assert result["ok"] and result["cleared"] == "relay_welded"
    assert site.cp_view("cp1")["status"] == "AVAILABLE"


def test_a_faulted_point_gets_no_current(site: Any) -> None:
    site.online("cp1", "cp2")
    site.charging("cp1", "D1")
    assert site.grant("cp1") == 32
    site.member("cp1", "report", cp="cp1", plugged=True, drawn_a=0, fault="pilot")
    assert site.grant("cp1") == 0 and site.reason("cp1") == "fault"


def test_renew_answers_grant_seq_lease_and_why(site: Any) -> None:
    site.online("cp1")
    site.charging("cp1", "D1")
    result = site.member("cp1", "renew", cp="cp1")
    assert result["ok"] and result["grant_a"] == 32.0 and result["grant_seq"] == site.seq("cp1")
    assert result["lease_ms"] == 10_000 and result["limit_reason"] == "cp_max"
    a = site.m.state.budget.allowances["cp1"]
    assert a.lease_until == site.m.state.now + site.setup.params.site_lease_ms


def test_a_lease_that_ran_out_stops_the_share_until_the_next_renewal(site: Any) -> None:
    site.online("cp1", "cp2")
    site.charging("cp1", "D1")
    site.charging("cp2", "D2")
    site.tick(site.setup.params.site_lease_ms + 1)
    site.member("cp2", "renew", cp="cp2")
    assert site.reason("cp1") == "no_lease" and site.grant("cp1") == 0
    site.tick(site.setup.params.site_reaction_ms)
    site.member("cp2", "renew", cp="cp2")
    assert site.grant("cp2") == 32  # cp1's old grant has run out: cp2 gets all it can take
    assert site.member("cp1", "renew", cp="cp1")["limit_reason"] in {"site_share", "waiting_for_others"}


def test_ack_of_the_current_grant_releases_what_it_was_lowered_from(site: Any) -> None:
    site.online("cp1", "cp2")
    site.charging("cp1", "D1")
    assert site.grant("cp1") == 32
    site.charging("cp2", "D2")  # cp1 is lowered to 31.5 A but may draw 32 A until it follows: 31 A are left
    assert site.grant("cp1") == 31.5 and site.grant("cp2") == 31 and site.reason("cp2") == "waiting_for_others"
    result = site.member("cp1", "ack_grant", cp="cp1", seq=site.seq("cp1"))
    assert result["ok"] and result["released"] is True
    assert site.grant("cp2") == 31.5 and site.reason("cp2") == "site_share"
    again = site.member("cp1", "ack_grant", cp="cp1", seq=site.seq("cp1"))
    assert again["ok"] and again["released"] is False


def test_operator_stop_puts_a_point_out_of_order_and_asks_its_session_to_stop(site: Any) -> None:
    site.online("cp1", "cp2")
    session = site.charging("cp1", "D1")
    site.add_driver("D2")
    assert site.signed("D2", "reserve", at="cp2")["ok"]
    result = site.signed("op1", "stop_cp", cp="all")
    assert result["ok"] and result["cps"] == ["cp1", "cp2", "cp3"] and result["stopping"] == [session]
    assert result["cancelled"] == [{"cp": "cp2", "driver": "D2"}]
    assert site.m.state.sessions[session].stop_requested == "operator"
    assert site.cp_view("cp1")["status"] == "OUT_OF_ORDER" and site.grant("cp1") == 0
    assert site.reason("cp1") == "operator"


def test_operator_resume_makes_points_available_again(site: Any) -> None:
    site.online("cp1", "cp2")
    site.add_operator()
    site.signed("op1", "stop_cp", cp="cp2")
    result = site.signed("op1", "resume_cp", cp="cp2")
    assert result == {"ok": True, "cps": ["cp2"]}
    assert site.cp_view("cp2")["status"] == "AVAILABLE"


def test_set_limit_answers_the_limit_and_the_one_in_force(site: Any) -> None:
    site.online("cp1", "cp2")
    site.charging("cp1", "D1")
    site.charging("cp2", "D2")  # 31.5 A each, once cp1 followed
    site.member("cp1", "ack_grant", cp="cp1", seq=site.seq("cp1"))
    result = site.signed("op1", "set_limit", limit_a=40)
    assert result == {"ok": True, "limit_a": 40.0, "in_force_a": 63.0}  # EVs follow within their reaction time
    for cp in ("cp1", "cp2"):
        site.member(cp, "ack_grant", cp=cp, seq=site.seq(cp))
    assert site.m.summary()["in_force_a"] == 40.0 and site.grant("cp1") == site.grant("cp2") == 20
    assert site.signed("op1", "set_limit", limit_a=80)["in_force_a"] == 80.0


def test_set_priority_is_kept(site: Any) -> None:
    site.online("cp1")
    site.add_operator()
    assert site.signed("op1", "set_priority", cp="cp1", priority=5) == {"ok": True, "cp": "cp1", "priority": 5}
    assert site.cp_view("cp1")["priority"] == 5
