"""The split as users see it, through the machine with its heartbeat: shares, order of changes, no flapping,
turns when short, and a reason for every limit."""

from __future__ import annotations

from typing import Any

import pytest


class Heartbeat:
    """Charge points that renew every half lease, report what their EV draws and ack a lowering once it follows.

    `wants[cp]`: what the EV would draw if allowed (it draws min(grant, want)).
    """

    def __init__(self, s: Any, wants: dict[str, float], ev_max: dict[str, float] | None = None) -> None:
        self.s = s
        self.wants = wants
        self.ev_max = ev_max or {}
        self.changes: dict[str, int] = dict.fromkeys(s.m.state.cps, 0)
        self.charged_ms: dict[str, int] = dict.fromkeys(s.m.state.cps, 0)
        self.highest_sum = 0.0

    def run(self, seconds: float, ack: bool = True) -> None:
        s = self.s
        step = s.setup.params.lease_ms // 2
        for _ in range(int(seconds * 1000) // step):
            s.tick(step)
            for cp in s.m.state.cps:
                if not s.m.state.cps[cp].registered:
                    continue
                seq = s.seq(cp)
                s.member(cp, "renew", cp=cp)
                drawn = min(s.grant(cp), self.wants.get(cp, 0)) if s.m.state.session_at(cp) else 0
                s.member(cp, "report", cp=cp, plugged=s.m.state.session_at(cp) is not None, drawn_a=drawn,
                         ev_max_a=self.ev_max.get(cp))
                if ack and s.m.state.budget.allowances[cp].prior_until:
                    s.member(cp, "ack_grant", cp=cp, seq=s.seq(cp))
                if s.grant(cp) >= 6:
                    self.charged_ms[cp] += step
                self.changes[cp] += s.seq(cp) - seq
                self.highest_sum = max(self.highest_sum, s.drawing())

    def settled(self) -> dict[str, float]:
        return {cp: self.s.grant(cp) for cp in self.s.m.state.cps}


@pytest.fixture
def three(site: Any) -> Any:
    site.online("cp1", "cp2", "cp3")
    return site


def test_three_evs_share_63_a_and_the_sum_never_exceeds_it(three: Any) -> None:
    beat = Heartbeat(three, {"cp1": 32, "cp2": 32, "cp3": 32})
    three.charging("cp1", "D1")
    beat.run(60)
    assert beat.settled() == {"cp1": 32, "cp2": 0, "cp3": 0}
    three.charging("cp2", "D2")
    beat.run(60)
    assert beat.settled() == {"cp1": 31.5, "cp2": 31.5, "cp3": 0}
    three.charging("cp3", "D3")
    beat.run(60)
    assert beat.settled() == {"cp1": 21, "cp2": 21, "cp3": 21}
    assert {three.reason(cp) for cp in ("cp1", "cp2", "cp3")} == {"site_share"}
    assert beat.highest_sum <= 63


def test_a_newcomer_waits_for_the_others_to_follow_and_gets_its_share_when_they_do(three: Any) -> None:
    beat = Heartbeat(three, {"cp1": 32, "cp2": 32, "cp3": 32})
    three.charging("cp1", "D1")
    three.charging("cp2", "D2")
    beat.run(30)
    three.charging("cp3", "D3")
    assert three.grant("cp1") == three.grant("cp2") == 21  # lowered at once
    assert three.grant("cp3") == 0 and three.reason("cp3") == "waiting_for_others"
    three.member("cp1", "ack_grant", cp="cp1", seq=three.seq("cp1"))
    assert three.grant("cp3") == 10.5  # only cp1 followed so far: 63 - 21 - 31.5
    three.member("cp2", "ack_grant", cp="cp2", seq=three.seq("cp2"))
    assert three.grant("cp3") == 21 and three.reason("cp3") == "site_share"


def test_without_acks_the_newcomer_waits_for_the_old_grants_lease_and_reaction(three: Any) -> None:
    beat = Heartbeat(three, {"cp1": 32, "cp2": 32, "cp3": 32})
    three.charging("cp1", "D1")
    three.charging("cp2", "D2")
    beat.run(30)
    three.charging("cp3", "D3")
    p = three.setup.params
    beat.run((p.site_lease_ms + p.site_reaction_ms) / 1000 - 1, ack=False)
    assert three.grant("cp3") == 0
    beat.run(10, ack=False)
    assert three.grant("cp3") == 21 and beat.highest_sum <= 63


def test_steady_input_gives_steady_grants(three: Any) -> None:
    beat = Heartbeat(three, {"cp1": 32, "cp2": 16, "cp3": 32})
    for cp, d in (("cp1", "D1"), ("cp2", "D2"), ("cp3", "D3")):
        three.charging(cp, d)
    beat.run(600)
    settled = beat.settled()
    beat.changes = dict.fromkeys(beat.changes, 0)
    beat.run(7200)
    assert beat.changes == {"cp1": 0, "cp2": 0, "cp3": 0}
    assert beat.settled() == settled


def test_an_ev_drawing_less_gives_the_rest_back_after_a_while_and_takes_it_back_at_once(three: Any) -> None:
    beat = Heartbeat(three, {"cp1": 10, "cp2": 32, "cp3": 32})
    for cp, d in (("cp1", "D1"), ("cp2", "D2"), ("cp3", "D3")):
        three.charging(cp, d)
    beat.run(30)
    assert three.grant("cp1") == 21  # a short while: nothing given back yet
    beat.run(120)
    assert three.grant("cp1") == 12 and three.reason("cp1") == "ev_draws_less"
    assert three.grant("cp2") == three.grant("cp3") == 25.5
    changes = dict(beat.changes)
    beat.run(1800)
    assert beat.changes == changes  # it keeps drawing 10 A: no flapping
    three.member("cp1", "report", cp="cp1", plugged=True, drawn_a=11.5)  # it wants more
    assert three.m.state.cps["cp1"].target_da == 210
    beat.wants["cp1"] = 32
    beat.run(30)
    assert beat.settled() == {"cp1": 21, "cp2": 21, "cp3": 21}


def test_when_short_evs_take_turns_and_nobody_starves(make_site: Any) -> None:
    s = make_site({"cp1": 0, "cp2": 0, "cp3": 0}, limit_a=13, rotate_ms=900_000)
    s.online("cp1", "cp2", "cp3")
    beat = Heartbeat(s, {"cp1": 32, "cp2": 32, "cp3": 32})
    for cp, d in (("cp1", "D1"), ("cp2", "D2"), ("cp3", "D3")):
        s.charging(cp, d)
    beat.run(10)
    assert sorted(beat.settled().values()) == [0, 6.5, 6.5]
    paused = [cp for cp in ("cp1", "cp2", "cp3") if s.grant(cp) == 0]
    assert [s.reason(cp) for cp in paused] == ["paused_short"]
    beat.run(3 * 3600)
    assert all(ms >= 3600_000 for ms in beat.charged_ms.values()), beat.charged_ms
    turns = 3 * 3600_000 // 900_000
    assert sum(beat.changes.values()) <= 4 * (turns + 1)  # a swap every 15 min: two lowered, two raised
    assert beat.highest_sum <= 13


def test_when_short_the_higher_priority_charges(make_site: Any) -> None:
    s = make_site({"cp1": 0, "cp2": 0}, limit_a=10)
    s.online("cp1", "cp2")
    s.add_operator()
    s.signed("op1", "set_priority", cp="cp2", priority=3)
    beat = Heartbeat(s, {"cp1": 32, "cp2": 32})
    s.charging("cp1", "D1")
    beat.run(20)
    assert s.grant("cp1") == 10
    s.charging("cp2", "D2")  # pre-empts at once, whatever cp1's turn
    beat.run(3600)
    assert s.grant("cp2") == 10 and s.grant("cp1") == 0 and s.reason("cp1") == "paused_short"


def test_every_limit_says_why(make_site: Any) -> None:
    s = make_site({"cp1": 0, "cp2": 0, "cp3": 0, "cp4": 0}, limit_a=40)
    s.online("cp1", "cp2", "cp3", "cp4")
    s.register("cp4", max_a=10)
    s.charging("cp1", "D1", ev_max_a=8)
    s.charging("cp2", "D2")
    s.charging("cp4", "D4")
    assert s.reason("cp4") == "waiting_for_others"  # until cp2 follows its lower grant
    Heartbeat(s, {"cp1": 8, "cp2": 32, "cp4": 10}, ev_max={"cp1": 8}).run(10)
    assert [s.reason(cp) for cp in ("cp1", "cp2", "cp3", "cp4")] == ["ev_max", "site_share", "no_ev", "cp_max"]
    assert (s.grant("cp1"), s.grant("cp2"), s.grant("cp4")) == (8, 22, 10)
    s.signed("op1", "stop_cp", cp="cp3")
    assert s.reason("cp3") == "operator"
    s.tick(s.setup.params.site_lease_ms)
    s.member("cp2", "renew", cp="cp2")
    assert s.reason("cp1") == "no_lease"
    assert s.cp_view("cp1")["limit_reason"] == "no_lease"
