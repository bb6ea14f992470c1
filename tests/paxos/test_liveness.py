"""Liveness that a replay cannot fake, and pre-votes (liveness.py), driven message by message."""

from __future__ import annotations

import logging

import pytest

from firmware.paxos.core import kv
from firmware.paxos.core import messages as m
from firmware.paxos.core.options import Options
from firmware.paxos.core.replica import FOLLOWER, LEADER, Replica
from firmware.paxos.core.types import Ballot
from firmware.paxos.sim.scripted import Scripted

REPLAY_EVERY = 0.040  # as in the attack of issue 9, A4
STEP = 0.010


@pytest.fixture
def site() -> Scripted:
    s = Scripted()
    s.elect("a")
    for _ in range(3):  # a few heartbeat rounds: every follower has proven the leader alive
        s.advance(s.options.heartbeat_interval)
        s.deliver_all()
    return s


def captured(s: Scripted, src: str, kind: type) -> list[tuple[str, m.Message]]:
    """The messages of `kind` that `src` has in flight now: what someone on the broker records."""
    return [(d, msg) for sender, d, msg in s.inflight if sender == src and isinstance(msg, kind)]


def run_with_replay(s: Scripted, replay: list[tuple[str, m.Message]], seconds: float,
                    until: object = None) -> float | None:
    """Advance `seconds` in small steps, delivering everything, replaying `replay` every 40 ms.

    Returns the time `until()` first held (None if never)."""
    start, next_replay = s.now, s.now
    while s.now - start < seconds:
        if s.now >= next_replay:
            next_replay += REPLAY_EVERY
            for to, msg in replay:
                if to in s.replicas:
                    s[to].step(msg, s.now)
                    s.collect(to)
        s.advance(STEP)
        s.deliver_all()
        if until is not None and until():
            return s.now - start
    return None


def leaders(s: Scripted) -> list[str]:
    return [n for n, r in s.replicas.items() if r.role == LEADER]


def test_replayed_heartbeats_of_a_paused_leader_do_not_hold_off_the_election(site: Scripted) -> None:
    site.advance(site.options.heartbeat_interval)
    replay = captured(site, "a", m.Heartbeat)
    assert sorted(d for d, _ in replay) == ["b", "c"]
    site.crash("a")  # paused: it says nothing more (a crash looks the same from outside)
    took = run_with_replay(site, replay, 3.0, until=lambda: bool(leaders(site)))
    assert took is not None, "the replayed heartbeats held the followers for the whole 3 s"
    assert took < site.options.election_max + 0.1  # the usual time: an election timeout and a round trip
    assert leaders(site)[0] in ("b", "c")


def test_replayed_heartbeat_replies_do_not_keep_a_cut_off_leader_in_office(site: Scripted) -> None:
    site.advance(site.options.heartbeat_interval)
    site.deliver(src="a")  # the followers answer
    replay = captured(site, "b", m.HeartbeatReply) + captured(site, "c", m.HeartbeatReply)
    assert len(replay) == 2
    site.crash("b")
    site.crash("c")
    took = run_with_replay(site, replay, 2.0, until=lambda: site["a"].role != LEADER)
    assert took is not None and took < site.options.election_max + 0.1


def test_a_replayed_will_of_an_earlier_connection_does_not_depose_the_leader(site: Scripted) -> None:
    a = site["a"]
    ballot = a.ballot
    a.set_epoch(2)  # a reconnected to the broker: the Will of connection 1 was published meanwhile
    site.advance(site.options.heartbeat_interval)
    site.deliver_all()  # b and c hear a on connection 2
    for _ in range(50):  # the old Will, replayed every 40 ms for 2 s
        assert not site["b"].leader_gone("a", 1, site.now) and not site["c"].leader_gone("a", 1, site.now)
        site.advance(REPLAY_EVERY)
        site.deliver_all()
    assert leaders(site) == ["a"] and a.ballot == ballot
    assert site["b"].leader_gone("a", 2, site.now)  # the Will of the connection it is on now is news


def test_a_will_taken_once_is_not_taken_again_and_proofs_from_before_it_do_not_count(site: Scripted) -> None:
    b = site["b"]
    site.advance(site.options.heartbeat_interval)
    replay = captured(site, "a", m.Heartbeat)
    assert b.leader_gone("a", 1, site.now)
    for to, msg in replay:  # a heartbeat from before the Will, echoing a stamp b sent before it
        if to == "b":
            b.step(msg, site.now)
    assert b.last_heard < 0 and b.ready().deadline <= site.now + site.options.heartbeat_interval
    assert not b.leader_gone("a", 1, site.now)


def test_a_replica_cut_off_for_a_while_neither_raises_its_ballot_nor_writes_promises(site: Scripted) -> None:
    ballot, c = site["a"].ballot, site["c"]
    writes = site.disks["c"].writes
    for _ in range(300):  # 3 s: ten or more election timeouts
        site.advance(STEP)
        site.deliver_all(cut=frozenset({"c"}))
    assert c.max_round == ballot.round and c.acceptor.promised == ballot
    assert site.disks["c"].writes == writes  # not one promise written
    for _ in range(30):  # back in touch: the leader stays leader, with the same ballot
        site.advance(STEP)
        site.deliver_all()
    assert leaders(site) == ["a"] and site["a"].ballot == ballot
    assert c.role == FOLLOWER and c.leader == "a"
    site.propose("a", "k1", 1, kv.put("x", 1))
    run_with_replay(site, [], 0.05)  # nothing to replay: time passes, everything is delivered
    assert site.data("c") == {"x": 1}


def test_while_the_broker_is_down_no_replica_inflates_ballots_or_writes_promises(site: Scripted) -> None:
    ballot = site["a"].ballot
    writes = {n: site.disks[n].writes for n in site.ids}
    for _ in range(300):  # 3 s without a single message delivered
        site.advance(STEP)
        site.drop()
    assert {n: r.max_round for n, r in site.replicas.items()} == dict.fromkeys(site.ids, ballot.round)
    assert {n: site.disks[n].writes for n in site.ids} == writes
    assert leaders(site) == []  # the leader stepped down: it heard nobody
    run_with_replay(site, [], 1.0, until=lambda: bool(leaders(site)))
    assert len(leaders(site)) == 1 and site[leaders(site)[0]].ballot.round <= ballot.round + 2


def test_a_leader_back_from_a_pause_follows_the_new_one_and_does_not_disturb_it(site: Scripted) -> None:
    paused = site.replicas.pop("a")  # SIGSTOP: it keeps its state, hears and says nothing
    site.drop(src="a")
    site.drop(dst="a")
    run_with_replay(site, [], 1.0, until=lambda: bool(leaders(site)))
    new = leaders(site)[0]
    ballot = site[new].ballot
    site.replicas["a"] = paused  # SIGCONT: it still thinks it leads, under its old ballot
    run_with_replay(site, [], 1.0)
    assert leaders(site) == [new] and site[new].ballot == ballot
    assert paused.role == FOLLOWER and paused.leader == new


def test_a_pre_vote_is_refused_while_the_leader_is_alive_and_granted_once_it_is_not(site: Scripted) -> None:
    b, c = site["b"], site["c"]
    c.step(m.PreVote("test", "b", Ballot(2, "b"), 1, 99), site.now)
    (to, answer), = c.ready().messages
    assert to == "b" and isinstance(answer, m.PreVoteReply) and not answer.granted
    assert (answer.echo_epoch, answer.echo_seq) == (1, 99)
    site.crash("a")
    site.advance(site.options.election_min)
    c.step(m.PreVote("test", "b", Ballot(2, "b"), 1, 100), site.now)
    (to, answer), = c.ready().messages
    assert answer.granted and c.acceptor.promised == Ballot(1, "a") and c.max_round == 1  # nothing noted
    assert b.role == FOLLOWER


def test_a_replica_without_a_quorum_folds_its_election_lines(caplog: pytest.LogCaptureFixture) -> None:
    r = Replica("a", ["a", "b", "c"], "test", kv.KVMachine(), options=Options())
    caplog.set_level(logging.INFO, logger="evnet.paxos")
    now = 0.0
    while now < 10.0:  # nobody ever answers: about 45 election timeouts
        now += STEP
        r.tick(now)
        r.ready()
    lines = [rec.getMessage() for rec in caplog.records if "event=paxos.prevote" in rec.getMessage()
             or "event=paxos.election" in rec.getMessage()]
    assert 2 <= len(lines) <= 3, lines  # the first at once, then one every 5 s
    assert "repeats=" in lines[1] and "total=" in lines[1]
    assert r.max_round == 0 and r.acceptor.promised.round == 0
