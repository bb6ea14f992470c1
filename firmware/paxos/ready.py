"""What a replica's core asks its adapter to do, in order (etcd raft's `Ready`).

The adapter drains `Replica.ready()` and, strictly in this order:
1. persists: `Storage.save(promised, accepted)`, then `Storage.save_snapshot(*snapshot)` if set —
   both return only once fsynced, because the messages below promise what is on disk;
2. sends `messages` (to a replica id);
3. takes note of `applied` (the core already applied them to its state machine: the
   de-duplication table lives in the replicated state, and replies depend on results);
4. delivers `replies` to the clients;
5. calls `Replica.tick(now)` at `deadline` (or earlier on any input).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from firmware.paxos.messages import ClientReply, Message
from firmware.paxos.types import Accepted, Ballot, Storage


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

    def must_persist(self) -> bool:
        return self.promised is not None or bool(self.accepted) or self.snapshot is not None

    def persist(self, storage: Storage) -> None:
        """Step 1, for any `Storage`: the promise and accepted entries, then the snapshot (it may drop entries)."""
        if self.promised is not None or self.accepted:
            storage.save(self.promised, self.accepted)
        if self.snapshot is not None:
            storage.save_snapshot(*self.snapshot)

    def is_empty(self) -> bool:
        return not (self.must_persist() or self.messages or self.applied or self.replies)
