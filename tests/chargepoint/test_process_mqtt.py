"""`evnet cp` in one process per charge point over a real Mosquitto: three charge points share 32 A.

Each `ChargePoint` runs its engine on the mock HAL (in-process cable, simulated Modbus meter), its
replica of the site and its bridge. A driver is added by an operator (signed requests), and three
EVs charge: the site starts each session, the grants add up to no more than the limit, and the
tickets reach the site.
"""

from __future__ import annotations

import json
import time

import pytest

from evnet.config.site_key import site_key
from firmware.chargepoint.settings import SITE_OPTIONS
from firmware.site import new_private_key, public_key_b64
from firmware.site.client import SiteClient, read_state
from hal.pilot import EvLoad

from ..engine.conftest import wait_for
from ..sites import MEMBERS, add_people, start_site, stop_site

# The `site` fixture (tests/conftest.py, tests/sites.py): three charge points of site "s1" sharing 32 A.


def test_three_charge_points_start_sessions_through_the_site_and_share_the_limit(site) -> None:
    """Drivers with their own keys and no site key (open requests, admitted by the leader), an operator who
    stops and resumes a charge point, the state the leader publishes."""
    cfg = site["cp1"].cfg
    operator = new_private_key()
    drivers = {cp: new_private_key() for cp in MEMBERS}
    wait_for(lambda: all(c.machine.state.cps[c.cp].registered for c in site.values()),
             timeout=20, what="every charge point registered")
    assert all(c.runner.replica.opts == SITE_OPTIONS for c in site.values())  # the site's pace, not the default
    with SiteClient(cfg.mqtt, "s1", site_key=site_key(cfg), client_id="tool", timeout=10.0) as tool:
        tool.add_principal("op1", "operator", public_key_b64(operator))
    with SiteClient(cfg.mqtt, "s1", principal="op1", key=operator, timeout=10.0) as op:
        for n, cp in enumerate(MEMBERS, start=1):
            op.add_principal(f"D{n}", "driver", public_key_b64(drivers[cp]))
        for n, cp in enumerate(MEMBERS, start=1):
            with SiteClient(cfg.mqtt, "s1", principal=f"D{n}", key=drivers[cp], timeout=10.0) as driver:
                assert driver.open and driver.request_charge(at=cp)["cp"] == cp
        for c in site.values():
            c.evse.cable.ev.set_load(EvLoad.B)
            c.evse.cable.ev.set_load(EvLoad.C)
        wait_for(lambda: len(site["cp1"].machine.state.sessions) == 3, timeout=30,
                 what="three sessions started at the site")
        wait_for(lambda: all(c.evse.core.session.state.value == "Charging" for c in site.values()), timeout=30,
                 what="every EV charging once the site started its session")
        sums: list[float] = []

        def settled() -> bool:
            offers = [c.evse.core.allowed_a for c in site.values()]
            sums.append(sum(offers))
            return all(o >= 6.0 for o in offers)  # nobody stopped: everyone keeps the IEC minimum
        wait_for(settled, timeout=30, what="every EV offered its share once the others were lowered")
        assert max(sums) <= 32.0 + 1e-9, max(sums)  # the offers never added up to more than the limit
        state = read_state(cfg.mqtt, "s1")
        assert state["v"] == 1 and state["slot"] > 0 and "key" not in json.dumps(state)
        op.stop_cp("cp2")  # the operator: cp2's session ends with its ticket, cp2 is OUT_OF_ORDER
        wait_for(lambda: site["cp2"].evse.core.status == "OUT_OF_ORDER", timeout=30, what="cp2 out of order")
        wait_for(lambda: len(site["cp3"].machine.state.sessions) == 2, timeout=30,
                 what="cp2's session closed at the site (its ticket made)")
        wait_for(lambda: site["cp2"].evse.ledger.journal.state.tickets == {}, timeout=30,
                 what="cp2's ticket taken by the site and gone from its journal")
        op.resume_cp("cp2")
        wait_for(lambda: site["cp2"].evse.core.status != "OUT_OF_ORDER", timeout=30, what="cp2 back in service")


@pytest.mark.slow
def test_a_change_held_back_by_the_pacing_goes_out_when_its_time_comes(tmp_path, mosquitto) -> None:
    """Two changes within the state's one-second pacing, then a quiet site (a 60 s lease: no renewal for 30 s):
    the second reaches evnet/{site}/state a second after the first, not with the next command applied."""
    cps = start_site(tmp_path, mosquitto.url, lease_s=60)
    try:
        cfg = cps["cp1"].cfg
        wait_for(lambda: all(c.machine.state.cps[c.cp].registered for c in cps.values()), timeout=20,
                 what="every charge point registered")
        operator, _ = add_people(cps["cp1"], [])
        with SiteClient(cfg.mqtt, "s1", principal="op1", key=operator, timeout=10.0) as op:
            op.set_limit(30)
            op.set_limit(28)
            t = time.monotonic()
        wait_for(lambda: read_state(cfg.mqtt, "s1")["limit_a"] == 28, timeout=5, what="the second change published")
        assert time.monotonic() - t < 2.5  # the pacing's second, not the next renewal's 30 s
    finally:
        stop_site(cps)
