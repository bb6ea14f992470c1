"""Snapshots in chunks, message by message (etcd raft style): a replica too far behind pulls its peer's
snapshot one chunk at a time and installs it only whole and intact."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import pytest

from firmware.paxos.core import kv
from firmware.paxos.core import messages as m
from firmware.paxos.core.options import Options
from firmware.paxos.sim.scripted import Scripted

CHUNK = 16  # bytes: the state below is ~120 bytes, so ~8 chunks
Tamper = Callable[[m.Message], m.Message | None]


def lagging(**opts: float) -> Scripted:
    """a and b commit ten slots while c is cut off, and fold them into snapshots: c must take one."""
    s = Scripted(options=Options(snapshot_every=4, catchup_batch=2, snapshot_chunk=CHUNK, **opts))
    s.elect("a")
    for req in range(1, 11):
        s.propose("a", "c1", req, kv.put(f"k{req}", req))
        s.deliver_all(cut=frozenset({"c"}))
    assert s.disks["a"].synced.snapshot_slot >= 8 and s.disks["b"].synced.snapshot_slot >= 8
    s.advance(s.options.heartbeat_interval)  # the leader's heartbeat tells c how far the log goes
    return s


def run(s: Scripted, tamper: Tamper = lambda msg: msg, rounds: int = 200) -> list[m.Snapshot]:
    """Deliver until nothing is in flight, each chunk to c through `tamper` (None: lost); the chunks c got."""
    got: list[m.Snapshot] = []
    for _ in range(rounds):
        if not s.inflight:
            return got
        now, s.inflight = s.inflight, []
        for src, dst, msg in now:
            if isinstance(msg, m.Snapshot) and dst == "c":
                msg = tamper(msg)
                if msg is None:
                    continue
                got.append(msg)
            s.inflight.append((src, dst, msg))
        s.deliver()
    raise AssertionError("the network never went quiet")


def installed(s: Scripted) -> bool:
    return s.data("c") == s.data("a") and len(s.data("c")) == 10 and s.disks["c"].synced.snapshot_slot >= 8


def test_a_snapshot_travels_in_chunks_of_at_most_snapshot_chunk_and_is_installed_whole() -> None:
    s = lagging()
    chunks = run(s)
    assert installed(s)
    assert len(chunks) > 3 and all(len(c.data) <= CHUNK for c in chunks)
    assert [c.offset for c in chunks] == list(range(0, chunks[0].total, CHUNK))  # pulled one after the other
    assert s["c"].incoming is None


def test_a_lost_chunk_is_asked_again_from_where_the_transfer_is() -> None:
    s = lagging()
    lost: list[m.Snapshot] = []

    def lose_the_third(msg: m.Message) -> m.Message | None:
        if isinstance(msg, m.Snapshot) and msg.offset == 2 * CHUNK and not lost:
            lost.append(msg)
            return None
        return msg
    run(s, lose_the_third)
    assert lost and not installed(s)
    assert s["c"].incoming is not None and s["c"].incoming.have == 2 * CHUNK  # waiting for the lost one
    s.advance(s.options.heartbeat_interval)  # c asks for it again
    assert [(type(msg).__name__, msg.offset) for _, d, msg in s.inflight if isinstance(msg, m.SnapshotRequest)] == \
        [("SnapshotRequest", 2 * CHUNK)]
    run(s)
    assert installed(s)


def test_a_damaged_chunk_fails_the_digest_and_the_snapshot_is_not_installed(caplog: pytest.LogCaptureFixture) -> None:
    s = lagging()
    damaged: list[m.Snapshot] = []

    def flip_the_second(msg: m.Message) -> m.Message | None:
        if isinstance(msg, m.Snapshot) and msg.offset == CHUNK and not damaged:
            damaged.append(msg)
            return replace(msg, data=bytes(b ^ 1 for b in msg.data))  # same place, same size, other bytes
        return msg
    with caplog.at_level(logging.WARNING, logger="evnet.paxos"):
        got = run(s, flip_the_second)
    assert damaged and got[-1].offset + len(got[-1].data) == got[-1].total  # every byte came ...
    assert not installed(s) and s.disks["c"].synced.snapshot_slot == 0  # ... and none of it was taken
    assert s["c"].dropped == 1 and "paxos.snapshot_corrupt" in caplog.text
    s.advance(s.options.heartbeat_interval)  # c asks for the snapshot again, from the start
    run(s)
    assert installed(s)


def test_a_chunk_of_another_snapshot_is_never_mixed_in() -> None:
    s = lagging()
    foreign: list[m.Snapshot] = []

    def mix_in_another(msg: m.Message) -> m.Message | None:
        if isinstance(msg, m.Snapshot) and msg.offset == CHUNK and not foreign:
            # the right offset and size, from another snapshot (an older one of the same sender, say)
            foreign.append(replace(msg, slot=msg.slot - 4, digest=bytes(32), data=b"{" * len(msg.data)))
            return foreign[0]
        return msg
    run(s, mix_in_another)
    assert foreign and not installed(s)
    assert s["c"].incoming is not None and s["c"].incoming.have == CHUNK  # not taken: still waiting at that offset
    s.advance(s.options.heartbeat_interval)
    run(s)
    assert installed(s)


def test_a_stalled_transfer_is_dropped_and_taken_again_from_another_peer(caplog: pytest.LogCaptureFixture) -> None:
    s = lagging(snapshot_stall=0.2)
    first = run(s, lambda msg: msg if msg.offset < 2 * CHUNK else None)  # the sender goes quiet after two chunks
    sender = first[0].sender
    s.crash(sender)
    with caplog.at_level(logging.WARNING, logger="evnet.paxos"):
        for _ in range(6):  # c asks the dead sender every heartbeat interval, then gives it up
            s.advance(s.options.heartbeat_interval)
            s.deliver_all()
    assert "paxos.snapshot_stalled" in caplog.text
    other = "b" if sender == "a" else "a"
    assert installed_from(s, other)


def installed_from(s: Scripted, peer: str) -> bool:
    return s.data("c") == s.data(peer) and len(s.data("c")) == 10 and s.disks["c"].synced.snapshot_slot >= 8


def test_a_snapshot_bigger_than_max_snapshot_is_refused_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    s = lagging(max_snapshot=40)
    with caplog.at_level(logging.WARNING, logger="evnet.paxos"):
        chunks = run(s)
    assert chunks and chunks[0].total > 40
    assert not installed(s) and s["c"].incoming is None and s["c"].dropped >= 1
    assert "paxos.snapshot_refused" in caplog.text


def test_the_sender_serves_a_transfer_to_its_end_while_it_takes_newer_snapshots() -> None:
    s = lagging()
    got = run(s, lambda msg: msg if msg.offset < 3 * CHUNK else None)  # c holds three chunks of the snapshot
    sender, slot = got[0].sender, got[0].slot
    for req in range(11, 21):  # meanwhile a and b commit more and snapshot again
        s.propose("a", "c1", req, kv.put(f"k{req}", req))
        s.deliver_all(cut=frozenset({"c"}))
    assert s[sender].learner.log_start > slot
    s.advance(s.options.heartbeat_interval)
    rest = run(s)
    assert rest[0].slot == slot and rest[0].offset == 3 * CHUNK  # the same snapshot, from where it was
    assert s.data("c") == s.data("a") and len(s.data("c")) == 20  # and then the log after it
