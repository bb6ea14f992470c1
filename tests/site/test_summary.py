"""The retained `evnet/{site}/state`: statuses, grants and why, reservations, sessions; no secrets."""

from __future__ import annotations

import json
from typing import Any


def test_the_summary_shows_the_site_and_holds_no_keys(site: Any) -> None:
    site.online("cp1", "cp2", "cp3")
    session = site.charging("cp1", "D1", meter_wh=1000)
    site.member("cp1", "checkpoint", cp="cp1", session=session, meter_wh=3500)
    site.add_driver("D2")
    site.signed("D2", "reserve", at="cp2")
    site.signed("op1", "stop_cp", cp="cp3")
    summary = site.m.summary()
    statuses = {cp: v["status"] for cp, v in summary["charge_points"].items()}
    assert statuses == {"cp1": "CHARGING", "cp2": "RESERVED", "cp3": "OUT_OF_ORDER"}
    cp1 = summary["charge_points"]["cp1"]
    assert (cp1["grant_a"], cp1["limit_reason"], cp1["driver"], cp1["session"]) == (32.0, "cp_max", "D1", session)
    assert cp1["may_draw_a"] == 32.0 and cp1["until_ms"] > summary["now_ms"]
    assert summary["sessions"] == [{"session": session, "cp": "cp1", "driver": "D1", "start_ms": summary["now_ms"],
                                    "energy_wh": 2500, "stop_requested": None}]
    assert summary["reservations"][0]["driver"] == "D2"
    assert summary["principals"] == {"drivers": 2, "operators": 1}
    assert (summary["limit_a"], summary["in_force_a"], summary["drawing_a"]) == (63.0, 63.0, 32.0)
    text = json.dumps(summary)
    for p in site.m.state.principals.values():
        assert p.key not in text
    assert '"seq"' not in text


def test_a_report_answers_the_grant_view(site: Any) -> None:
    site.online("cp1")
    site.charging("cp1", "D1")
    result = site.member("cp1", "report", cp="cp1", plugged=True, drawn_a=31.5)
    assert result == {"ok": True, "grant_a": 32.0, "grant_seq": site.seq("cp1"), "lease_ms": 10_000,
                      "fallback_a": 0.0, "limit_reason": "cp_max", "target_a": 32.0}


def test_the_summary_carries_the_oldest_waiting_tickets_for_central_to_copy(site: Any) -> None:
    site.online("cp1")
    session = site.charging("cp1", "D1", meter_wh=1000)
    site.member("cp1", "stop_session", cp="cp1", session=session, meter_wh=3500, reason="unplugged")
    tickets = site.m.summary()["tickets"]
    assert [(t["session"], t["cp"], t["driver"], t["energy_wh"]) for t in tickets] == [(session, "cp1", "D1", 2500)]
    site.signed("op1", "ack_tickets", sessions=[session])
    assert site.m.summary()["tickets"] == [] and site.m.summary()["totals"]["tickets"] == 1
