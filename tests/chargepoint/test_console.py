"""The manual-start button on `evnet cp`'s console ('s' + Enter), a pipe standing in for the terminal: the start
goes through the site when it answers, and the local list decides when it cannot be reached."""

from __future__ import annotations

import os
from pathlib import Path

from firmware.chargepoint.console import Press, parse
from hal.pilot import EvLoad

from ..engine.conftest import wait_for
from ..sites import add_people, start_site, stop_site


def test_console_lines_mean_a_press_or_nothing() -> None:
    assert parse("s\n") == Press(None) and parse("  s D01 ") == Press("D01")
    for line in ("", "x", "s two words", "s bad/id", "s " + "d" * 65, "start"):
        assert not isinstance(parse(line), Press), line


def _console(root: Path, url: str, members: list[str], local: str):
    r, w = os.pipe()
    cps = start_site(root, url, members, cp_extra=f"local_drivers = [{local}]\n",
                     console={"cp1": os.fdopen(r, "r")})
    return cps, os.fdopen(w, "w")


def _plug(cp) -> None:
    ev = cp.evse.cable.ev
    ev.set_load(EvLoad.B)
    ev.set_load(EvLoad.C)
    ev.set_current(6.0)


def test_s_on_the_console_starts_a_session_the_site_authorizes_for_the_named_driver(tmp_path, mosquitto) -> None:
    cps, console = _console(tmp_path, mosquitto.url, ["cp1", "cp2", "cp3"], '"owner"')
    try:
        wait_for(lambda: all(c.machine.state.cps[c.cp].registered for c in cps.values()), timeout=20,
                 what="every charge point registered")
        add_people(cps["cp1"], ["D1"])
        _plug(cps["cp1"])
        console.write("hello\ns D1\n")  # a line that means nothing, then the button for D1 (a card reader's)
        console.flush()
        wait_for(lambda: any(s.cp == "cp1" and s.driver == "D1" for s in cps["cp2"].machine.state.sessions.values()),
                 timeout=20,
                 what="the site started D1's session at cp1")
        wait_for(lambda: cps["cp1"].evse.contactor_closed, timeout=20, what="cp1's contactor closed")
        assert cps["cp1"].bridge.site_reachable  # D1 is not on the local list ("owner"): only the site let it start
    finally:
        console.close()
        stop_site(cps)


def test_s_with_the_site_unreachable_lets_the_local_list_decide(tmp_path, mosquitto) -> None:
    cps, console = _console(tmp_path, mosquitto.url, ["cp1"], '"owner"')  # alone: no quorum, no site
    try:
        cp1 = cps["cp1"]
        _plug(cp1)
        console.write("s stranger\n")  # not on the local list: the site is silent, so no start
        console.flush()
        wait_for(lambda: not cp1.bridge.site_reachable, timeout=20, what="the bridge sees the site silent")
        assert not cp1.evse.contactor_closed and cp1.evse.core.status != "CHARGING"
        console.write("s\n")  # the first local driver, "owner"
        console.flush()
        wait_for(lambda: cp1.evse.contactor_closed, timeout=20, what="the local list's start closed the contactor")
        assert cp1.evse.core.telemetry()["driver"] == "owner"
        assert not cp1.machine.state.sessions  # the site never heard of it (it is reported once it answers)
    finally:
        console.close()
        stop_site(cps)
