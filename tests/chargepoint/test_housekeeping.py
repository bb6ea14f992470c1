"""The leader's housekeeping: what it proposes so that the site's state stays true and small."""

from __future__ import annotations

import json

from firmware.chargepoint.housekeeping import QUIET_MS, Housekeeping


def proposed(h: Housekeeping, rig, leader: bool = True) -> list[dict]:
    return [json.loads(cmd) for cmd in h.due(rig.site.state, leader, rig.now)]


def test_only_the_leader_proposes_and_not_more_often_than_its_pace(rig) -> None:
    r = rig(members=("cp1", "cp2", "cp3"))
    r.other_online("cp2")
    session = r.other_charging("cp2", "D01")
    r.advance(1.0)
    h = Housekeeping(every_s=5.0)
    assert proposed(h, r, leader=False) == []
    assert proposed(h, r) == []  # nothing to do yet: and the pace starts
    r.advance(r.site.state.params.cp_lost_ms / 1000 + 1)  # cp2 silent since its last report
    assert proposed(h, r, leader=False) == []
    (close,) = proposed(h, r)
    assert close == {"op": "close_lost", "args": {"cp": "cp2"}}
    assert proposed(h, r) == []  # paced: the same again only after every_s
    result = r.member("cp1", "close_lost", cp="cp2")
    assert result["ticket"]["session"] == session and result["ticket"]["reason"] == "cp_lost"


def test_expired_requests_and_quiet_clients_are_proposed_away(rig) -> None:
    r = rig(members=("cp1", "cp2"))
    r.other_online("cp2")
    r.add_driver("D01")
    assert r.signed("D01", "request_charge", at="cp2")["ok"]
    h = Housekeeping(every_s=0.001)
    assert proposed(h, r) == []
    r.advance(r.site.state.params.authorization_ms / 1000 + 1)
    assert {"op": "expire", "args": {}} in proposed(h, r)
    r.advance(QUIET_MS / 1000)
    ops = proposed(h, r)
    assert {"op": "forget_quiet", "args": {"quiet_ms": QUIET_MS}} in ops
    assert r.member("cp1", "forget_quiet", quiet_ms=QUIET_MS)["clients"]  # someone was forgotten
