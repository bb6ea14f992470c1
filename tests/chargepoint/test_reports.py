"""Reports tell the site what it splits the fuse by: plug, draw (with a dead band), the EV's own maximum, faults;
on change, never per meter reading. A fault the site keeps is cleared once the engine's has cleared."""

from __future__ import annotations

import json

import pytest

from firmware.chargepoint.reports import fault_code
from firmware.engine.core import EvMaxChanged
from hal.meter.reading import MeterReading


def reports(r) -> list[dict]:
    return r.proposed("report")


def test_a_steady_charge_point_reports_once_and_then_only_what_changes(rig) -> None:
    r = rig(auto_draw=False)
    r.running()
    assert [x["plugged"] for x in reports(r)] == [False]
    r.advance(120.0)  # 120 meter readings, nothing changed
    assert len(reports(r)) == 1
    r.plug_in()
    assert reports(r)[-1]["plugged"] is True and len(reports(r)) == 2


def report_times(r) -> list[tuple[float, float]]:
    """(when, drawn_a) of every report proposed."""
    return [(t, json.loads(p.command)["args"]["drawn_a"]) for t, p in r.sent if p.tag.op == "report"]


def test_the_draw_is_reported_past_its_dead_band_at_once_and_small_moves_every_ten_seconds(rig) -> None:
    r = rig(auto_draw=False)
    r.running()
    r.add_driver("D1")
    r.plug_in()
    r.ask_for_energy()
    r.signed("D1", "request_charge", at="cp1")
    r.draw_a = 16.0
    r.advance(3.0)
    (at16, drawn), = report_times(r)[-1:]
    assert drawn == 16.0
    r.draw_a = 16.4  # within the 1 A band: it waits for the ten seconds
    r.advance(15.0)
    at164, drawn = report_times(r)[-1]
    assert drawn == 16.4 and 10.0 <= at164 - at16 < 11.0
    r.draw_a = 20.0  # past the band: at the next reading
    moved = r.now
    r.advance(2.0)
    at20, drawn = report_times(r)[-1]
    assert drawn == 20.0 and at20 - moved <= 1.0
    r.advance(60.0)
    assert report_times(r)[-1][0] == at20  # a steady draw: nothing more
    assert r.site.state.cps["cp1"].drawn_da == 200


def test_reports_are_at_most_one_a_second(rig) -> None:
    r = rig(auto_draw=False)
    r.running()
    r.plug_in()
    start = len(report_times(r))
    for amps in (10.0, 20.0, 5.0, 30.0, 0.0, 12.0):  # readings in a burst (the meter's own current)
        r.do(r.bridge.meter(MeterReading((230.0,) * 3, (amps,) * 3, 0.0, r.kwh, 0.0), r.now))
    r.advance(0.5)
    assert [d for _, d in report_times(r)[start:]] == [10.0]
    r.advance(1.0)
    (first, _), (second, drawn) = report_times(r)[start:]
    assert second - first >= 1.0 and drawn == 0.0  # a second later, what the meter says then


def test_the_evs_own_maximum_is_reported(rig) -> None:
    r = rig()
    r.running()
    r.do(r.bridge.engine_action(EvMaxChanged(20.0), r.now))
    assert reports(r)[-1]["ev_max_a"] == 20.0
    r.advance(0.1)
    assert r.site.state.cps["cp1"].ev_max_da == 200
    r.do(r.bridge.engine_action(EvMaxChanged(None), r.now))
    assert reports(r)[-1]["ev_max_a"] is None


def test_a_fault_is_reported_and_cleared_at_the_site_once_the_engine_has_cleared_it(rig) -> None:
    r = rig()
    r.running()
    r.engine_do(r.engine.fault("relay_welded", r.now))
    r.advance(0.5)
    assert reports(r)[-1]["fault"] == "relay_welded" and r.site.view("cp1").fault == "relay_welded"
    assert r.proposed("clear_fault") == []
    r.engine_do(r.engine.clear_fault("relay_welded", r.now))
    r.advance(0.5)
    assert r.proposed("clear_fault") == [{"cp": "cp1"}] and r.site.view("cp1").fault is None
    r.advance(30.0)
    assert len(r.proposed("clear_fault")) == 1


@pytest.mark.parametrize("engine, site", [(None, None), ("meter", "meter"),
                                          ("over_current,pilot_short", "over_current"), ("Weird Code!", "weird_code"),
                                          ("???", "fault"), ("x" * 50, "x" * 32)])
def test_an_engine_fault_becomes_one_code_the_site_takes(engine, site) -> None:
    assert fault_code(engine) == site
