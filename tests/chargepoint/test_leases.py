"""Leases and grants: a lease counts from when its renewal was sent (a late answer is ignored); a site that
falls silent never opens a contactor, the engine falls to its fallback at its lease end; a lowered grant is
acknowledged once the meter shows the EV follows it, not before."""

from __future__ import annotations

import json

import pytest

from firmware.chargepoint import Grant, StopSession


@pytest.mark.parametrize("latency", [0.05, 3.0, 9.0])
def test_a_lease_is_counted_from_when_its_renewal_was_sent(rig, latency: float) -> None:
    r = rig(latency=latency)
    r.advance(40.0)
    sent = {p.tag: t for t, p in r.sent}
    answered = [(sent[p.tag], t) for t, p, _ in r.applied if p.tag.op == "renew"]
    assert len(answered) >= 5
    untils = [g.until for g in r.of(Grant)]
    assert untils == [pytest.approx(s + 10.0) for s, _ in answered]  # one grant per renewal, from its sending
    assert all(t - s == pytest.approx(latency) for s, t in answered)


def test_a_renewal_answered_after_its_lease_would_have_ended_is_ignored(rig) -> None:
    r = rig(latency=10.5)
    r.advance(30.0)
    assert r.results("renew") and all(res["ok"] for res in r.results("renew"))  # the site did renew
    assert r.of(Grant) == [] and r.bridge.lease.late >= 1  # but each answer came after its lease's end
    assert r.offer_a() == 6.0


def test_a_silent_site_never_opens_the_contactor_and_the_engine_falls_to_its_fallback_at_its_lease_end(rig) -> None:
    r = rig()
    r.charging()
    assert r.draw_a == 32.0
    r.site_up = False
    last = r.bridge.lease.until
    r.advance(last - r.now - 0.01)
    assert r.offer_a() == 32.0 and r.draw_a == 32.0  # the grant holds to the end of the lease
    r.advance(0.02)
    assert r.offer_a() == 6.0 and r.draw_a == 6.0  # then the fallback, at once
    r.advance(600.0)
    assert r.contactor and [c for _, c in r.closed_at].count(False) == 1  # only the start's "open"
    assert r.of(StopSession) == [] and not r.bridge.site_reachable
    r.site_up = True
    r.advance(10.0)
    assert r.bridge.site_reachable and r.draw_a == 32.0  # renewed: its share again


def test_a_lowered_grant_is_acknowledged_once_the_meter_shows_the_ev_follows_not_before(rig) -> None:
    r = rig(members=("cp1", "cp2", "cp3"), auto_draw=False)
    r.charging()
    r.draw_a = 32.0
    r.advance(3.0)
    r.other_online("cp2")
    r.other_online("cp3")
    r.other_charging("cp2", "D2", drawn_a=0)
    r.other_charging("cp3", "D3", drawn_a=0)
    view = r.site.view("cp1").grant
    assert view.grant_a == 21.0 and r.offer_a() == 21.0  # lowered to its share of 63 A; the engine offers it
    waiting = r.site.view("cp3").grant
    assert waiting.limit_reason == "waiting_for_others"  # cp1's old 32 A still counts (and cp2's old grant)
    r.advance(4.0)  # the EV keeps drawing 32 A: no acknowledgement
    assert r.proposed("ack_grant") == []
    r.draw_a = 21.0  # it follows the lower duty
    r.advance(2.5)
    assert r.proposed("ack_grant") == [{"cp": "cp1", "seq": view.grant_seq}]
    (result,) = r.results("ack_grant")
    assert result["released"] is True
    r.member("cp3", "renew", cp="cp3")  # the next command lets the waiting raise happen
    assert r.site.view("cp3").grant.grant_a == waiting.grant_a + 32.0 - 21.0  # cp1's old grant was released


def test_an_ev_that_follows_too_little_is_not_acknowledged(rig) -> None:
    r = rig(members=("cp1", "cp2"), auto_draw=False, limit_a=38)
    r.charging()
    r.draw_a = 32.0
    r.other_online("cp2")
    r.other_charging("cp2", "D2", drawn_a=0)
    grant = r.site.view("cp1").grant.grant_a
    assert grant < 32.0
    r.draw_a = grant + 1.0  # above grant + the 0.5 A tolerance
    r.advance(5.0)
    assert r.proposed("ack_grant") == []
    r.draw_a = grant + 0.4
    r.advance(2.5)
    assert len(r.proposed("ack_grant")) == 1


def test_protocol_timings_are_real_time_on_a_faster_engine_clock(rig) -> None:
    r = rig(speed=60.0, latency=0.05 * 60)
    r.advance(700.0)  # under 12 s of real time
    sends = [t for t, p in r.sent if p.tag.op == "renew"]
    assert sends[1] - sends[0] == pytest.approx(300.0)  # every half lease: 5 real seconds, 300 s of engine clock
    assert r.of(Grant)[0].until == pytest.approx(sends[0] + 600.0)
    assert json.loads(r.sent[0][1].command)["op"] == "register"



def test_the_site_paces_paxos_for_leases_not_for_sub_second_failover() -> None:
    """Half the Paxos defaults' pace (the idle leader's CPU), yet a hung leader is replaced within the shortest
    lease a configuration may set (site.lease_s >= 1 s), so no lease runs out for want of a leader."""
    from firmware.chargepoint.settings import SITE_OPTIONS
    from firmware.paxos import Options

    assert SITE_OPTIONS.heartbeat_interval >= 2 * Options().heartbeat_interval
    assert SITE_OPTIONS.election_max + 2 * SITE_OPTIONS.heartbeat_interval < 1.0
