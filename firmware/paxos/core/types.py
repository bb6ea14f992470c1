"""The vocabulary shared by the Paxos core, its durable storage and its transport.

A ballot orders leaderships: `(round, node)`, compared round first, then node id,
so two replicas never share one. A slot's value is opaque bytes to the core (the
encoded batch of client commands); the state machine above decides what they mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


class Ballot(NamedTuple):
    round: int
    node: str


ZERO_BALLOT = Ballot(0, "")


@dataclass(frozen=True)
class Accepted:
    """What an acceptor accepted in one slot: durable before its Accepted reply leaves."""

    slot: int
    ballot: Ballot
    value: bytes


@dataclass
class DurableState:
    """What a replica finds on disk after a restart (a kill -9 included)."""

    promised: Ballot = ZERO_BALLOT
    accepted: dict[int, Accepted] = field(default_factory=dict)
    snapshot_slot: int = 0  # slots below this are folded into `snapshot`
    snapshot: bytes | None = None


class Storage(Protocol):
    """Durable acceptor state. Every method returns only once its data is fsynced."""

    def load(self) -> DurableState: ...

    def save(self, promised: Ballot | None, accepted: Sequence[Accepted]) -> None:
        """Record a new promise (None: unchanged) and accepted entries (a later entry replaces a slot's earlier one)."""

    def save_snapshot(self, slot: int, blob: bytes) -> None:
        """Record the state machine up to (not including) `slot`, and drop accepted entries below it."""

    def close(self) -> None: ...
