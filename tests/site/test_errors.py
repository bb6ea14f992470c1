"""Every documented error, each reached by a real command: the result names it and the state is unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from firmware.site import ERRORS, member_command
from firmware.site import chargepoints as chargepoints_module
from firmware.site import principals as principals_module

Scenario = tuple[Callable[[Any], None], Callable[[Any, pytest.MonkeyPatch], dict[str, Any]]]


def _online(s: Any) -> None:
    s.online("cp1", "cp2", "cp3")
    s.add_driver("D1")
    s.add_driver("D2")


def _d1_at_cp1(s: Any) -> None:
    _online(s)
    s.charging("cp1", "D1", session="S1", meter_wh=100)


def _stopped(s: Any) -> None:
    _d1_at_cp1(s)
    assert s.member("cp1", "stop_session", cp="cp1", session="S1", meter_wh=110, reason="ev")["ok"]


def _checkpointed(s: Any) -> None:
    _d1_at_cp1(s)
    assert s.member("cp1", "checkpoint", cp="cp1", session="S1", meter_wh=500)["ok"]


def _all_busy(s: Any) -> None:
    _online(s)
    for n, cp in enumerate(("cp1", "cp2", "cp3")):
        s.charging(cp, f"E{n}")


def _reserved_by_d2(s: Any) -> None:
    _online(s)
    assert s.signed("D2", "reserve", at="cp1")["ok"]


def _out_of_order(s: Any) -> None:
    _online(s)
    assert s.signed("op1", "stop_cp", cp="cp1")["ok"]


def _used_seq_7(s: Any) -> None:
    _online(s)
    assert s.signed("D1", "whoami", seq=7)["ok"]


def _no_room_for_clients(s: Any, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    mp.setattr(principals_module, "MAX_CLIENTS", len(s.m.state.clients))
    return s.signed("D1", "whoami", client="a-new-client")


def _renew_with_a_bug(s: Any, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    def bug(*args: Any) -> dict[str, Any]:
        raise ZeroDivisionError("a bug")
    mp.setattr(chargepoints_module, "renew", bug)
    return s.member("cp1", "renew", cp="cp1")


def _start(driver: str | None = None, session: str = "S") -> Callable[[Any, pytest.MonkeyPatch], dict[str, Any]]:
    return lambda s, mp: s.member("cp1", "start_session", cp="cp1", session=session, meter_wh=0, driver=driver)


SCENARIOS: dict[str, Scenario] = {
    "too_large": (_online, lambda s, mp: s.raw(b'{"op": "renew"' + b" " * 5000 + b"}", client="cp1", member=True)),
    "malformed": (_online, lambda s, mp: s.raw(b'["renew"]', client="cp1", member=True)),
    "unknown_op": (_online, lambda s, mp: s.member("cp1", "fly", cp="cp1")),
    "bad_field": (_online, lambda s, mp: s.member("cp1", "register", cp="cp1", price_eur_kwh=-1, max_current_a=32)),
    "unauthenticated": (_online, lambda s, mp: s.raw(member_command("renew", {"cp": "cp1"}), client="cp1")),
    "unknown_principal": (_online, lambda s, mp: s.signed("ghost", "whoami")),
    "bad_signature": (_online, lambda s, mp: s.signed("D1", "whoami", signer="D2")),
    "wrong_site": (_online, lambda s, mp: s.signed("D1", "whoami", site="s2")),
    "replayed": (_used_seq_7, lambda s, mp: s.signed("D1", "whoami", seq=7)),
    "wrong_role": (_online, lambda s, mp: s.signed("D1", "set_limit", limit_a=40)),
    "not_your_charge_point": (_online, lambda s, mp: s.raw(member_command("renew", {"cp": "cp2"}), "cp1", True)),
    "unknown_charge_point": (_online, lambda s, mp: s.signed("D1", "request_charge", at="cp9")),
    "not_registered": (lambda s: None, lambda s, mp: s.member("cp2", "renew", cp="cp2")),
    "cp_unavailable": (_out_of_order, _start("D1")),
    "cp_busy": (_d1_at_cp1, lambda s, mp: s.signed("D2", "reserve", at="cp1")),
    "cp_reserved": (_reserved_by_d2, _start("D1")),
    "no_free_charge_point": (_all_busy, lambda s, mp: s.signed("D1", "request_charge")),
    "no_fault": (_online, lambda s, mp: s.member("cp1", "clear_fault", cp="cp1")),
    "stale_grant": (_online, lambda s, mp: s.member("cp1", "ack_grant", cp="cp1", seq=99)),
    "not_silent": (_d1_at_cp1, lambda s, mp: s.member("cp2", "close_lost", cp="cp1")),
    "already_charging": (_d1_at_cp1, lambda s, mp: s.signed("D1", "request_charge", at="cp2")),
    "already_reserved": (_reserved_by_d2, lambda s, mp: s.signed("D2", "reserve", at="cp2")),
    "no_reservation": (_online, lambda s, mp: s.signed("D1", "cancel_reservation")),
    "no_session": (_online, lambda s, mp: s.signed("D1", "stop_charge")),
    "not_authorized": (_online, _start(None)),
    "unknown_session": (_online, lambda s, mp: s.member("cp1", "checkpoint", cp="cp1", session="nope", meter_wh=5)),
    "session_exists": (_stopped, _start("D1", session="S1")),
    "ticket_exists": (_stopped, lambda s, mp: s.member("cp1", "stop_session", cp="cp1", session="S1", meter_wh=120,
                                                       reason="ev")),
    "meter_backwards": (_checkpointed, lambda s, mp: s.member("cp1", "checkpoint", cp="cp1", session="S1",
                                                              meter_wh=499)),
    "unknown_ticket": (_online, lambda s, mp: s.signed("op1", "ack_tickets", sessions=["nope"])),
    "principal_exists": (_online, lambda s, mp: s.signed("op1", "add_principal", id="D1", role="driver",
                                                         key=s.m.state.principals["D1"].key)),
    "bad_key": (_online, lambda s, mp: s.signed("op1", "add_principal", id="D7", role="driver", key="AAAA")),
    "below_fallbacks": (_online, lambda s, mp: s.signed("op1", "set_limit", limit_a=17)),
    "full": (_online, _no_room_for_clients),
    "internal": (_online, _renew_with_a_bug),
}


def test_every_documented_error_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(ERRORS)


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_the_error_is_given_and_nothing_changes(code: str, make_site: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_site({"cp1": 6, "cp2": 6, "cp3": 6})  # fallbacks 18 A: a limit of 17 A is below them
    setup, bad = SCENARIOS[code]
    setup(s)
    s.tick(1000)
    before = s.m.snapshot()
    result = bad(s, monkeypatch)
    assert result["error"] == code, result
    assert isinstance(result["reason"], str) and result["reason"] and "\n" not in result["reason"]
    assert s.m.snapshot() == before


def test_malformed_covers_what_json_allows_but_a_command_may_not_be(make_site: Any) -> None:
    s = make_site({"cp1": 0})
    for command in (b'{"op": "renew", "op": "renew", "args": {"cp": "cp1"}}', b'{"op": "report", "args": NaN}',
                    "{\"op\": \"renew\"}".encode("utf-16"), b"[" * 2000 + b"]" * 2000, b"\xff{}"):
        assert s.raw(command, client="cp1", member=True)["error"] == "malformed", command[:20]
    signed_without_sig = b'{"op": "whoami", "by": "D1", "seq": 1, "site": "s1"}'
    result = s.raw(signed_without_sig)
    assert result["error"] == "bad_field" and result["field"] == "sig"
