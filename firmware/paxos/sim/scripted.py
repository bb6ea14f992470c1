"""A hand-driven site for interaction tests in the manner of etcd raft's: nothing moves unless told.

Messages wait in `inflight` until a test delivers or drops them (by sender, receiver or kind);
time moves only with `advance`. Each replica's Ready is carried out as the real adapter must:
persisted to its (simulated) disk first, then its messages are put in flight.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from firmware.paxos.core import messages as m
from firmware.paxos.core.kv import KVMachine
from firmware.paxos.core.options import Options
from firmware.paxos.core.ready import Applied
from firmware.paxos.core.replica import Replica
from firmware.paxos.sim.disk import SimDisk

SITE = "test"
Filter = Callable[[str, str, Any], bool]


class Scripted:
    def __init__(self, ids: tuple[str, ...] = ("a", "b", "c"), options: Options | None = None) -> None:
        self.ids = ids
        self.options = options or Options()
        self.now = 0.0
        self.disks = {i: SimDisk() for i in ids}
        self.replicas: dict[str, Replica] = {}
        self.starts = dict.fromkeys(ids, 0)  # each start gets a higher epoch, as the real adapter's do
        self.inflight: list[tuple[str, str, Any]] = []  # (from, to, message)
        self.replies: list[m.ClientReply] = []
        self.applied: dict[str, list[Applied]] = {i: [] for i in ids}
        for i in ids:
            self.start(i)

    # ----------------------------------------------------------------- replicas

    def start(self, node: str) -> Replica:
        """(Re)start `node` from what its disk holds."""
        self.starts[node] += 1
        r = Replica(node, self.ids, SITE, KVMachine(), durable=self.disks[node].load(), options=self.options,
                    rng=random.Random(node), now=self.now, epoch=self.starts[node])
        self.replicas[node] = r
        return r

    def crash(self, node: str) -> None:
        """Stop `node`; messages to and from it that are in flight are lost."""
        del self.replicas[node]
        self.inflight = [(s, d, msg) for s, d, msg in self.inflight if node not in (s, d)]

    def collect(self, node: str) -> None:
        r = self.replicas[node]
        ready = r.ready()
        ready.persist(self.disks[node])
        self.inflight += [(node, to, msg) for to, msg in ready.messages]
        self.replies += ready.replies
        self.applied[node] += ready.applied

    def collect_all(self) -> None:
        for node in list(self.replicas):
            self.collect(node)

    def __getitem__(self, node: str) -> Replica:
        return self.replicas[node]

    # ----------------------------------------------------------------- time and clients

    def advance(self, seconds: float) -> None:
        """Move time on and tick every replica."""
        self.now += seconds
        for node, r in self.replicas.items():
            r.tick(self.now)
            self.collect(node)

    def elect(self, node: str) -> None:
        """Let `node` time out first and win: the others' leader falls silent long enough."""
        self.advance(0)
        self.replicas[node].tick(self.now + self.options.election_max)
        self.now += self.options.election_max
        self.collect(node)
        self.deliver_all()

    def propose(self, node: str, client: str, req: int, command: bytes) -> None:
        self.replicas[node].propose(client, req, command, self.now)
        self.collect(node)

    def request(self, node: str, client: str, req: int, command: bytes) -> None:
        """A ClientRequest as it arrives from the broker."""
        self.replicas[node].step(m.ClientRequest(SITE, client, req, command), self.now)
        self.collect(node)

    # ----------------------------------------------------------------- the network

    @staticmethod
    def match(src: str | None = None, dst: str | None = None, kind: type | tuple[type, ...] | None = None) -> Filter:
        return lambda s, d, msg: (src in (None, s)) and (dst in (None, d)) and (kind is None or isinstance(msg, kind))

    def deliver(self, src: str | None = None, dst: str | None = None, kind: Any = None) -> int:
        """Deliver the messages in flight now that match (not the ones they provoke); how many."""
        want = self.match(src, dst, kind)
        now, self.inflight = self.inflight, []
        count = 0
        for s, d, msg in now:
            if not want(s, d, msg):
                self.inflight.append((s, d, msg))
            elif d in self.replicas:
                self.replicas[d].step(msg, self.now)
                self.collect(d)
                count += 1
        return count

    def drop(self, src: str | None = None, dst: str | None = None, kind: Any = None) -> int:
        want = self.match(src, dst, kind)
        before = len(self.inflight)
        self.inflight = [(s, d, msg) for s, d, msg in self.inflight if not want(s, d, msg)]
        return before - len(self.inflight)

    def deliver_all(self, rounds: int = 50, cut: frozenset[str] = frozenset()) -> None:
        """Deliver until nothing is in flight; messages across `cut` (to or from those nodes) are dropped."""
        for _ in range(rounds):
            self.inflight = [(s, d, msg) for s, d, msg in self.inflight if s not in cut and d not in cut]
            if not self.inflight:
                return
            self.deliver()
        raise AssertionError(f"still {len(self.inflight)} messages in flight after {rounds} rounds")

    def kinds(self, src: str | None = None, dst: str | None = None) -> list[str]:
        return [type(msg).__name__ for s, d, msg in self.inflight if src in (None, s) and dst in (None, d)]

    def data(self, node: str) -> dict[str, Any]:
        return self.replicas[node].learner.machine.machine.data
