"""One test per rule of the protocol, driving three replicas message by message (etcd raft style)."""

from __future__ import annotations

import json

import pytest

from firmware.paxos.core import kv
from firmware.paxos.core import messages as m
from firmware.paxos.core.batch import Command, Stamp, decode_batch, encode_batch
from firmware.paxos.core.options import Options
from firmware.paxos.core.replica import LEADER, Replica
from firmware.paxos.core.types import Ballot
from firmware.paxos.sim.scripted import SITE, Scripted


def results(s: Scripted, client: str) -> dict[int, object]:
    return {r.req: json.loads(r.result) for r in s.replies if r.client == client}


@pytest.fixture
def site() -> Scripted:
    s = Scripted()
    s.elect("a")
    return s


def test_a_replica_that_times_out_becomes_leader_and_the_others_follow(site: Scripted) -> None:
    assert site["a"].role == LEADER and site["a"].ballot == Ballot(1, "a")
    assert site["b"].leader == "a" and site["c"].leader == "a"
    assert site.disks["b"].synced.promised == Ballot(1, "a")  # the promise is durable


def test_a_stable_leader_runs_phase_1_once_and_batches_and_pipelines(site: Scripted) -> None:
    for n in range(1, 11):  # ten clients, one request each
        site["a"].propose(f"c{n}", 1, kv.put("k", n), site.now)
    site.collect("a")
    kinds = site.kinds(src="a")
    assert "Prepare" not in kinds
    accepts = [msg for s, d, msg in site.inflight if isinstance(msg, m.Accept) and d == "b"]
    slots = [e for a in accepts for e in a.entries]
    assert len(slots) == 1 and len(decode_batch(slots[0].value)[1]) == 10  # ten commands in one slot
    site.deliver_all()
    assert [json.loads(r.result) for r in site.replies] == ["ok"] * 10
    # pipelining: several slots in flight before any reply comes back
    for n in range(11, 14):
        site.propose("a", f"c{n}", 1, kv.put("k", n))
    in_flight = {e.slot for s, d, msg in site.inflight if isinstance(msg, m.Accept) and d == "b" for e in msg.entries}
    assert len(in_flight) == 3
    site.deliver_all()
    site.advance(site.options.lazy_delay)  # c, the lazy follower (thrifty.py), hears of them in a push
    site.deliver_all()
    assert site.data("b")["k"] == 13 and site.data("c")["k"] == 13


def test_a_promise_is_never_broken_not_even_across_a_restart() -> None:
    s = Scripted()
    s.elect("a")
    s.advance(s.options.election_min * 1.01)  # a's heartbeats are lost: b no longer sticks to a
    s.drop()
    s["c"].tick(s.now + 10)  # c times out; b says yes to its pre-vote; c asks for (2, c); b promises it
    s.collect("c")
    s.drop(src="c", dst="a")
    s.deliver(src="c", dst="b", kind=m.PreVote)
    s.deliver(src="b", dst="c", kind=m.PreVoteReply)
    s.drop(src="c", dst="a")
    s.deliver(src="c", dst="b", kind=m.Prepare)
    assert s.disks["b"].synced.promised == Ballot(2, "c")
    s.crash("b")
    s.start("b")
    s.propose("a", "c1", 1, kv.put("x", 1))  # the old leader's Accept under (1, a)
    s.deliver(src="a", dst="b", kind=m.Accept)
    assert s.kinds(src="b", dst="a") == ["Nack"]
    assert s.disks["b"].synced.accepted == {}
    s.deliver(src="b", dst="a")
    assert s.kinds(src="a") == ["PreVote", "PreVote"]  # the old leader tries again: a pre-vote first
    s.deliver_all()
    assert s["a"].role == LEADER and s["a"].ballot > Ballot(2, "c")  # ... then higher


def test_a_higher_ballot_wins_and_the_old_leader_steps_down(site: Scripted) -> None:
    site.advance(site.options.election_min * 1.01)  # the leader is silent: no one sticks to it any more
    site.drop()
    site.elect("c")
    assert site["c"].role == LEADER and site["c"].ballot == Ballot(2, "c")
    assert site["a"].role != LEADER and site["a"].leader == "c"


def test_a_prepare_is_ignored_while_the_leader_is_alive(site: Scripted) -> None:
    site["c"].tick(site.now + 10)  # c was cut off: its pre-vote is refused by the leader and by b
    site.collect("c")
    site.deliver(src="c", kind=m.PreVote)
    answers = [msg for _, d, msg in site.inflight if d == "c" and isinstance(msg, m.PreVoteReply)]
    assert len(answers) == 2 and not any(r.granted for r in answers)
    site["b"].step(m.Prepare(SITE, "c", Ballot(9, "c"), 0), site.now)  # a Prepare all the same: ignored
    site.collect("b")
    assert "Promise" not in site.kinds(src="b")
    assert site["b"].leader == "a" and site["b"].acceptor.promised == Ballot(1, "a")


def test_a_value_accepted_by_a_majority_survives_a_leader_change(site: Scripted) -> None:
    site.propose("a", "c1", 1, kv.put("x", "kept"))
    site.deliver(src="a", dst="b", kind=m.Accept)  # a and b accepted: chosen, but nobody learns it
    site.drop()
    site.crash("a")
    site.elect("c")  # c did not accept it: it learns it from b's promise and proposes it again
    assert site["c"].role == LEADER
    assert site.data("c") == {"x": "kept"} and site.data("b") == {"x": "kept"}


def test_the_leader_stamps_each_batch_with_its_office_and_its_clock(site: Scripted) -> None:
    site.now += 12.3456
    site["a"].propose("c1", 1, kv.put("k", 1), site.now)
    site.collect("a")
    values = [e.value for s, d, msg in site.inflight if isinstance(msg, m.Accept) and d == "b" for e in msg.entries]
    stamp, commands = decode_batch(values[0])
    assert stamp == Stamp(1, "a", int(site.now * 1000)) and commands == [Command("c1", 1, kv.put("k", 1))]


def test_a_new_leader_fills_gaps_with_noops(site: Scripted) -> None:
    for req in (1, 2, 3):
        site.propose("a", "c1", req, kv.put("x", req))
    slot_of = {json.loads(decode_batch(e.value)[1][0].command)["value"]: e.slot
               for s, d, msg in site.inflight if isinstance(msg, m.Accept) and d == "b" for e in msg.entries}
    accept_1_3 = [(s, d, msg) for s, d, msg in site.inflight if d == "b" and msg.entries[0].slot != slot_of[2]]
    site.inflight = accept_1_3  # only the Accepts of slots 1 and 3 reach b; slot 2 reaches no one
    site.deliver()
    site.drop()
    site.crash("a")
    site.elect("b")
    applied = [(a.slot, json.loads(a.command)["value"]) for a in site.applied["b"]]
    assert applied == [(slot_of[1], 1), (slot_of[3], 3)]
    assert site["b"].learner.applied == slot_of[3] + 1  # slot 2 was filled with a no-op


def test_a_retried_request_is_applied_once_and_gets_the_first_answer(site: Scripted) -> None:
    site.propose("a", "c1", 1, kv.cas("k", None, "first"))
    site.deliver_all()
    site.propose("a", "c2", 1, kv.put("k", "second"))
    site.deliver_all()
    assert results(site, "c1") == {1: True}
    site.replies.clear()
    site.request("b", "c1", 1, kv.cas("k", None, "first"))  # the retry, via a follower this time
    site.deliver_all()
    assert results(site, "c1") == {1: True}  # the first answer, although the cas would fail now
    assert site.data("a")["k"] == "second"


def test_a_request_delivered_twice_in_the_log_is_applied_once_even_after_a_leader_change(site: Scripted) -> None:
    twice = encode_batch(Stamp(1, "a", 0), [Command("c1", 1, kv.put("n", 1)), Command("c1", 1, kv.put("n", 1))])
    leader = site["a"]
    assert leader.lead is not None
    entries = leader.lead.propose([m.Entry(leader.lead.next_slot, twice)], site.now)
    leader._send_accepts(entries, to=leader.members)
    site.collect("a")
    site.deliver_all()
    fresh = [a.fresh for a in site.applied["b"] if a.client == "c1"]
    assert fresh == [True, False]
    site.advance(site.options.election_min * 1.01)
    site.drop()
    site.elect("c")  # the de-duplication table is replicated state: the new leader has it
    site.request("c", "c1", 1, kv.put("n", 1))
    site.deliver_all()
    assert [a.fresh for a in site.applied["c"] if a.client == "c1"] == [True, False]


def test_a_lagging_replica_catches_up_from_its_peers(site: Scripted) -> None:
    for req in range(1, 6):
        site.propose("a", "c1", req, kv.put("x", req))
        site.deliver_all(cut=frozenset({"c"}))
    assert site["c"].learner.applied < site["a"].learner.applied
    site.advance(site.options.heartbeat_interval)  # a heartbeat tells c how far the log goes
    site.deliver_all()
    assert site.data("c") == site.data("a") == {"x": 5}


def test_a_replica_too_far_behind_installs_a_snapshot() -> None:
    s = Scripted(options=Options(snapshot_every=4, catchup_batch=2))
    s.elect("a")
    for req in range(1, 11):
        s.propose("a", "c1", req, kv.put(f"k{req}", req))
        s.deliver_all(cut=frozenset({"c"}))
    assert s.disks["a"].synced.snapshot_slot >= 8  # compacted: the log below is gone
    assert all(slot >= 8 for slot in s.disks["a"].synced.accepted)
    s.advance(s.options.heartbeat_interval)
    s.deliver_all()
    assert s.data("c") == s.data("a") and len(s.data("c")) == 10
    assert s.disks["c"].synced.snapshot_slot >= 8  # installed and made durable


def test_a_request_sent_to_a_follower_is_forwarded_to_the_leader(site: Scripted) -> None:
    site.request("b", "c1", 1, kv.put("x", "via b"))
    assert site.kinds(src="b") == ["Forward"]
    site.deliver_all()
    assert [(r.sender, json.loads(r.result)) for r in site.replies] == [("a", "ok")]


def test_reads_go_through_the_log(site: Scripted) -> None:
    site.propose("a", "c1", 1, kv.put("x", 1))
    site.deliver_all()
    site.propose("a", "c1", 2, kv.get("x"))
    assert "Accept" in site.kinds(src="a")  # a read takes a slot like any command
    site.deliver_all()
    assert results(site, "c1") == {1: "ok", 2: 1}


def test_a_restarted_replica_keeps_what_it_accepted_and_rejoins(site: Scripted) -> None:
    site.propose("a", "c1", 1, kv.put("x", 1))
    site.deliver_all()
    site.crash("b")
    r = site.start("b")
    assert r.acceptor.promised == Ballot(1, "a") and len(r.acceptor.accepted) == 1
    site.propose("a", "c1", 2, kv.put("x", 2))
    site.deliver_all()
    site.advance(site.options.heartbeat_interval)
    site.deliver_all()
    assert site.data("b") == {"x": 2}


def test_messages_of_another_site_or_an_unknown_sender_are_dropped(site: Scripted) -> None:
    r = site["b"]
    r.step(m.Prepare("other-site", "a", Ballot(9, "a"), 0), site.now)
    r.step(m.Prepare(SITE, "mallory", Ballot(9, "mallory"), 0), site.now)
    assert r.dropped == 2 and r.acceptor.promised == Ballot(1, "a")
    assert r.ready().messages == []


def test_a_replica_must_be_a_member() -> None:
    with pytest.raises(ValueError, match="not one of the members"):
        Replica("z", ["a", "b", "c"], SITE, kv.KVMachine())


def test_five_replicas_need_three_for_a_quorum() -> None:
    s = Scripted(ids=("a", "b", "c", "d", "e"))
    s.elect("a")
    s.propose("a", "c1", 1, kv.put("x", 1))
    s.deliver_all(cut=frozenset({"d", "e"}))
    assert results(s, "c1") == {1: "ok"}
    s.propose("a", "c1", 2, kv.put("x", 2))
    s.deliver_all(cut=frozenset({"c", "d", "e"}))  # only a and b: no majority, no answer
    assert 2 not in results(s, "c1")


def test_the_ready_holds_the_durable_writes_that_its_messages_depend_on(site: Scripted) -> None:
    leader = site["a"]
    leader.propose("c1", 1, kv.put("x", 1), site.now)
    ready = leader.ready()
    assert [a.slot for a in ready.accepted] == [e.slot for _, msg in ready.messages for e in msg.entries][:1]
    follower = site["b"]
    follower.step(ready.messages[0][1], site.now)
    fr = follower.ready()
    assert fr.must_persist() and fr.accepted[0].ballot == Ballot(1, "a")
    assert [type(msg).__name__ for _, msg in fr.messages] == ["AcceptReply"]
    assert fr.deadline is not None and fr.deadline > site.now


def test_catch_up_goes_to_the_peer_that_last_said_it_knows_the_most(site: Scripted) -> None:
    for req in range(1, 6):
        site.propose("a", "c1", req, kv.put("x", req))
        site.deliver_all(cut=frozenset({"c"}))
    site.crash("b")
    c = site["c"]
    c.step(m.CatchUpReply(SITE, "b", (), 5), site.now)  # b said it knew 5 slots ... then restarted knowing none
    c.step(m.CatchUpReply(SITE, "b", (), 0), site.now)
    site.collect("c")
    site.drop()
    site.advance(site.options.heartbeat_interval)  # a's heartbeat says 5: c must ask a, not b
    site.deliver_all()
    assert site.data("c") == {"x": 5}


def test_the_election_back_off_comes_from_the_injected_random_source() -> None:
    import random

    def first_election(seed: int) -> float:
        r = Replica("a", ["a", "b", "c"], SITE, kv.KVMachine(), rng=random.Random(seed))
        return r.ready().deadline or 0.0

    opts = Options()
    assert first_election(1) == first_election(1)
    assert first_election(1) != first_election(2)
    assert all(opts.election_min <= first_election(s) < opts.election_max for s in range(20))


@pytest.mark.parametrize("bad", [dict(heartbeat_interval=0.2), dict(election_min=0.4), dict(max_batch=0)])
def test_impossible_timeouts_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Options(**bad)


def test_a_retry_through_a_lagging_follower_gets_the_first_answer_from_the_leader(site: Scripted) -> None:
    site.propose("a", "c1", 1, kv.cas("k", None, "first"))
    site.deliver_all(cut=frozenset({"c"}))  # c never hears of it
    site.replies.clear()  # ... and the answer to the client is lost
    site.request("c", "c1", 1, kv.cas("k", None, "first"))
    assert site.kinds(src="c") == ["Forward"]
    site.deliver(src="c", kind=m.Forward)
    assert [(r.sender, json.loads(r.result)) for r in site.replies] == [("a", True)]
    assert "Accept" not in site.kinds(src="a")  # answered from the de-duplication table, not the log


def test_a_hint_that_the_leader_is_gone_brings_the_election_forward(site: Scripted) -> None:
    b, c = site["b"], site["c"]
    assert not b.leader_gone("c", 1, site.now) and not site["a"].leader_gone("a", 1, site.now)
    assert b.leader_gone("a", 1, site.now) and c.leader_gone("a", 1, site.now)  # every follower gets the Will
    assert not b.leader_gone("a", 1, site.now)  # the same Will again (a replay) is taken once
    assert b.ready().deadline <= site.now + site.options.heartbeat_interval
    site.crash("a")
    site.advance(site.options.heartbeat_interval)  # well before any election timeout
    site.deliver_all()
    assert {b.role, c.role} == {LEADER, "follower"}


def test_a_replica_restarted_from_its_snapshot_keeps_the_state_and_the_first_answers() -> None:
    s = Scripted(options=Options(snapshot_every=4))
    s.elect("a")
    for n in range(1, 7):
        s.propose("a", f"c{n}", 1, kv.cas("k", None if n == 1 else n - 1, n))
        s.deliver_all()
    assert s.disks["b"].synced.snapshot_slot >= 4
    s.crash("b")
    b = s.start("b")
    assert b.learner.applied == s.disks["b"].synced.snapshot_slot and b.learner.machine.machine.data["k"] >= 4
    s.replies.clear()
    s.request("b", "c1", 1, kv.cas("k", None, 1))  # c1's retry, long after: answered from the restored table
    assert [(r.sender, json.loads(r.result)) for r in s.replies] == [("b", True)]
    s.advance(s.options.heartbeat_interval)
    s.deliver_all()
    assert s.data("b") == s.data("a") == {"k": 6}


def test_two_candidates_at_once_end_with_one_leader() -> None:
    s = Scripted()
    for node in ("b", "c"):  # both time out at the same moment
        s[node].tick(s.now + s.options.election_max)
        s.collect(node)
    for _ in range(20):
        s.deliver_all()
        s.advance(s.options.heartbeat_interval)
    leaders = [n for n in s.ids if s[n].role == LEADER]
    assert len(leaders) == 1 and all(s[n].leader == leaders[0] for n in s.ids)
    s.propose(leaders[0], "c1", 1, kv.put("x", 1))
    s.deliver_all()
    s.advance(s.options.lazy_delay)  # the lazy follower's push
    s.deliver_all()
    assert s.data("a") == s.data("b") == s.data("c") == {"x": 1}


def test_a_new_leader_behind_a_snapshot_catches_up_from_a_live_peer_when_the_one_it_asked_is_gone() -> None:
    """Simulator seed 263: the peer that said it knows the most went silent for good (crashed, kept
    down), so it never sent the hint that would replace its last one; a new leader whose promises
    start above its commit point must not ask it alone for ever."""
    s = Scripted(options=Options(snapshot_every=4, catchup_batch=2, lazy_delay=0))  # Accepts to all
    s.elect("c")
    for req in range(1, 11):
        s.propose("c", "c1", req, kv.put(f"k{req}", req))
        s.deliver_all(cut=frozenset({"a"}))
    assert s.disks["b"].synced.snapshot_slot >= 8  # slots below are only in snapshots
    s.advance(s.options.heartbeat_interval)
    s.deliver(src="c", dst="a", kind=m.Heartbeat)  # a hears c knows 10 slots: asks c ...
    assert s.kinds(src="a", dst="c").count("CatchUpRequest") == 1 and s["a"].learner.chosen_upto == 0
    s.crash("c")  # ... and c is gone before it answers
    s.elect("a")  # b's promise: its log starts at 8, chosen up to 10 (as much as c said: a tie)
    a = s["a"]
    assert a.role == LEADER
    for _ in range(5):  # a few heartbeat intervals, every message delivered
        s.advance(s.options.heartbeat_interval)
        s.deliver_all()
    assert a.learner.chosen_upto >= 10 and s.data("a") == s.data("b")
    assert s.disks["a"].synced.snapshot_slot >= 8  # from b's snapshot: b's log starts above a's commit point
    s.propose("a", "c2", 1, kv.put("after", 1))
    s.deliver_all()
    assert results(s, "c2") == {1: "ok"}
