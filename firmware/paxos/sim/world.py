"""One simulated site: replicas, clients, a broker and disks, driven by one seeded event queue.

Each replica runs the real `Replica` core behind a simulated adapter that does what the real one
must: write the Ready's durable part, wait for the fsync (a simulated disk latency), and only then
send its messages and replies. A crash drops every write still waiting for its fsync; a restart
builds a new `Replica` from what the disk synced. Each replica's clock runs at its own rate.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from firmware.paxos.core import messages as m
from firmware.paxos.core.kv import KVMachine
from firmware.paxos.core.options import Options
from firmware.paxos.core.ready import Partition, Ready
from firmware.paxos.core.replica import Replica
from firmware.paxos.sim.bugs import NoPromiseCheck, replica_class
from firmware.paxos.sim.checks import Observer, check_end
from firmware.paxos.sim.clients import SimClient
from firmware.paxos.sim.disk import SimDisk
from firmware.paxos.sim.faults import BUGS, Faults
from firmware.paxos.sim.network import Network
from firmware.paxos.sim.replay import Replayer

SITE = "sim"
# Sizes far below the real ones (a command here is ~60 bytes, a snapshot a few hundred): Accepts and
# catch-up replies of several slots are cut by the budget, promises come in parts, snapshots in chunks.
SIZES = {"message_budget": 400, "snapshot_chunk": 64, "snapshot_stall": 0.3}
SIM_OPTIONS = Options(max_batch=4, max_inflight=4, catchup_batch=8, snapshot_every=12, **SIZES)
# timeouts close to the network's slow tail: spurious elections, duelling leaders, stale messages
TIGHT_OPTIONS = Options(heartbeat_interval=0.01, election_min=0.03, election_max=0.06, max_batch=4,
                        max_inflight=4, catchup_batch=8, snapshot_every=12, **SIZES)
EVENTS = ("deliver", "timer", "fsync", "emit", "start", "retry", "crash", "arm", "restart", "cut", "heal", "kill",
          "will", "replay")
DELIVER, TIMER, FSYNC, EMIT, START, RETRY, CRASH, ARM, RESTART, CUT, HEAL, KILL, WILL, REPLAY = range(len(EVENTS))
__all__ = ["BUGS", "Faults", "RunResult", "World", "run_seed"]


@dataclass
class RunResult:
    seed: int
    violations: list[str]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def replay(self) -> str:
        bugs = f" --bug {','.join(sorted(self.stats.get('bugs', ())))}" if self.stats.get("bugs") else ""
        heavy = " --heavy" if self.stats.get("heavy") else ""
        return f"python -m firmware.paxos.sim --seed {self.seed}{heavy}{bugs} --verbose"


class SimNode:
    def __init__(self, node_id: str, rate: float, offset: float) -> None:
        self.id = node_id
        self.disk = SimDisk()
        self.replica: Replica | None = None
        self.epoch = 0  # bumped by a crash: events of an earlier life are ignored
        self.incarnation = 0
        self.rate, self.offset = rate, offset
        self.busy_until = 0.0  # when the disk finishes the writes queued so far
        self.timer_at: float | None = None
        self.timer_gen = 0
        self.crash_on_write = False
        self.promise_durable_at = 0.0  # when the latest promise written reaches the disk
        self.applies: list[tuple[int, bytes]] = []  # (slot, value) applied by the core since the last Ready

    def local(self, t: float) -> float:
        return self.offset + t * self.rate

    def to_global(self, local: float) -> float:
        return (local - self.offset) / self.rate


class World:
    def __init__(self, seed: int, faults: Faults | None = None, verbose: bool = False,
                 options: Options | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.faults = f = faults or Faults.draw(self.rng)
        self.verbose = verbose
        self.options = options or (TIGHT_OPTIONS if self.faults.tight else SIM_OPTIONS)
        self.now = 0.0
        self._queue: list[tuple[float, int, int, Any, Any]] = []
        self._seq = 0
        self.ids = [f"r{i}" for i in range(f.replicas)]
        self.net = Network(random.Random(self.rng.random()), loss=f.loss, duplicate=f.duplicate, slow_max=f.slow_max,
                           replicas=frozenset(self.ids))
        self.nodes = {i: SimNode(i, 1 + self.rng.uniform(-f.drift, f.drift), self.rng.uniform(0, 100))
                      for i in self.ids}
        self.issued: set[tuple[str, int, bytes]] = set()
        self.obs = Observer(self.issued)
        keys = [f"k{i}" for i in range(f.keys)]
        self.clients = {f"c{i}": SimClient(f"c{i}", random.Random(self.rng.random()), keys, self.ids,
                                              self.issued)
                        for i in range(f.clients)}
        self.stop_issuing = f.fault_time + 0.3
        self.end = f.fault_time + f.settle_time
        self.events = 0
        self.crashes = 0
        self.cut: Counter[str] = Counter()  # later snapshot chunks, promises with more parts to come
        self.kept_down: str | None = None  # chosen at the heal (Faults.keep_one_down)
        # as often as the attack of issue 9 (40 ms against a 150 ms election_min), for any timeouts
        self.replayer = Replayer(random.Random(f"{seed}/replay"), self.options.election_min / 4) if f.replay else None
        if self.replayer is not None:
            self._push(self.replayer.every, REPLAY, None, None)
        for node in self.nodes.values():
            self._restart(node)
        for c in self.clients.values():
            self._push(self.rng.uniform(0.0, 0.3), START, c, None)
        self._schedule_faults()

    # ----------------------------------------------------------------- event queue

    def _push(self, t: float, kind: int, a: Any, b: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, kind, a, b))

    def _schedule_faults(self) -> None:
        f, rng = self.faults, self.rng
        # half the partitions and crashes hit whoever leads at that moment (None: decided then)
        for _ in range(f.partitions):
            t = rng.uniform(0, f.fault_time)
            cut = None if rng.random() < 0.5 else frozenset(rng.sample(self.ids, rng.randint(1, len(self.ids) - 1)))
            self._push(t, CUT, cut, None)
            self._push(min(t + rng.uniform(0.05, 0.6), f.fault_time), CUT, frozenset(), None)
        for _ in range(f.crashes):
            t, node = rng.uniform(0, f.fault_time), None if rng.random() < 0.5 else self.nodes[rng.choice(self.ids)]
            self._push(t, ARM if rng.random() < 0.6 else CRASH, node, rng.uniform(0.01, 0.8))
        if f.crash_all:
            t = rng.uniform(0, f.fault_time)
            for node in self.nodes.values():
                self._push(t, CRASH, node, rng.uniform(0.01, 0.5))
        self._push(f.fault_time, HEAL, None, None)

    def run(self) -> RunResult:
        started = time.perf_counter()
        queue = self._queue
        while queue and queue[0][0] <= self.end:
            t, _, kind, a, b = heapq.heappop(queue)
            self.now = t
            self.events += 1
            try:
                self._handle(kind, a, b)
            except Exception as e:  # noqa: BLE001 - the core raised: a violation of this seed, and the run ends
                self.obs.violations.append(f"exception: {type(e).__name__}: {str(e)[:200]} (in a {EVENTS[kind]} "
                                           f"event at {getattr(a, 'id', a)})")
                break
        return self._result(time.perf_counter() - started)

    def _handle(self, kind: int, a: Any, b: Any) -> None:
        if kind == DELIVER:
            if a in self.clients:
                c = self.clients[a]
                if c.answered(b.req, b.result, self.now):
                    self._trace(f"{a} <- {b.sender} reply req={b.req} {b.result!r}")
                    self._push(self.now + self.rng.uniform(0.0, 0.02), START, c, None)
            else:
                self._input(self.nodes[a], lambda r, t: r.step(b, t), b)
        elif kind == TIMER:
            if a.timer_gen == b and a.replica is not None:
                a.timer_at = None
                self._input(a, lambda r, t: r.tick(t), None)
        elif kind == FSYNC:
            if a.epoch == b[0]:
                a.disk.fsync()
                self.obs.on_synced(a.id, a.disk.synced.promised)
                if b[1] is not None:
                    self._emit(a, b[1])
        elif kind == EMIT:
            if a.epoch == b[0]:
                self._emit(a, b[1], b[2])
        elif kind == KILL:
            if a.epoch == b:
                self._crash(a)
        elif kind == START:
            if self.now < self.stop_issuing:
                a.next_op(self.now)
                self._send_request(a)
        elif kind == RETRY:
            if a.current is not None and a.req == b:
                self._send_request(a)
        elif kind in (CRASH, ARM):
            node = a or next((n for n in self.nodes.values() if n.replica is not None and n.replica.is_leader), None)
            if node is not None:
                if kind == CRASH:
                    self._crash(node)
                else:
                    node.crash_on_write = True
                self._push(self.now + b, RESTART, node, None)
        elif kind == RESTART:
            if a.replica is None and not (self.now >= self.faults.fault_time and a.id == self._kept_down()):
                self._restart(a)
        elif kind == CUT:
            self.net.cut = a if a is not None else self._leaders()
            self._trace(f"partition {sorted(self.net.cut)}")
        elif kind == WILL:  # the broker publishes b = (replica, epoch)'s Last Will to replica a
            self._trace(f"{a.id} <- Will of {b[0]}, epoch {b[1]}")
            self._input(a, lambda r, t: r.leader_gone(*b, t), None)
        elif kind == REPLAY:
            self._replay()
        elif kind == HEAL:
            self.net.heal()
            self._trace("heal")
            if self.faults.keep_one_down:  # whoever leads now dies for good: the others must take over
                self.kept_down = next(iter(sorted(self._leaders())), self.ids[-1])
                self._crash(self.nodes[self.kept_down])
            for node in self.nodes.values():
                node.crash_on_write = False
                if node.replica is None and node.id != self._kept_down():
                    self._restart(node)

    def _replay(self) -> None:
        """Someone on the broker publishes old frames and a Will again (replay.py)."""
        assert self.replayer is not None
        for to, msg in self.replayer.frames_now():
            for d in self.net.fate("attacker", to):
                self._push(self.now + d, DELIVER, to, msg)
        will = self.replayer.will_now()
        if will is not None:
            self._publish_will(*will)
        self._push(self.now + self.replayer.every, REPLAY, None, None)

    def _publish_will(self, replica: str, epoch: int) -> None:
        for node in self.nodes.values():
            if node.id != replica:
                for d in self.net.fate("broker", node.id):
                    self._push(self.now + d, WILL, node, (replica, epoch))

    def _leaders(self) -> frozenset[str]:
        return frozenset(n.id for n in self.nodes.values() if n.replica is not None and n.replica.is_leader)

    def _kept_down(self) -> str | None:
        return self.kept_down

    # ----------------------------------------------------------------- replicas

    def _input(self, node: SimNode, fn: Any, msg: Any) -> None:
        r = node.replica
        if r is None:
            return
        if msg is not None:
            self._trace(f"{node.id} <- {msg}")
        fn(r, node.local(self.now))
        self._drain(node)

    def _drain(self, node: SimNode) -> None:
        r = node.replica
        assert r is not None
        ready = r.ready()
        applies, node.applies = node.applies, []
        # As the runner does (ready.py, `partition`): free messages now, the learned ones and replies
        # once every earlier write is durable, the votes once this one is.
        parts = ready.partition()
        # What the core applied is observable (to the checks, as to a charge point acting on it) with the
        # learned messages: applied in memory on our own vote, it is chosen once that vote is durable.
        learned = Ready(messages=parts.learned, replies=ready.replies, applied=ready.applied)
        if "send_before_fsync" in self.faults.bugs:
            self._emit(node, ready, applies)  # everything leaves before the write is durable
            parts, learned, applies = Partition([], [], [], []), Ready(), []
        before = node.busy_until
        if ready.must_persist():
            self.obs.on_write(node.id, ready.promised, ready.accepted)
            node.disk.write(ready.promised, ready.accepted, ready.snapshot)
            slow = self.rng.random() < 0.1  # a disk's tail: longer than a round trip to a peer
            node.busy_until = max(self.now, node.busy_until) + self.rng.uniform(0.00005, 0.004 if slow else 0.0005)
            if ready.promised is not None:
                node.promise_durable_at = node.busy_until
        self._emit(node, Ready(messages=parts.free))
        self._after(node, node.promise_durable_at, Ready(messages=parts.accepts))
        if ready.must_persist():
            self._push(node.busy_until, FSYNC, node, (node.epoch, Ready(messages=parts.votes)))
            if node.crash_on_write:  # die before this write is durable: at once, or while handling what comes next
                node.crash_on_write = False
                if self.rng.random() < 0.5:
                    self._crash(node)
                    return
                self._push(self.rng.uniform(self.now, node.busy_until), KILL, node, node.epoch)
        else:
            self._after(node, node.busy_until, Ready(messages=parts.votes))
        if "learned_before_fsync" in self.faults.bugs:
            before = self.now  # tell what is chosen before the votes that chose it are durable here
        self._after(node, node.busy_until if ready.self_chosen else before, learned, applies)
        self._set_timer(node, ready.deadline)

    def _after(self, node: SimNode, durable_at: float, ready: Ready, applies: list[tuple[int, bytes]] | None = None
               ) -> None:
        """Emit `ready` once the writes pending until `durable_at` are durable (now if none are)."""
        if not (ready.messages or ready.replies or ready.applied or applies):
            return
        if durable_at > self.now:
            self._push(durable_at, EMIT, node, (node.epoch, ready, applies))  # behind the pending fsyncs
        else:
            self._emit(node, ready, applies)

    def _emit(self, node: SimNode, ready: Ready, applies: list[tuple[int, bytes]] | None = None) -> None:
        for slot, value in applies or ():
            self.obs.on_apply(node.id, slot, value)
        for a in ready.applied:
            if a.fresh:
                self.obs.on_fresh(node.id, a.slot, a.client, a.req)
        for to, msg in ready.messages:
            if self.replayer is not None:
                self.replayer.record(node.id, to, msg)
            if isinstance(msg, m.Snapshot) and msg.offset or isinstance(msg, m.Promise) and msg.more:
                self.cut[type(msg).__name__] += 1  # a snapshot's later chunks, a promise's parts before its last
            for d in self.net.fate(node.id, to):
                self._push(self.now + d, DELIVER, to, msg)
        for reply in ready.replies:
            for d in self.net.fate(node.id, reply.client):
                self._push(self.now + d, DELIVER, reply.client, reply)

    def _set_timer(self, node: SimNode, deadline: float | None) -> None:
        if deadline is None:
            return
        t = max(node.to_global(deadline) + 1e-9, self.now + 1e-6)
        if node.timer_at is not None and self.now < node.timer_at <= t:
            return  # an earlier tick is already due: it will set the next one
        node.timer_gen += 1
        node.timer_at = t
        self._push(t, TIMER, node, node.timer_gen)

    def _crash(self, node: SimNode) -> None:
        if node.replica is None:
            return
        self._trace(f"crash {node.id}")
        self.crashes += 1
        if self.rng.random() < 0.5:  # kill -9: the broker sees the connection close and publishes the Will;
            self._publish_will(node.id, node.incarnation)  # else a power cut: none until its keepalive runs out
            if self.replayer is not None:
                self.replayer.record_will(node.id, node.incarnation)
        node.replica = None
        node.epoch += 1
        node.disk.crash()
        node.busy_until = self.now
        node.timer_at = None
        node.timer_gen += 1
        node.crash_on_write = False

    def _restart(self, node: SimNode) -> None:
        node.incarnation += 1
        node.applies = []
        if "no_fsync" in self.faults.bugs:
            node.disk.forget_all()
        durable = node.disk.load()
        r = replica_class(self.faults.bugs)(node.id, self.ids, SITE, KVMachine(), durable=durable, options=self.options,
                    rng=random.Random(f"{self.seed}/{node.id}/{node.incarnation}"), now=node.local(self.now),
                    epoch=node.incarnation)
        if "no_promise_check" in self.faults.bugs:
            r.acceptor.__class__ = NoPromiseCheck
        r.learner.on_apply = lambda slot, value: node.applies.append((slot, value))
        node.replica = r
        self._trace(f"start {node.id} (incarnation {node.incarnation}, snapshot slot {durable.snapshot_slot}, "
                    f"{len(durable.accepted)} accepted, promised {tuple(durable.promised)})")
        self._drain(node)

    # ----------------------------------------------------------------- clients

    def _send_request(self, c: SimClient) -> None:
        target = c.target()
        msg = m.ClientRequest(SITE, c.id, c.req, c.command)
        self._trace(f"{c.id} -> {target} req={c.req} {c.command.decode()}")
        for d in self.net.fate(c.id, target):
            self._push(self.now + d, DELIVER, target, msg)
        self._push(self.now + self.faults.retry, RETRY, c, c.req)

    # ----------------------------------------------------------------- results

    def _result(self, wall: float) -> RunResult:
        finals = {n.id: (n.replica.learner.applied, n.replica.learner.machine.machine.data)
                  for n in self.nodes.values() if n.replica is not None}
        history = [op for c in self.clients.values() for op in c.history]
        violations = check_end(self.obs, finals, history, check_liveness=True)
        leaders = [n.id for n in self.nodes.values() if n.replica is not None and n.replica.is_leader]
        stats = {"ops": len(history), "slots": self.obs.max_applied, "events": self.events,
                 "messages": self.net.sent, "dropped": self.net.dropped, "crashes": self.crashes,
                 "leaders": leaders, "sim_time": self.now, "wall": wall, "bugs": sorted(self.faults.bugs),
                 "replayed": self.replayer.replayed if self.replayer is not None else 0,
                 "snapshot_chunks": self.cut["Snapshot"], "promise_parts": self.cut["Promise"],
                 "faults": self.faults, "unanswered": sum(1 for op in history if math.isinf(op["ret"])),
                 "recovery": max([op["ret"] - self.faults.fault_time for op in history
                                  if op["call"] < self.faults.fault_time < op["ret"] < math.inf], default=0.0)}
        return RunResult(self.seed, violations, stats)

    def _trace(self, text: str) -> None:
        if self.verbose:
            print(f"{self.now:10.6f}  {text}")


def run_seed(seed: int, bugs: frozenset[str] = frozenset(), verbose: bool = False, heavy: bool = False) -> RunResult:
    """One run: the faults are drawn from the seed (bugs switched on as given) and every check made."""
    rng = random.Random(seed)
    faults = Faults.draw(rng, bugs, heavy)
    result = World(seed, faults, verbose=verbose).run()
    result.stats["heavy"] = heavy
    return result
