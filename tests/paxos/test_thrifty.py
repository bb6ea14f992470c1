"""Thrifty phase 2 (thrifty.py): Accepts go to a quorum's worth of followers; the others get pushes."""

from __future__ import annotations

from firmware.paxos.core import kv
from firmware.paxos.core import messages as m
from firmware.paxos.core.options import Options
from firmware.paxos.sim.scripted import Scripted


def elected() -> Scripted:
    s = Scripted()
    s.elect("a")
    s.advance(s.options.heartbeat_interval)  # every follower answers a heartbeat: all are live
    s.deliver_all()
    return s


def test_new_accepts_go_to_one_follower_and_the_other_learns_from_a_push_without_voting() -> None:
    s = elected()
    accepted_before = dict(s.disks["c"].synced.accepted)
    s.propose("a", "c1", 1, kv.put("k", 1))
    assert [d for _, d, msg in s.inflight if isinstance(msg, m.Accept)] == ["b"]
    s.deliver_all()
    assert s.data("b") == {"k": 1} and s.data("c") == {}
    assert [r.client for r in s.replies] == ["c1"]  # chosen by a and b alone
    s.advance(s.options.lazy_delay)
    assert s.kinds(src="a", dst="c") == ["CatchUpReply"]
    s.deliver_all()
    assert s.data("c") == {"k": 1}
    assert s.disks["c"].synced.accepted == accepted_before  # learned, not accepted: nothing to fsync
    # A slot chosen just before a heartbeat: the push goes first, so the heartbeat's commit hint
    # (beyond what c knew) sends c to catch up on nothing.
    s.propose("a", "c2", 1, kv.put("k", 2))
    s.deliver_all(cut=frozenset({"c"}))
    s.advance(s.options.heartbeat_interval)
    assert s.kinds(src="a", dst="c") == ["CatchUpReply", "Heartbeat"]
    s.deliver(src="a", dst="c")
    assert s.data("c") == {"k": 2} and "CatchUpRequest" not in s.kinds(src="c")


def test_a_slot_the_fast_follower_never_answers_is_chosen_by_the_lazy_one_after_lazy_delay() -> None:
    s = elected()
    s.propose("a", "c1", 1, kv.put("k", 1))
    assert s.drop(dst="b") == 1  # b, the fast follower, is cut off from now on
    s.advance(s.options.lazy_delay)
    assert s.kinds(src="a", dst="c") == ["Accept"]  # the stale slot, for c's vote
    s.deliver_all(cut=frozenset({"b"}))
    assert [r.client for r in s.replies] == ["c1"]
    # Once b has been silent for two heartbeat intervals, new slots go to c at once.
    for _ in range(3):
        s.advance(s.options.heartbeat_interval)
        s.deliver_all(cut=frozenset({"b"}))
    s.propose("a", "c2", 1, kv.put("k", 2))
    assert [d for _, d, msg in s.inflight if isinstance(msg, m.Accept)] == ["c"]
    s.deliver_all(cut=frozenset({"b"}))
    assert [r.client for r in s.replies] == ["c1", "c2"]


def test_lazy_delay_zero_sends_every_accept_to_every_follower() -> None:
    s = Scripted(options=Options(lazy_delay=0))
    s.elect("a")
    s.propose("a", "c1", 1, kv.put("k", 1))
    assert sorted(d for _, d, msg in s.inflight if isinstance(msg, m.Accept)) == ["b", "c"]
    s.deliver_all()
    assert s.data("b") == s.data("c") == {"k": 1}


def test_five_replicas_send_new_accepts_to_two_followers() -> None:
    s = Scripted(ids=("a", "b", "c", "d", "e"))
    s.elect("a")
    s.advance(s.options.heartbeat_interval)
    s.deliver_all()
    s.propose("a", "c1", 1, kv.put("k", 1))
    assert sorted(d for _, d, msg in s.inflight if isinstance(msg, m.Accept)) == ["b", "c"]
    s.deliver_all()
    s.advance(s.options.lazy_delay)
    s.deliver_all()
    assert all(s.data(n) == {"k": 1} for n in s.ids)
