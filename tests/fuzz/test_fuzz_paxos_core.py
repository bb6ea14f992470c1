"""Fuzz the Paxos core's inputs from outside: the Last Will's decoder, the stamps and epochs the
liveness messages and Wills carry (any value a u64 field can hold), and snapshot chunks, snapshot
requests and promise parts of any shape."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.paxos.core import kv
from firmware.paxos.core import messages as m
from firmware.paxos.core.options import Options
from firmware.paxos.core.replica import Replica
from firmware.paxos.core.types import Accepted, Ballot
from firmware.paxos.sim.scripted import SITE, Scripted
from firmware.paxos.wire.codec import Codec, CodecError

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


SIZE = st.one_of(st.integers(0, 300), st.integers(0, 2**63 - 1))
DIGESTS = st.one_of(st.binary(max_size=40), st.just(bytes(32)))
PEERS = st.sampled_from(["a", "b"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(
    st.builds(m.Snapshot, st.just(SITE), PEERS, SIZE, SIZE, SIZE, DIGESTS, st.binary(max_size=40)),
    st.builds(lambda peer, slot, digest, data: m.Snapshot(SITE, peer, slot, len(data), 0, digest, data),  # all of one
              PEERS, SIZE, DIGESTS, st.binary(min_size=1, max_size=40)),
    st.builds(m.SnapshotRequest, st.just(SITE), st.just("c"), SIZE, SIZE, DIGESTS),
    st.builds(m.Promise, st.just(SITE), PEERS, st.builds(Ballot, st.integers(0, 3), NAMES),
              st.lists(st.builds(Accepted, SIZE, st.builds(Ballot, st.integers(0, 3), NAMES), st.binary(max_size=20)),
                       max_size=3).map(tuple), SIZE, SIZE, U64, U64, SIZE, st.integers(0, 2)),
), max_size=10))
def test_snapshot_chunks_requests_and_promise_parts_of_any_shape_never_break_a_replica(inputs: list) -> None:
    """Whatever chunks, pulls and promise parts a key holder with a bug sends, a replica that needs a snapshot
    installs only the true one, and does in the end."""
    s = Scripted(options=Options(snapshot_every=4, catchup_batch=2, snapshot_chunk=16, snapshot_stall=0.2))
    s.elect("a")
    for req in range(1, 9):
        s.propose("a", "c1", req, kv.put(f"k{req}", req))
        s.deliver_all(cut=frozenset({"c"}))
    s.advance(s.options.heartbeat_interval)
    for x in inputs:
        to = "a" if isinstance(x, m.SnapshotRequest) else "c"
        s[to].step(x, s.now)
        s.collect(to)
        s.deliver()
    for _ in range(20):  # a transfer the junk started stalls and is dropped; the true one follows
        s.advance(0.05)
        s.deliver_all()
    assert s.data("c") == s.data("a") and len(s.data("c")) == 8
