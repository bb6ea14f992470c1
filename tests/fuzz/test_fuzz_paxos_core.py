"""Fuzz the Paxos core's inputs from outside: the Last Will's decoder, and the stamps and epochs the
liveness messages and Wills carry (any value a u64 field can hold)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.paxos import messages as m
from firmware.paxos.codec import Codec, CodecError
from firmware.paxos.replica import Replica
from firmware.paxos.sim.scripted import SITE, Scripted
from firmware.paxos.types import Ballot

KEY = bytes(range(32))
U64 = st.integers(0, 2**64 - 1)
NAMES = st.sampled_from(["a", "b", "c", "", "zz"])
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                         max_size=3),
                           max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_gone_raises_only_its_own_error_on_any_bytes(data: bytes) -> None:
    try:
        Codec("s", KEY).decode_gone(data)
    except CodecError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "replica", "event", "epoch", "x"]), JSON_VALUES, max_size=5))
def test_an_authentic_will_of_any_shape_is_a_replica_and_an_epoch_in_range_or_refused(body: dict) -> None:
    codec = Codec("s", KEY)
    signed = codec._sign_json(body)  # signed with the site key: only the field checks stand in the way
    try:
        replica, epoch = codec.decode_gone(signed)
    except CodecError:
        return
    assert isinstance(replica, str) and type(epoch) is int and 0 < epoch < 2**64
    assert json.loads(signed)["event"] == "gone"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.builds(m.Heartbeat, st.just(SITE), NAMES, st.builds(Ballot, U64, NAMES), U64, U64, U64, U64, U64),
    st.builds(m.HeartbeatReply, st.just(SITE), NAMES, st.builds(Ballot, U64, NAMES), U64, U64, U64, U64, U64),
    st.builds(m.PreVote, st.just(SITE), NAMES, st.builds(Ballot, U64, NAMES), U64, U64),
    st.builds(m.PreVoteReply, st.just(SITE), NAMES, st.integers(0, 2**64 - 1), st.builds(Ballot, U64, NAMES), U64, U64),
    st.tuples(NAMES, U64),  # a Last Will: (replica, epoch)
), max_size=12), st.sampled_from(["a", "b"]))
def test_liveness_messages_and_wills_with_any_stamps_never_break_a_replica(inputs: list, target: str) -> None:
    s = Scripted()
    s.elect("a")
    r: Replica = s[target]
    for x in inputs:
        if isinstance(x, tuple):
            r.leader_gone(x[0], x[1], s.now)
        else:
            r.step(x, s.now)
        s.collect(target)
        s.advance(0.01)
        s.deliver_all()
    for _ in range(30):  # and time goes on: ticks, pre-votes, elections, all without an exception
        s.advance(0.01)
        s.deliver_all()
    assert all(x.acceptor.promised >= Ballot(1, "a") for x in s.replicas.values())  # promises only rise
