"""The replica classes of the bug switches (faults.py's BUGS) that change the core, never used outside the simulator."""

from __future__ import annotations

from typing import Any

from firmware.paxos.core import messages as m
from firmware.paxos.core.acceptor import Acceptor
from firmware.paxos.core.replica import Replica
from firmware.paxos.core.snapshots import Incoming
from firmware.paxos.sim.replay import StaleLiveness


class NoPromiseCheck(Acceptor):
    """The bug switch `no_promise_check`: an acceptor that accepts any ballot."""

    def allows(self, ballot: Any) -> bool:
        return True


class UncheckedSnapshots(Replica):
    """The bug switch `snapshot_unchecked`: the receiver of a snapshot appends every chunk of its transfer
    as it comes, whatever its offset (a duplicate, a late one), and installs what it holds once that is
    `total` bytes or more, without checking the digest."""

    def _take_chunk(self, t: Incoming, s: m.Snapshot) -> bool:
        t.parts.append(s.data)
        t.have += len(s.data)
        t.progressed = self.now
        return bool(s.data)

    def _intact(self, t: Incoming, blob: bytes) -> bool:
        return True


_CLASSES = {"stale_liveness": StaleLiveness, "snapshot_unchecked": UncheckedSnapshots}


def replica_class(bugs: frozenset[str]) -> type[Replica]:
    """Replica, or a class with the bugs switched on that change it."""
    bases = tuple(cls for bug, cls in _CLASSES.items() if bug in bugs)
    if not bases:
        return Replica
    return bases[0] if len(bases) == 1 else type("BuggyReplica", bases, {})
