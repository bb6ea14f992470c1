"""The acceptor's rules: promise only upward, accept only at or above the promise.

Everything it changes is gathered as a pending write; the replica hands it to the adapter,
which makes it durable before any message that depends on it leaves.
"""

from __future__ import annotations

from collections.abc import Iterable

from firmware.paxos.core.types import ZERO_BALLOT, Accepted, Ballot, DurableState


class Acceptor:
    def __init__(self, durable: DurableState) -> None:
        self.promised: Ballot = durable.promised
        self.log_start = durable.snapshot_slot
        self.accepted: dict[int, Accepted] = {s: a for s, a in durable.accepted.items() if s >= self.log_start}
        self._dirty_promise = False
        self._dirty: dict[int, Accepted] = {}

    def allows(self, ballot: Ballot) -> bool:
        """The promise check: a ballot below the promise is refused (the simulator's bug switch overrides it)."""
        return ballot >= self.promised

    def promise(self, ballot: Ballot) -> bool:
        """Promise `ballot` if allowed; True when it is (a repeated promise is allowed, not re-written)."""
        if not self.allows(ballot):
            return False
        if ballot > self.promised:
            self.promised = ballot
            self._dirty_promise = True
        return True

    def accept(self, ballot: Ballot, entries: Iterable[tuple[int, bytes]]) -> list[int] | None:
        """Accept entries under `ballot` (promising it too); the slots accepted, or None if refused."""
        if not self.promise(ballot):
            return None
        slots = []
        for slot, value in entries:
            if slot < self.log_start:
                continue  # folded into our snapshot: chosen long ago
            old = self.accepted.get(slot)
            if old is None or old.ballot != ballot or old.value != value:
                self.accepted[slot] = self._dirty[slot] = Accepted(slot, ballot, value)
            slots.append(slot)
        return slots

    def entries_from(self, slot: int) -> tuple[Accepted, ...]:
        return tuple(a for s, a in sorted(self.accepted.items()) if s >= slot)

    def compact(self, slot: int) -> None:
        """Forget accepted entries below `slot`: they are chosen and in a snapshot."""
        if slot <= self.log_start:
            return
        self.log_start = slot
        for s in [s for s in self.accepted if s < slot]:
            del self.accepted[s]
        for s in [s for s in self._dirty if s < slot]:
            del self._dirty[s]

    def take_writes(self) -> tuple[Ballot | None, list[Accepted]]:
        """The promise (None if unchanged) and entries to persist since the last call."""
        promised = self.promised if self._dirty_promise else None
        entries = sorted(self._dirty.values(), key=lambda a: a.slot)
        self._dirty_promise, self._dirty = False, {}
        return promised, entries


__all__ = ["Acceptor", "ZERO_BALLOT"]
