"""A simulated disk under the `Storage` protocol, where a crash loses what was written but not fsynced.

The adapter writes (`write`), and the write becomes durable only when its fsync completes
(`fsync`, scheduled by the simulator after a disk latency). `crash` drops every write still
waiting for its fsync, which is how the simulator checks that no message leaves before the
state it depends on is durable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from firmware.paxos.core.types import Accepted, Ballot, DurableState


class SimDisk:
    def __init__(self) -> None:
        self.synced = DurableState()
        self._pending: deque[tuple[Ballot | None, list[Accepted], tuple[int, bytes] | None]] = deque()
        self.lost_writes = 0
        self.writes = 0  # every write, durable or not (a test counts them)

    # the Storage protocol, for code that wants write+fsync in one call
    def load(self) -> DurableState:
        s = self.synced
        return DurableState(s.promised, dict(s.accepted), s.snapshot_slot, s.snapshot)

    def save(self, promised: Ballot | None, accepted: Sequence[Accepted]) -> None:
        self.write(promised, list(accepted), None)
        self.fsync()

    def save_snapshot(self, slot: int, blob: bytes) -> None:
        self.write(None, [], (slot, blob))
        self.fsync()

    def close(self) -> None:
        pass

    # the two halves the simulator schedules apart
    def write(self, promised: Ballot | None, accepted: list[Accepted], snapshot: tuple[int, bytes] | None) -> None:
        self._pending.append((promised, accepted, snapshot))
        self.writes += 1

    def fsync(self) -> None:
        """Make the oldest pending write durable."""
        promised, accepted, snapshot = self._pending.popleft()
        s = self.synced
        if promised is not None:
            s.promised = promised
        for a in accepted:
            if a.slot >= s.snapshot_slot:
                s.accepted[a.slot] = a
        if snapshot is not None and snapshot[0] > s.snapshot_slot:
            s.snapshot_slot, s.snapshot = snapshot
            for slot in [x for x in s.accepted if x < s.snapshot_slot]:
                del s.accepted[slot]

    def crash(self) -> None:
        self.lost_writes += len(self._pending)
        self._pending.clear()

    def forget_all(self) -> None:
        """The bug switch `no_fsync`: a store that never fsyncs comes back empty after a crash."""
        self.synced = DurableState()
