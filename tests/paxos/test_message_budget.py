"""What the core builds from many values fits one message, at the real sizes (message by message).

Slots full of the largest commands (64 x 8 KiB: ~530 kB a slot): two of them are more than one
message (1 MiB) holds. Every message in flight is put through the real codec, which refuses
what could not travel (the broker would drop it), so a test fails where a message could not.
"""

from __future__ import annotations

import json

import pytest

from firmware.paxos.core import kv
from firmware.paxos.core import messages as m
from firmware.paxos.core.leadership import CANDIDATE, LEADER
from firmware.paxos.core.options import Options
from firmware.paxos.core.sizes import MAX_SLOT_VALUE, batch_bytes
from firmware.paxos.core.types import Ballot
from firmware.paxos.sim.scripted import SITE, Scripted
from firmware.paxos.wire.codec import MAX_COMMAND, MAX_MESSAGE, Codec

CODEC = Codec(SITE, bytes(32))
PER_SLOT = Options().max_batch


def big(n: int) -> bytes:
    """A put of a value that makes the command as big as a command may be."""
    head = len(kv.put(f"k{n}", ""))
    return kv.put(f"k{n}", "v" * (MAX_COMMAND - head))


def on_the_wire(s: Scripted) -> None:
    """Every message in flight encodes to a frame that can travel (CodecError "too_big" otherwise)."""
    for _, _, msg in s.inflight:
        CODEC.encode(msg)


def deliver_all(s: Scripted, cut: frozenset[str] = frozenset()) -> None:
    for _ in range(100):
        s.inflight = [(a, b, msg) for a, b, msg in s.inflight if a not in cut and b not in cut]
        if not s.inflight:
            return
        on_the_wire(s)
        s.deliver()
    raise AssertionError("the network never went quiet")


def fill(s: Scripted, leader: str, slots: int, first: int = 0) -> None:
    """Slots of PER_SLOT of the largest commands each, given to `leader` at once."""
    for n in range(first, first + slots * PER_SLOT):
        s[leader].propose(f"c{n}", 1, big(n), s.now)
    s.collect(leader)


def test_a_full_slot_is_the_largest_value_and_fits_a_message() -> None:
    assert len(big(0)) == MAX_COMMAND
    assert batch_bytes(PER_SLOT) <= MAX_SLOT_VALUE < MAX_MESSAGE
    with pytest.raises(ValueError, match="more than one message carries"):
        Options(max_batch=200)  # a leader could propose a slot no message could carry


def test_accepts_of_a_full_pipeline_are_cut_to_fit() -> None:
    s = Scripted()
    s.elect("a")
    fill(s, "a", Options().max_inflight)  # eight full slots, proposed together
    accepts = [msg for _, d, msg in s.inflight if d == "b" and isinstance(msg, m.Accept)]
    assert sum(len(a.entries) for a in accepts) == 8 and len(accepts) >= 4  # ~4.2 MB: several messages
    deliver_all(s)
    assert len(s.data("b")) == 8 * PER_SLOT


def test_a_catch_up_reply_holds_what_fits_and_the_rest_follows() -> None:
    s = Scripted()
    s.elect("a")
    for i in range(3):
        fill(s, "a", 1, first=i * PER_SLOT)
        deliver_all(s, cut=frozenset({"c"}))
    assert s["c"].learner.chosen_upto < s["a"].learner.chosen_upto
    s.advance(s.options.heartbeat_interval)
    deliver_all(s)
    assert s.data("c") == s.data("a") and len(s.data("c")) == 3 * PER_SLOT


def test_a_promise_too_big_for_a_message_comes_in_parts_and_counts_only_when_whole() -> None:
    s = Scripted()
    s.elect("a")
    fill(s, "a", 3)
    s.deliver(src="a", dst="b", kind=m.Accept)  # a and b accept three full slots: chosen, nobody knows it
    s.drop()
    s.crash("a")
    s.advance(s.options.election_min * 1.01)  # b no longer sticks to a
    s.drop()
    s["c"].tick(s.now + 10)  # c runs: pre-vote, then phase 1 (its own promise is empty)
    s.collect("c")
    s.deliver(src="c", dst="b", kind=m.PreVote)
    s.deliver(src="b", dst="c", kind=m.PreVoteReply)
    s.deliver(src="c", dst="b", kind=m.Prepare)
    on_the_wire(s)  # b's promise holds ~1.6 MB of accepted values: not in one message
    (part,) = [msg for _, d, msg in s.inflight if isinstance(msg, m.Promise)]
    assert part.more and len(part.accepted) < 3
    s.deliver(src="b", dst="c", kind=m.Promise)
    c = s["c"]
    assert c.role == CANDIDATE  # its own promise and b's first part are two of three: not a quorum of whole ones
    assert [msg.from_slot for _, d, msg in s.inflight if d == "b" and isinstance(msg, m.Prepare)] == \
        [part.accepted[-1].slot + 1]  # it asks for the rest
    deliver_all(s)
    assert c.role == LEADER and c.ballot == Ballot(2, "c")
    assert s.data("c") == s.data("b") and len(s.data("c")) == 3 * PER_SLOT  # every value b accepted is kept


def test_the_core_refuses_a_command_or_a_value_too_big_for_a_slot_to_fit_a_message() -> None:
    s = Scripted()
    s.elect("a")
    s.propose("a", "c1", 1, b"x" * (MAX_COMMAND + 1))  # as a Forward or a direct propose could bring it
    s.propose("a", "c" * 65, 1, kv.put("k", 1))  # a client id longer than any the codec lets in
    assert s["a"].dropped == 2 and not s.inflight and not s["a"].queue
    s.propose("a", "c1", 1, big(1))  # the largest that may come: taken
    assert s.kinds(src="a")
    s.drop()
    b = s["b"]
    b.step(m.Accept(SITE, "a", Ballot(1, "a"), (m.Entry(5, b"x" * (MAX_SLOT_VALUE + 1)),), 0), s.now)
    s.collect("b")
    assert 5 not in b.acceptor.accepted and s.disks["b"].synced.accepted.get(5) is None
    assert [json.loads(r.result) for r in s.replies] == []
