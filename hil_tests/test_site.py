"""A site of three `evnet cp` processes sharing 63 A between three EVs asking for 32 A, on a real Mosquitto.

What is asserted is what an ordinary Modbus client reads from the meters every 100 ms (hil_tests/site_rig.py):
the sum of the currents never exceeds the site's limit, and charging EVs keep charging through a leader's
death, a charge point cut off and a broker restart.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .site_rig import FALLBACK_A, LEASE_S, LIMIT_A, MEMBERS, SiteRig, wait_for

pytestmark = pytest.mark.slow
SHARE_A = LIMIT_A / len(MEMBERS)  # 21 A: three EVs that each want 32 A share the limit equally
EPS = 0.05  # the meter's float32 registers


@pytest.fixture
def site(tmp_path: Path, mosquitto) -> Iterator[SiteRig]:
    rig = SiteRig(tmp_path, mosquitto.url)
    try:
        rig.start()
        rig.add_people(len(MEMBERS))
        yield rig
    finally:
        rig.close()


def charging(site: SiteRig) -> float:
    """All three EVs plugged in and authorized; the moment they all drew their share (time.monotonic())."""
    for n, cp in enumerate(MEMBERS, start=1):
        site.request_charge(f"D{n}", cp)
        site.plug_ev(cp)
    assert site.sampler is not None
    return site.sampler.wait(lambda s: all(a is not None and a >= SHARE_A - EPS for a in s.amps.values()),
                             60, "every EV drawing its share").t


def test_three_evs_share_the_limit_and_the_sum_never_exceeds_it(site: SiteRig) -> None:
    assert site.sampler is not None
    settled = charging(site)
    site.sampler.wait(lambda s: s.t > settled + 2.0, 10, "two more seconds of samples")
    assert max(s.total() for s in site.sampler.since(0)) <= LIMIT_A + EPS  # from the first plug on
    for s in site.sampler.since(settled):
        for cp, amps in s.amps.items():
            assert amps == pytest.approx(SHARE_A, abs=0.5), (cp, s)  # settled: nobody flaps


def steady(site: SiteRig, cps: list[str], since: float, until: float) -> None:
    """Every sample of `cps` in [since, until) read: each drawing at least its share (no contactor opened, no
    current lowered), and the site's sum never above its limit (a point whose meter is silent counts at the
    last current read from it: what it drew when it went silent)."""
    assert site.sampler is not None
    last: dict[str, float] = {}
    for s in site.sampler.since(since - 1.0):
        last.update({cp: a for cp, a in s.amps.items() if a is not None})
        if s.t < since or s.t >= until:
            continue
        assert sum(last.values()) <= LIMIT_A + EPS, s
        for cp in cps:
            assert s.amps[cp] is not None and s.amps[cp] >= SHARE_A - EPS, (cp, s)


def test_kill_9_of_the_leader_stops_no_charge_and_the_next_command_commits(site: SiteRig) -> None:
    settled = charging(site)
    leader = site.leader()
    others = [cp for cp in MEMBERS if cp != leader]
    killed = time.monotonic()
    site.signal(leader, signal.SIGKILL)
    assert site.operator("set_limit", {"limit_a": LIMIT_A}).get("ok")  # the next site command commits
    assert site.leader() in others
    assert site.sampler is not None
    site.sampler.wait(lambda s: s.t > killed + LEASE_S + 2.0, 20, "the dead leader's lease and then some")
    steady(site, others, settled, time.monotonic())


def test_sigstop_the_others_get_its_share_only_after_its_lease_ran_out(site: SiteRig) -> None:
    charging(site)
    assert site.sampler is not None
    stopped = site.leader()  # the hardest case: the leader is the one cut off
    others = [cp for cp in MEMBERS if cp != stopped]
    site.signal(stopped, signal.SIGSTOP)
    t_stop = time.monotonic()
    raised = site.sampler.wait(lambda s: all((s.amps[cp] or 0) > SHARE_A + 1 for cp in others), 30,
                               "the others raised to the stopped point's share").t
    site.signal(stopped, signal.SIGCONT)
    assert raised >= t_stop + LEASE_S  # not before its lease could have run out
    steady(site, others, t_stop, raised)  # nobody lowered meanwhile; the sum, the stopped one at its last read
    # From then on the stopped point counts at its fallback (by the rule; a frozen engine's EV reads the cable as
    # unplugged within 1 s here, on a Pi the monitor must cut it): the others take no more than the rest.
    site.sampler.wait(lambda s: s.amps[stopped] is not None, 30, "the stopped point's meter answering again")
    for s in site.sampler.since(raised):
        assert sum(s.amps[cp] or 0 for cp in others) + (FALLBACK_A if s.amps[stopped] is None else
                                                          s.amps[stopped]) <= LIMIT_A + EPS, s


def test_a_broker_restart_stops_no_charge(site: SiteRig, mosquitto) -> None:
    charging(site)
    t0 = time.monotonic()
    mosquitto.restart()
    assert site.sampler is not None
    site.sampler.wait(lambda s: s.t > t0 + LEASE_S + 2.0, 20, "a lease and more after the restart")
    steady(site, list(MEMBERS), t0, time.monotonic())
    assert site.operator("set_limit", {"limit_a": LIMIT_A}).get("ok")  # the site works again


@pytest.mark.xfail(strict=True, reason="the rig's simulated meter lives in the `evnet cp` process: a kill -9 takes "
                   "its register with it and the restarted point reads 0 kWh, below the session's start, so the "
                   "recovered ticket is 0 Wh. A real meter keeps counting; the rig needs a meter outside the process "
                   "whose load follows the EV (tests/engine/test_evse_journal.py does it with an in-test EV end)")
def test_kill_9_of_a_charging_point_and_its_restart_make_one_ticket_equal_to_the_meter(site: SiteRig) -> None:
    assert site.sampler is not None
    site.request_charge("D2", "cp2")
    site.plug_ev("cp2")
    site.sampler.wait(lambda s: (s.kwh["cp2"] or 0) > 0.05, 60, "cp2 charging")
    session = re.findall(r"event=engine.session_started session=(\S+)", site.log_text("cp2"))[-1]
    site.signal("cp2", signal.SIGKILL)
    before_kill = [s.kwh["cp2"] for s in site.sampler.since(0) if s.kwh["cp2"] is not None][-1]
    site.start_cp("cp2")
    acked: dict = {}

    def ticket_at_site() -> bool:
        nonlocal acked
        acked = site.operator("ack_tickets", {"sessions": [session]})
        return bool(acked.get("ok"))
    wait_for(ticket_at_site, 60, f"the ticket of {session} at the site")
    assert site.operator("ack_tickets", {"sessions": [session]}).get("error") == "unknown_ticket"  # only one
    assert acked["totals"]["tickets"] == 1
    assert acked["totals"]["energy_wh"] == pytest.approx(before_kill * 1000, abs=1.0), acked
