"""A driver's requests: charge here or anywhere (with redirects), reserve, cancel, stop; and expiry by command."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def ready(site: Any) -> Any:
    site.online("cp1", "cp2", "cp3")
    for d in ("D1", "D2", "D3"):
        site.add_driver(d)
    return site


def test_a_request_at_a_free_point_waits_there_for_the_ev(ready: Any) -> None:
    result = ready.signed("D1", "request_charge", at="cp2")
    assert result == {"ok": True, "cp": "cp2", "expires_in_ms": 120_000}
    assert ready.m.summary()["waiting"] == [{"cp": "cp2", "driver": "D1", "expires_ms": ready.m.state.now + 120_000}]


def test_a_request_anywhere_takes_the_first_free_point(ready: Any) -> None:
    ready.charging("cp1", "D2")
    ready.member("cp2", "report", cp="cp2", plugged=True, drawn_a=0)  # someone's EV waits at cp2
    assert ready.signed("D1", "request_charge")["cp"] == "cp3"


def test_a_busy_point_redirects_with_the_reason(ready: Any) -> None:
    ready.charging("cp1", "D2")
    result = ready.signed("D1", "request_charge", at="cp1")
    assert result == {"ok": True, "cp": "cp2", "expires_in_ms": 120_000, "redirected_from": "cp1",
                      "redirect_reason": "busy"}


def test_a_point_reserved_for_another_redirects(ready: Any) -> None:
    ready.signed("D2", "reserve", at="cp1")
    result = ready.signed("D1", "request_charge", at="cp1")
    assert result["cp"] == "cp2" and result["redirect_reason"] == "reserved"


def test_an_out_of_order_point_redirects(ready: Any) -> None:
    ready.signed("op1", "stop_cp", cp="cp1")
    result = ready.signed("D1", "request_charge", at="cp1")
    assert result["cp"] == "cp2" and result["redirect_reason"] == "out_of_order"


def test_a_request_at_a_stopped_point_where_an_ev_waits_is_not_redirected(ready: Any) -> None:
    """The EV waiting there is most likely the driver's own: sent elsewhere, the authorization would wait for
    whichever EV plugs in there next (the site simulation's short seed 1441: D1 billed for D2's EV)."""
    ready.member("cp1", "report", cp="cp1", plugged=True, drawn_a=0)
    ready.signed("op1", "stop_cp", cp="cp1")
    result = ready.signed("D1", "request_charge", at="cp1")
    assert result["error"] == "no_free_charge_point" and result["why"] == "out_of_order"
    assert ready.m.summary()["waiting"] == []


def test_a_point_not_heard_from_redirects(ready: Any) -> None:
    ready.tick(ready.setup.params.site_lease_ms)
    ready.member("cp3", "renew", cp="cp3")
    result = ready.signed("D1", "request_charge", at="cp1")
    assert result["cp"] == "cp3" and result["redirect_reason"] == "not_heard"


def test_no_free_point_is_an_error_that_says_why(ready: Any) -> None:
    for cp, d in (("cp1", "D1"), ("cp2", "D2"), ("cp3", "D3")):
        ready.charging(cp, d)
    ready.add_driver("D4")
    result = ready.signed("D4", "request_charge", at="cp2")
    assert result["error"] == "no_free_charge_point" and result["why"] == "busy"


def test_a_new_request_replaces_the_drivers_waiting_one(ready: Any) -> None:
    ready.signed("D1", "request_charge", at="cp1")
    ready.signed("D1", "request_charge", at="cp3")
    assert list(ready.m.state.authorizations) == ["cp3"]


def test_a_driver_with_a_reservation_asking_anywhere_gets_the_reserved_point(ready: Any) -> None:
    ready.signed("D1", "reserve", at="cp3")
    assert ready.signed("D1", "request_charge")["cp"] == "cp3"


def test_reserve_answers_point_and_length(ready: Any) -> None:
    assert ready.signed("D1", "reserve", at="cp2", duration_s=600) == {"ok": True, "cp": "cp2",
                                                                       "expires_in_ms": 600_000}
    assert ready.cp_view("cp2")["status"] == "RESERVED"
    assert ready.signed("D2", "reserve", at="cp3")["expires_in_ms"] == 900_000  # the default


def test_a_reservation_longer_than_allowed_is_refused(ready: Any) -> None:
    result = ready.signed("D1", "reserve", at="cp2", duration_s=7200)
    assert result["error"] == "bad_field" and result["field"] == "duration_s"


def test_a_reservation_of_an_occupied_point_is_refused(ready: Any) -> None:
    ready.member("cp2", "report", cp="cp2", plugged=True, drawn_a=0)
    assert ready.signed("D1", "reserve", at="cp2")["error"] == "cp_busy"
    ready.signed("op1", "stop_cp", cp="cp3")
    result = ready.signed("D1", "reserve", at="cp3")
    assert result["error"] == "cp_unavailable" and result["why"] == "out_of_order"


def test_cancel_answers_the_point(ready: Any) -> None:
    ready.signed("D1", "reserve", at="cp2")
    assert ready.signed("D1", "cancel_reservation") == {"ok": True, "cp": "cp2"}
    assert ready.cp_view("cp2")["status"] == "AVAILABLE"


def test_stop_charge_withdraws_a_waiting_request(ready: Any) -> None:
    ready.signed("D1", "request_charge", at="cp1")
    assert ready.signed("D1", "stop_charge") == {"ok": True, "withdrawn": "cp1"}
    assert not ready.m.state.authorizations


def test_expired_requests_and_reservations_stop_counting_and_expire_drops_them(ready: Any) -> None:
    ready.signed("D1", "reserve", at="cp1", duration_s=60)
    ready.signed("D2", "request_charge", at="cp2")
    ready.tick(60_000)
    ready.renew_all()  # time moves only through commands
    assert ready.cp_view("cp1")["status"] == "AVAILABLE"
    assert ready.signed("D3", "reserve", at="cp1")["ok"]  # D1's reservation is over
    ready.tick(60_000)
    ready.renew_all()
    result = ready.member("cp1", "expire")
    assert result == {"ok": True, "reservations": [], "authorizations": ["cp2"]}
    ready.tick(900_000)
    assert ready.member("cp1", "expire") == {"ok": True, "reservations": ["cp1"], "authorizations": []}
    assert not ready.m.state.reservations and not ready.m.state.authorizations
