"""The learner: which slots are chosen, applying them in order, and snapshots of the result.

Chosen values are kept from `log_start` (the last snapshot) up, to serve peers that catch up;
slots below `log_start` exist only inside the snapshot blob.
"""

from __future__ import annotations

from collections.abc import Callable

from firmware.paxos.core.batch import BatchError, decode_batch
from firmware.paxos.core.dedup import Deduplicated
from firmware.paxos.core.messages import Entry
from firmware.paxos.core.ready import Applied
from firmware.paxos.core.sizes import entry_size, value_groups


class Learner:
    def __init__(self, machine: Deduplicated, snapshot_slot: int = 0, snapshot: bytes | None = None) -> None:
        self.machine = machine
        self.chosen: dict[int, bytes] = {}
        self.log_start = snapshot_slot
        self.snapshot = snapshot
        if snapshot is not None:
            machine.restore(snapshot)
        self.chosen_upto = snapshot_slot  # every slot below is chosen and its value known (or snapshotted)
        self.applied = snapshot_slot  # every slot below is applied to the machine
        self.bad_values = 0
        self.on_apply: Callable[[int, bytes], None] | None = None  # observer (the simulator's checks)

    def learn(self, slot: int, value: bytes) -> bool:
        """Record that `value` is chosen in `slot`; False if it was already known."""
        if slot < self.chosen_upto or slot in self.chosen:
            return False
        self.chosen[slot] = value
        while self.chosen_upto in self.chosen:
            self.chosen_upto += 1
        return True

    def highest_known(self) -> int:
        """One past the highest slot known chosen (out-of-order ones included)."""
        return max(max(self.chosen, default=-1) + 1, self.chosen_upto)

    def apply_chosen(self) -> list[Applied]:
        """Apply every chosen slot not yet applied, in slot order."""
        out = []
        while self.applied < self.chosen_upto:
            slot = self.applied
            if self.on_apply is not None:
                self.on_apply(slot, self.chosen[slot])
            try:
                stamp, commands = decode_batch(self.chosen[slot])
            except BatchError:
                self.bad_values += 1  # every replica decodes the same bytes the same way: a no-op for all
                stamp, commands = None, []
            for c in commands:
                assert stamp is not None  # a batch with commands has its stamp
                result, fresh = self.machine.apply(c, stamp)
                out.append(Applied(slot, c.client, c.req, c.command, result, fresh))
            self.applied += 1
        return out

    def entries(self, from_slot: int, limit: int, budget: int) -> tuple[Entry, ...]:
        """Chosen entries from `from_slot` on: at most `limit` of them and `budget` bytes (at least one)."""
        end = min(self.chosen_upto, from_slot + limit)
        entries = (Entry(s, self.chosen[s]) for s in range(max(from_slot, self.log_start), end))
        return tuple(next(value_groups(entries, budget, entry_size), ()))

    def take_snapshot(self) -> tuple[int, bytes]:
        """Snapshot the machine at `applied` and drop the chosen values below it."""
        self.snapshot = self.machine.snapshot()
        self._compact(self.applied)
        return self.applied, self.snapshot

    def install(self, slot: int, blob: bytes) -> bool:
        """Replace our state with a peer's snapshot, if it is ahead of what we applied."""
        if slot <= self.applied:
            return False
        self.machine.restore(blob)
        self.snapshot = blob
        self.applied = slot
        self.chosen_upto = max(self.chosen_upto, slot)
        self._compact(slot)
        while self.chosen_upto in self.chosen:
            self.chosen_upto += 1
        return True

    def _compact(self, slot: int) -> None:
        self.log_start = slot
        for s in [s for s in self.chosen if s < slot]:
            del self.chosen[s]
