"""`SiteMachine.view(cp)`: what one charge point's bridge must know of the committed state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from firmware.site import GrantView
from firmware.site.view import SessionView


def test_a_fresh_charge_point_sees_nothing_waiting_and_no_grant(site: Any) -> None:
    v = site.m.view("cp1")
    assert (v.cp, v.registered, v.available, v.fault, v.status) == ("cp1", False, True, None, "DISCONNECTED")
    assert (v.authorization, v.reservation, v.session, v.lease_held) == (None, None, None, False)
    assert v.grant == GrantView(0.0, 0, 10_000, 0.0, "not_registered", 0.0)


def test_a_drivers_request_shows_as_an_authorization_for_that_point_only(site: Any) -> None:
    site.online("cp1", "cp2")
    site.add_driver("D1")
    assert site.signed("D1", "request_charge", at="cp2")["cp"] == "cp2"
    assert site.m.view("cp2").authorization == "D1"
    assert site.m.view("cp1").authorization is None
    site.tick(site.m.state.params.authorization_ms)  # it lapses with site time, not only when `expire` drops it
    site.member("cp2", "renew", cp="cp2")
    assert site.m.view("cp2").authorization is None


def test_the_view_carries_the_session_its_stop_and_the_grant_of_the_split(site: Any) -> None:
    site.online("cp1", "cp2")
    session = site.charging("cp1", "D1", meter_wh=1000)
    site.member("cp1", "checkpoint", cp="cp1", session=session, meter_wh=1500)
    v = site.m.view("cp1")
    assert v.session == SessionView(session, "D1", site.m.state.now, 1000, 1500, None)
    assert (v.status, v.lease_held) == ("CHARGING", True)
    result = site.member("cp1", "renew", cp="cp1")
    assert site.m.view("cp1").grant == GrantView.of(result)  # the same fields as a renewal's result
    site.signed("D1", "stop_charge")
    assert site.m.view("cp1").session.stop_requested == "driver"


def test_an_operator_stop_shows_as_unavailable_with_the_session_to_stop(site: Any) -> None:
    site.online("cp1")
    site.charging("cp1", "D1")
    site.signed("op1", "stop_cp", cp="cp1")
    v = site.m.view("cp1")
    assert (v.available, v.status, v.session.stop_requested) == (False, "OUT_OF_ORDER", "operator")
    assert (v.grant.grant_a, v.grant.limit_reason) == (0.0, "operator")
    site.signed("op1", "resume_cp", cp="cp1")
    assert site.m.view("cp1").available is True


def test_a_reservation_shows_for_its_point(site: Any) -> None:
    site.online("cp1", "cp2")
    site.add_driver("D2")
    assert site.signed("D2", "reserve", at="cp2")["ok"]
    assert (site.m.view("cp2").reservation, site.m.view("cp2").status) == ("D2", "RESERVED")
    assert site.m.view("cp1").reservation is None


def test_the_view_is_a_pure_query(site: Any) -> None:
    site.online("cp1")
    before = site.m.snapshot()
    site.m.view("cp1")
    assert site.m.snapshot() == before
    with pytest.raises(KeyError):
        site.m.view("cp9")


@pytest.mark.parametrize("bad", [{}, {"grant_a": "x"}, {"grant_a": 6, "grant_seq": -1, "lease_ms": 1, "fallback_a": 0,
                                                       "limit_reason": "x", "target_a": 0},
                                 {"grant_a": 6, "grant_seq": True, "lease_ms": 1, "fallback_a": 0,
                                  "limit_reason": "x", "target_a": 0},
                                 {"grant_a": 6, "grant_seq": 1, "lease_ms": 0, "fallback_a": 0,
                                  "limit_reason": "x", "target_a": 0},
                                 {"grant_a": 99, "grant_seq": 1, "lease_ms": 10, "fallback_a": 0,
                                  "limit_reason": "x", "target_a": 0}])
def test_a_grant_view_that_is_not_one_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GrantView.of(json.loads(json.dumps(bad)))
