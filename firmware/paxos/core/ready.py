"""What a replica's core asks its adapter to do, in order (etcd raft's `Ready`).

The adapter drains `Replica.ready()` and, strictly in this order:
1. persists: `Storage.save(promised, accepted)`, then `Storage.save_snapshot(*snapshot)` if set —
   both return only once fsynced, because the messages below promise what is on disk;
2. sends `messages` (to a replica id);
3. takes note of `applied` (the core already applied them to its state machine: the
   de-duplication table lives in the replicated state, and replies depend on results);
4. delivers `replies` to the clients;
5. calls `Replica.tick(now)` at `deadline` (or earlier on any input).

That order is always safe. An adapter may relax it along `partition()`, as etcd raft's async
storage writes do (the simulator models a replica that keeps taking input while its fsync runs;
the runner waits for its fsync, so for it every earlier write is always durable): what promises
nothing may leave at once; Accepts once our latest promise is durable (phase 1
counted it in the quorum: forgotten in a crash, we could accept a lower ballot's value that the
leader did not see); what tells that a value is chosen only once every EARLIER write is durable
(the votes that chose it were counted from those); the votes themselves only once this Ready's
write is durable. What the core `applied` is observable (to act on it) with the chosen ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from firmware.paxos.core import messages as m
from firmware.paxos.core.messages import ClientReply, Message
from firmware.paxos.core.types import Accepted, Ballot, Storage

# Messages that promise nothing about the sender's durable state: they may leave before any fsync.
FREE = (m.Prepare, m.Heartbeat, m.CatchUpRequest, m.Forward, m.PreVote, m.PreVoteReply, m.SnapshotRequest)
# Messages that say a value is chosen (and client replies): after the writes before this Ready.
LEARNED = (m.Commit, m.CatchUpReply, m.Snapshot)


class Partition(NamedTuple):
    free: list[tuple[str, Message]]
    accepts: list[tuple[str, Message]]  # after our latest promise is durable
    learned: list[tuple[str, Message]]  # with `replies`
    votes: list[tuple[str, Message]]  # Promise, AcceptReply, Nack, HeartbeatReply


class Applied(NamedTuple):
    """One command of a chosen slot; `fresh` is False for a duplicate (it got the first answer, unapplied)."""

    slot: int
    client: str
    req: int
    command: bytes
    result: bytes
    fresh: bool


@dataclass
class Ready:
    promised: Ballot | None = None  # a new promise to persist (None: unchanged)
    accepted: list[Accepted] = field(default_factory=list)  # accepted entries to persist
    snapshot: tuple[int, bytes] | None = None  # (slot, blob) to persist with save_snapshot
    messages: list[tuple[str, Message]] = field(default_factory=list)  # (to, message), after persisting
    applied: list[Applied] = field(default_factory=list)  # committed commands applied, in slot order
    replies: list[ClientReply] = field(default_factory=list)  # answers to clients
    deadline: float | None = None  # call tick() at this time (on the clock that gives `now`)
    self_chosen: bool = False  # our own vote in THIS write can choose (one member): learned waits for it too

    def must_persist(self) -> bool:
        return self.promised is not None or bool(self.accepted) or self.snapshot is not None

    def persist(self, storage: Storage) -> None:
        """Step 1, for any `Storage`: the promise and accepted entries, then the snapshot (it may drop entries)."""
        if self.promised is not None or self.accepted:
            storage.save(self.promised, self.accepted)
        if self.snapshot is not None:
            storage.save_snapshot(*self.snapshot)

    def partition(self) -> Partition:
        """`messages` by what they must wait for (see the module's doc)."""
        out = Partition([], [], [], [])
        for item in self.messages:
            msg = item[1]
            if isinstance(msg, FREE):
                out.free.append(item)
            elif isinstance(msg, m.Accept):
                out.accepts.append(item)
            else:
                (out.learned if isinstance(msg, LEARNED) else out.votes).append(item)
        return out

    def is_empty(self) -> bool:
        return not (self.must_persist() or self.messages or self.applied or self.replies)
