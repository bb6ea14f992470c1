"""The admission check of open requests: the machine's own checks over the committed state, changing nothing."""

from __future__ import annotations

import json

from firmware.site import member_command, signed_request

from .conftest import key_of


def refusal(site, command: bytes) -> str | None:
    before = site.m.snapshot()
    answer = site.m.admit("app", command)
    assert site.m.snapshot() == before  # a check, never a change
    return None if answer is None else json.loads(answer)["error"]


def test_admission_refuses_what_the_machine_would_refuse_for_who_sent_it(site):
    site.add_driver("D01")
    seq = site.seqs["op1"]
    good = signed_request(key_of("D01"), site="s1", by="D01", seq=10, op="whoami")
    assert refusal(site, good) is None
    assert refusal(site, signed_request(key_of("D02"), site="s1", by="D02", seq=10, op="whoami")) == \
        "unknown_principal"
    assert refusal(site, signed_request(key_of("x"), site="s1", by="D01", seq=10, op="whoami")) == "bad_signature"
    assert refusal(site, signed_request(key_of("D01"), site="s2", by="D01", seq=10, op="whoami")) == "wrong_site"
    assert refusal(site, signed_request(key_of("op1"), site="s1", by="op1", seq=seq, op="whoami")) == "replayed"
    assert refusal(site, signed_request(key_of("D01"), site="s1", by="D01", seq=10, op="set_limit",
                                        args={"limit_a": 40})) == "wrong_role"
    assert refusal(site, member_command("expire")) == "unauthenticated"  # a member's command, open: no
    assert refusal(site, b'{"op": "whoami"') == "malformed"
    assert refusal(site, signed_request(key_of("D01"), site="s1", by="D01", seq=10, op="reserve",
                                        args={"at": "cp1", "duration_s": 1})) == "bad_field"


def test_what_admission_let_in_the_machine_still_checks_when_it_applies(site):
    site.add_driver("D01")
    command = signed_request(key_of("D01"), site="s1", by="D01", seq=10, op="whoami")
    assert refusal(site, command) is None
    assert site.raw(command, client="app")["ok"]
    assert refusal(site, command) == "replayed" and site.raw(command, client="app")["error"] == "replayed"
