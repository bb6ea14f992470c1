"""Replicas agree: the same commands give the same results and snapshots; snapshots restore; versions are checked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from firmware.site import SiteMachine, SnapshotVersionError


def _scenario(s: Any) -> None:
    s.online("cp1", "cp2", "cp3")
    a = s.charging("cp1", "D1", meter_wh=100, ev_max_a=16)
    s.charging("cp2", "D2")
    s.tick(3000)
    s.member("cp1", "ack_grant", cp="cp1", seq=s.seq("cp1"))
    s.add_driver("D3")
    s.signed("D3", "reserve", at="cp3")
    s.signed("op1", "set_limit", limit_a=40)
    s.new_leader("cp3", clock=77)
    s.renew_all()
    s.member("cp1", "stop_session", cp="cp1", session=a, meter_wh=5000, reason="ev")
    s.raw(b"not json", client="cp1", member=True)
    s.signed("op1", "stop_cp", cp="cp2")


def test_two_replicas_fed_the_same_commands_agree(make_site: Any) -> None:
    one = make_site({"cp1": 0, "cp2": 0, "cp3": 6})
    _scenario(one)
    two = SiteMachine(one.setup)
    replayed = []
    for command, ctx in one.log:
        replayed.append(json.loads(two.apply(command, ctx)))
    assert replayed == one.results
    assert two.snapshot() == one.m.snapshot()
    assert two.summary() == one.m.summary()


def test_a_restored_snapshot_is_the_same_state_and_goes_on_the_same(make_site: Any) -> None:
    s = make_site({"cp1": 0, "cp2": 0, "cp3": 6})
    _scenario(s)
    copy = SiteMachine(s.setup)
    copy.restore(s.m.snapshot())
    assert copy.snapshot() == s.m.snapshot()
    ctx = s.ctx("cp2", True)
    command = b'{"op":"report","args":{"cp":"cp2","plugged":false,"drawn_a":0}}'
    assert copy.apply(command, ctx) == s.m.apply(command, ctx)
    assert copy.snapshot() == s.m.snapshot()


def test_an_unknown_snapshot_version_is_refused_clearly(make_site: Any) -> None:
    s = make_site({"cp1": 0})
    blob = json.loads(s.m.snapshot())
    blob["v"] = 99
    with pytest.raises(SnapshotVersionError, match="format 99 is not known to this build, which reads formats 1, 2"):
        s.m.restore(json.dumps(blob).encode())
    with pytest.raises(SnapshotVersionError):
        s.m.restore(b"[]")


def test_an_empty_snapshot_is_the_genesis(make_site: Any) -> None:
    s = make_site({"cp1": 0, "cp2": 0})
    genesis = s.m.snapshot()
    s.online("cp1")
    s.m.restore(b"")
    assert s.m.snapshot() == genesis
