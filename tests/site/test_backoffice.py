"""What a charge point's back office (OCPP) asks of the site, for that charge point only: a remote start that
waits for the EV and is never redirected, a remote stop, reservations for an id token, the charging profiles
in force as caps the split obeys, and ChangeAvailability as the member's own stop/resume."""

from __future__ import annotations

import json
from typing import Any

import pytest


def test_a_remote_start_waits_for_the_ev_of_its_token_and_the_ticket_bills_the_token(site: Any) -> None:
    site.online("cp1", "cp2")
    got = site.member("cp1", "remote_start", cp="cp1", token="TAG1", timeout_s=30)
    assert got["ok"] and got["cp"] == "cp1" and got["expires_in_ms"] == 30_000
    assert site.m.view("cp1").authorization == "TAG1"
    assert site.member("cp1", "start_session", cp="cp1", session="s-1", meter_wh=100)["ok"]
    assert site.m.state.sessions["s-1"].driver == "TAG1"
    assert site.member("cp1", "stop_session", cp="cp1", session="s-1", meter_wh=1100, reason="remote")["ok"]
    assert site.m.state.tickets["s-1"].driver == "TAG1" and site.m.state.tickets["s-1"].energy_wh == 1000
    site.tick(31_000)
    site.member("cp1", "remote_start", cp="cp1", token="TAG2", timeout_s=30)
    site.tick(31_000)
    site.member("cp1", "expire")
    assert site.m.view("cp1").authorization is None  # ConnectionTimeOut: the wait ends


def test_a_remote_start_at_a_busy_point_is_refused_never_redirected(site: Any) -> None:
    site.online("cp1", "cp2")
    site.charging("cp1", "D1")
    got = site.member("cp1", "remote_start", cp="cp1", token="TAG1")
    assert got["error"] == "cp_unavailable" and got["why"] == "busy"
    assert site.m.view("cp2").authorization is None
    site.signed("op1", "stop_cp", cp="cp2")
    assert site.member("cp2", "remote_start", cp="cp2", token="TAG1")["why"] == "out_of_order"


def test_a_member_acts_only_for_its_own_point(site: Any) -> None:
    site.online("cp1", "cp2")
    for op, args in [("remote_start", {"token": "T"}), ("remote_cancel_reservation", {}),
                     ("charging_limits", {"max_a": 10}), ("remote_stop", {"session": "x"}),
                     ("remote_reserve", {"token": "T", "duration_s": 60})]:
        assert site.member("cp1", op, cp="cp2", **args)["error"] == "not_your_charge_point", op
    assert site.member("cp1", "stop_cp", cp="cp2")["error"] == "not_your_charge_point"
    assert site.member("cp1", "stop_cp", cp="all")["error"] == "not_your_charge_point"
    assert site.raw(json.dumps({"op": "remote_start", "args": {"cp": "cp1", "token": "T"}}).encode(),
                    client="app", member=False)["error"] == "unauthenticated"
    assert site.m.view("cp2").authorization is None and site.m.view("cp2").available


def test_change_availability_is_the_members_own_stop_and_resume(site: Any) -> None:
    site.online("cp1")
    assert site.member("cp1", "stop_cp", cp="cp1")["ok"]
    assert site.m.view("cp1").status == "OUT_OF_ORDER"
    assert site.member("cp1", "resume_cp", cp="cp1")["ok"]
    assert site.m.view("cp1").available


def test_a_remote_stop_marks_the_session_and_a_wrong_one_is_refused(site: Any) -> None:
    site.online("cp1", "cp2")
    s1 = site.charging("cp1", "D1")
    s2 = site.charging("cp2", "D2")
    assert site.member("cp1", "remote_stop", cp="cp1", session=s2)["error"] == "no_session"
    got = site.member("cp1", "remote_stop", cp="cp1", session=s1)
    assert got["ok"] and got["driver"] == "D1"
    assert site.m.view("cp1").session.stop_requested == "remote"
    site.renew_all()
    assert site.grant("cp1") == 0 and site.reason("cp1") == "stopping"


def test_reservations_for_a_token(site: Any) -> None:
    site.online("cp1", "cp2")
    got = site.member("cp1", "remote_reserve", cp="cp1", token="TAG1", duration_s=7200)  # beyond a driver's 1 h
    assert got["ok"] and got["expires_in_ms"] == 7_200_000
    assert site.m.view("cp1").reservation == "TAG1" and site.m.view("cp1").status == "RESERVED"
    assert site.member("cp1", "remote_start", cp="cp1", token="OTHER")["why"] == "reserved"
    assert site.member("cp1", "remote_start", cp="cp1", token="TAG1")["ok"]  # its holder may start
    assert site.member("cp1", "remote_cancel_reservation", cp="cp1") == {"ok": True, "cp": "cp1", "driver": "TAG1"}
    assert site.member("cp1", "remote_cancel_reservation", cp="cp1")["error"] == "no_reservation"
    site.charging("cp2", "D2")
    assert site.member("cp2", "remote_reserve", cp="cp2", token="TAG2", duration_s=60)["error"] == "cp_busy"
    assert site.member("cp2", "remote_reserve", cp="cp2", token="TAG2", duration_s=86_401)["error"] == "bad_field"


def test_charging_limits_cap_the_split_and_the_session_cap_ends_with_its_session(site: Any) -> None:
    site.online("cp1", "cp2")
    s1 = site.charging("cp1", "D1")
    site.charging("cp2", "D2")
    site.renew_all()
    assert site.grant("cp1") == 31.5
    got = site.member("cp1", "charging_limits", cp="cp1", max_a=20, default_a=16, session_a=None)
    assert got["ok"] and got["csms_cap_a"] == 16.0
    site.renew_all()
    assert (site.grant("cp1"), site.reason("cp1")) == (16.0, "csms_profile")
    site.member("cp1", "charging_limits", cp="cp1", max_a=20, default_a=16, session_a=25)  # TxProfile beats default
    site.renew_all()
    assert (site.grant("cp1"), site.reason("cp1")) == (20.0, "csms_profile")
    site.member("cp1", "charging_limits", cp="cp1", max_a=None, default_a=None, session_a=0)  # 0 A: paused
    site.renew_all()
    assert (site.grant("cp1"), site.reason("cp1")) == (0.0, "csms_profile")
    assert site.drawing() <= 63
    site.member("cp1", "stop_session", cp="cp1", session=s1, meter_wh=10, reason="ev")
    assert site.m.state.cps["cp1"].csms_session_da is None  # a TxProfile lives as long as its session


@pytest.mark.parametrize("args", [{"max_a": 81}, {"max_a": -1}, {"default_a": "6"}, {"session_a": float("nan")},
                                  {"max_a": True}, {"bogus": 1}])
def test_bad_limits_are_refused_and_change_nothing(site: Any, args: dict[str, Any]) -> None:
    site.online("cp1")
    before = site.m.snapshot()
    got = site.raw(json.dumps({"op": "charging_limits", "args": {"cp": "cp1", **args}}).encode(), client="cp1",
                   member=True)
    assert got["error"] in ("bad_field", "malformed")
    assert site.m.snapshot() == before


def test_the_limits_travel_in_snapshots_and_a_format_2_snapshot_restores(make_site: Any) -> None:
    s = make_site({"cp1": 0})
    s.online("cp1")
    s.member("cp1", "charging_limits", cp="cp1", max_a=12, default_a=None, session_a=None)
    copy = make_site({"cp1": 0})
    copy.m.restore(s.m.snapshot())
    assert copy.m.state.cps["cp1"].csms_max_da == 120 and copy.m.snapshot() == s.m.snapshot()
    old = json.loads(s.m.snapshot())
    old["v"] = 2
    for rec in old["cps"].values():
        for name in ("csms_max_da", "csms_default_da", "csms_session_da"):
            del rec[name]
    copy.m.restore(json.dumps(old).encode())
    assert copy.m.state.cps["cp1"].csms_cap_da() is None
