"""`set_cp_max`: an operator's cap on one charge point, kept apart from what it registered. The split honours
the lower of the two; a wrong role, range or charge point is refused and changes nothing; a new `register`
keeps the cap; `null` clears it; the state shows it; a snapshot carries it, and one of before it restores."""

from __future__ import annotations

import json
from typing import Any

import pytest

from firmware.site import SnapshotVersionError


def test_the_split_honours_the_cap_and_says_why(site: Any) -> None:
    site.online("cp1", "cp2")
    site.add_operator()
    site.charging("cp1", "D1")
    site.charging("cp2", "D2")
    site.renew_all()
    assert site.cp_view("cp1")["target_a"] == site.cp_view("cp2")["target_a"] == 31.5  # 63 A shared
    got = site.signed("op1", "set_cp_max", cp="cp1", max_current_a=10)
    assert got == {"ok": True, "cp": "cp1", "max_current_a": 10.0, "registered_max_a": 32.0}
    site.renew_all()
    assert (site.grant("cp1"), site.reason("cp1")) == (10.0, "operator_cap")
    assert site.cp_view("cp2")["target_a"] == 32.0  # the rest goes to cp2, up to its max (once cp1 followed)
    assert site.cp_view("cp1")["cap_a"] == 10.0 and site.cp_view("cp1")["max_current_a"] == 32.0


def test_a_new_register_keeps_the_cap_and_the_lower_of_the_two_counts(site: Any) -> None:
    site.online("cp1")
    site.add_operator()
    site.charging("cp1", "D1")
    assert site.signed("op1", "set_cp_max", cp="cp1", max_current_a=20)["ok"]
    site.register("cp1", max_a=32)  # the charge point restarts: it registers again with its configuration
    site.renew_all()
    assert (site.grant("cp1"), site.reason("cp1")) == (20.0, "operator_cap")
    site.register("cp1", max_a=16)  # reconfigured below the cap: its own maximum is the lower
    site.renew_all()
    assert (site.grant("cp1"), site.reason("cp1")) == (16.0, "cp_max")
    assert site.signed("op1", "set_cp_max", cp="cp1", max_current_a=None)["max_current_a"] is None
    site.register("cp1", max_a=32)
    site.renew_all()
    assert site.grant("cp1") == 32.0 and site.cp_view("cp1")["cap_a"] is None


@pytest.mark.parametrize(("by", "args", "error"), [
    ("op1", {"cp": "cp1", "max_current_a": 33}, "bad_field"),        # above its registered 32 A
    ("op1", {"cp": "cp1", "max_current_a": 5.9}, "bad_field"),       # below 6 A
    ("op1", {"cp": "cp1", "max_current_a": 81}, "bad_field"),
    ("op1", {"cp": "cp1", "max_current_a": "10"}, "bad_field"),
    ("op1", {"cp": "cp1"}, "bad_field"),                             # null clears; absent is a mistake
    ("op1", {"cp": "cp9", "max_current_a": 10}, "unknown_charge_point"),
    ("op1", {"cp": "cp2", "max_current_a": 10}, "not_registered"),
    ("D1", {"cp": "cp1", "max_current_a": 10}, "wrong_role"),
])
def test_a_wrong_role_range_or_charge_point_is_refused_and_changes_nothing(site: Any, by: str, args: dict,
                                                                           error: str) -> None:
    site.online("cp1")
    site.add_driver("D1")
    before = site.m.snapshot()
    assert site.signed(by, "set_cp_max", **args)["error"] == error
    assert site.m.snapshot() == before


def test_a_cap_below_the_fallback_is_refused(make_site: Any) -> None:
    s = make_site({"cp1": 10, "cp2": 0})
    s.online("cp1")
    s.add_operator()
    got = s.signed("op1", "set_cp_max", cp="cp1", max_current_a=8)
    assert got["error"] == "bad_field" and "fallback" in got["reason"]


def test_a_member_may_not_cap(site: Any) -> None:
    site.online("cp1")
    assert site.member("cp1", "set_cp_max", cp="cp1", max_current_a=10)["error"] == "wrong_role"


def test_the_cap_travels_in_snapshots_and_a_snapshot_of_before_it_restores(make_site: Any) -> None:
    s = make_site({"cp1": 0})
    s.online("cp1")
    s.add_operator()
    assert s.signed("op1", "set_cp_max", cp="cp1", max_current_a=12)["ok"]
    copy = make_site({"cp1": 0})
    copy.m.restore(s.m.snapshot())
    assert copy.m.state.cps["cp1"].cap_da == 120 and copy.m.snapshot() == s.m.snapshot()
    old = json.loads(s.m.snapshot())  # format 1, as a build before the cap wrote it: no cap_da, "v": 1
    old["v"] = 1
    for rec in old["cps"].values():
        del rec["cap_da"]
    copy.m.restore(json.dumps(old).encode())
    assert copy.m.state.cps["cp1"].cap_da is None and copy.m.state.cps["cp1"].max_da == 320
    old["v"] = 4
    with pytest.raises(SnapshotVersionError, match="format 4 is not known to this build, which reads formats 1, 2, 3"):
        copy.m.restore(json.dumps(old).encode())
