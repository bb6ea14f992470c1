"""Credentials: Ed25519 requests checked against the state's keys, roles, replays; drivers and operators managed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from firmware.site import credentials, member_command, public_key_b64, signed_request


@pytest.fixture
def ready(site: Any) -> Any:
    site.online("cp1", "cp2")
    site.add_driver("D1")
    return site


def _refused_and_unchanged(site: Any, send: Any, code: str) -> dict[str, Any]:
    before = site.m.snapshot()
    result = send()
    assert result["error"] == code, result
    assert site.m.snapshot() == before
    return result


def test_a_signed_request_works_and_uses_its_seq(ready: Any) -> None:
    assert ready.signed("D1", "whoami", seq=1000) == {"ok": True, "id": "D1", "role": "driver", "seq": 1000}
    result = _refused_and_unchanged(ready, lambda: ready.signed("D1", "whoami", seq=999), "replayed")
    assert result["highest"] == 1000


def test_the_same_request_twice_is_a_replay(ready: Any) -> None:
    command = signed_request(ready.key("D1"), site="s1", by="D1", seq=5, op="request_charge", args={"at": "cp1"})
    assert ready.raw(command)["ok"]
    _refused_and_unchanged(ready, lambda: ready.raw(command), "replayed")


def test_a_tampered_request_has_a_bad_signature(ready: Any) -> None:
    body = json.loads(signed_request(ready.key("D1"), site="s1", by="D1", seq=5, op="request_charge",
                                     args={"at": "cp1"}))
    body["args"]["at"] = "cp2"
    _refused_and_unchanged(ready, lambda: ready.raw(json.dumps(body).encode()), "bad_signature")


def test_a_request_signed_with_another_key_is_refused(ready: Any) -> None:
    _refused_and_unchanged(ready, lambda: ready.signed("D1", "request_charge", signer="intruder"), "bad_signature")


def test_a_driver_may_not_do_an_operators_work(ready: Any) -> None:
    for op, args in (("stop_cp", {"cp": "all"}), ("set_limit", {"limit_a": 10}), ("set_priority", {"cp": "cp1",
                     "priority": 9}), ("add_principal", {"id": "D2", "role": "operator", "key": public_key_b64(
                         ready.key("D2"))}), ("ack_tickets", {"sessions": ["x"]}), ("remove_principal", {"id": "op1"})):
        result = _refused_and_unchanged(ready, lambda op=op, args=args: ready.signed("D1", op, **args), "wrong_role")
        assert result["role"] == "driver"


def test_an_operator_may_not_make_a_drivers_request(ready: Any) -> None:
    _refused_and_unchanged(ready, lambda: ready.signed("op1", "request_charge", at="cp1"), "wrong_role")


def test_a_principal_may_not_send_a_charge_points_command(ready: Any) -> None:
    _refused_and_unchanged(ready, lambda: ready.signed("op1", "renew", cp="cp1"), "wrong_role")


def test_unsigned_commands_come_from_members_only(ready: Any) -> None:
    _refused_and_unchanged(ready, lambda: ready.raw(member_command("expire"), client="D1"), "unauthenticated")


def test_a_removed_principal_is_refused_and_its_waits_go(ready: Any) -> None:
    ready.signed("D1", "reserve", at="cp2")
    assert ready.signed("op1", "remove_principal", id="D1") == {"ok": True, "id": "D1", "role": "driver"}
    assert not ready.m.state.reservations
    _refused_and_unchanged(ready, lambda: ready.signed("D1", "request_charge"), "unknown_principal")


def test_a_principal_added_again_cannot_replay_its_old_requests(ready: Any) -> None:
    old = signed_request(ready.key("D1"), site="s1", by="D1", seq=7, op="request_charge", args={"at": "cp1"})
    assert ready.raw(old)["ok"]
    ready.signed("op1", "remove_principal", id="D1")
    result = ready.signed("op1", "add_principal", id="D1", role="driver", key=public_key_b64(ready.key("D1")))
    assert result == {"ok": True, "id": "D1", "role": "driver", "seq_floor": 7}
    _refused_and_unchanged(ready, lambda: ready.raw(old), "replayed")
    assert ready.signed("D1", "whoami", seq=8)["ok"]


def test_a_session_goes_on_after_its_driver_is_removed(ready: Any) -> None:
    session = ready.charging("cp1", "D1")
    ready.signed("op1", "remove_principal", id="D1")
    ticket = ready.member("cp1", "stop_session", cp="cp1", session=session, meter_wh=100, reason="ev")["ticket"]
    assert ticket["driver"] == "D1"


def test_a_member_adds_and_removes_operators_only(ready: Any) -> None:
    add = member_command("add_principal", {"id": "op2", "role": "operator", "key": public_key_b64(ready.key("op2"))})
    assert ready.raw(add, client="cli", member=True) == {"ok": True, "id": "op2", "role": "operator", "seq_floor": 0}
    driver = member_command("add_principal", {"id": "D9", "role": "driver", "key": public_key_b64(ready.key("D9"))})
    _refused_and_unchanged(ready, lambda: ready.raw(driver, client="cli", member=True), "wrong_role")
    remove_driver = member_command("remove_principal", {"id": "D1"})
    _refused_and_unchanged(ready, lambda: ready.raw(remove_driver, client="cli", member=True), "wrong_role")
    remove = member_command("remove_principal", {"id": "op2"})
    assert ready.raw(remove, client="cli", member=True)["ok"]


def test_forget_quiet_drops_clients_not_heard_for_that_long(ready: Any) -> None:
    ready.signed("D1", "whoami", client="phone-1")
    ready.tick(3_600_000)
    ready.renew_all()
    result = ready.member("cp1", "forget_quiet", quiet_ms=3_600_000)
    assert "phone-1" in result["clients"] and "cp1" not in result["clients"]
    assert "phone-1" not in ready.m.state.clients


def test_the_envelope_round_trips_through_the_credentials_module() -> None:
    key = credentials.new_private_key()
    pem = credentials.private_key_pem(key)
    again = credentials.load_private_key(pem)
    assert credentials.public_key_b64(again) == credentials.public_key_b64(key)
    assert credentials.read_public_key(pem) == credentials.public_key_b64(key)
    assert credentials.read_public_key(credentials.public_key_b64(key).encode() + b"\n") == \
        credentials.public_key_b64(key)
    body = json.loads(credentials.signed_request(key, site="s1", by="D1", seq=3, op="whoami"))
    sig = body.pop("sig")
    assert credentials.signature_valid(credentials.public_key_b64(key), body, sig)
    assert not credentials.signature_valid(credentials.public_key_b64(key), {**body, "seq": 4}, sig)
    assert not credentials.signature_valid("not a key", body, sig)
    assert credentials.next_seq(10**15) == 10**15 + 1
