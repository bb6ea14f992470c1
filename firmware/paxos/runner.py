"""Runs one replica: a single thread owns the core; it drains the inbox, keeps time, and carries out
each Ready strictly in order — persist (fsync) -> publish messages -> deliver replies.

Messages arrive from paho's thread through a queue; the loop takes every message waiting (up to
`max_drain`) before asking the core for its Ready, so one fsync covers all the Accepts that arrived
together (group commit) and one publish burst answers them.
"""

from __future__ import annotations

import queue
import random
import threading
from typing import Any

from evnet.clock import Clock, RealClock
from evnet.config.schema import Config
from evnet.logs import event_logger
from evnet.mqtt import MqttLink
from firmware.paxos import messages as m
from firmware.paxos.codec import Codec, read_site_key
from firmware.paxos.dedup import StateMachine
from firmware.paxos.kv import KVMachine
from firmware.paxos.options import Options
from firmware.paxos.replica import Replica
from firmware.paxos.storage import DEFAULT_KIND, open_storage
from firmware.paxos.transport import MqttTransport, PaxosTopics
from firmware.paxos.types import Storage


class ReplicaRunner:
    """One replica of `cfg`'s site with its durable store in `data_dir`, talking through the broker."""

    def __init__(self, cfg: Config, data_dir: str, *, storage_kind: str = DEFAULT_KIND,
                 options: Options | None = None, machine: StateMachine | None = None,
                 clock: Clock | None = None, max_drain: int = 512) -> None:
        self.cfg = cfg
        self.id, self.site = cfg.cp_id, cfg.site_id
        self.clock = clock or RealClock()
        self.max_drain = max_drain
        self.log = event_logger("paxos.runner", cp=self.id, site=self.site)
        self.codec = Codec(self.site, read_site_key(cfg.site.key_file))
        self.storage: Storage = open_storage(data_dir, storage_kind)
        durable = self.storage.load()
        self.rng = random.Random()
        self.replica = Replica(self.id, cfg.site.members, self.site, machine or KVMachine(), durable=durable,
                               options=options, rng=self.rng, now=self.clock.monotonic())
        self.log.info("paxos.recovered", promised=durable.promised, accepted=len(durable.accepted),
                      snapshot_slot=durable.snapshot_slot, storage=storage_kind, data_dir=data_dir)
        self.inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        topics = PaxosTopics(cfg.mqtt.prefix, self.site)
        self.link = MqttLink(cfg.mqtt, f"paxos-{self.site}-{self.id}", cp=self.id,
                             will=MqttTransport.will(topics, self.codec, self.id))
        self.transport = MqttTransport(self.link, self.codec, self.id, cfg.site.members, self._enqueue,
                                       clock=self.clock)
        self.applied_slots = 0
        self.hints = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _enqueue(self, kind: str, item: Any) -> None:
        self.inbox.put((kind, item))

    # -------------------------------------------------------------- life cycle

    def start(self, wait: float = 10.0) -> ReplicaRunner:
        """Connect, subscribe, and run the loop on a thread of its own."""
        self.link.start(wait=wait)
        self.transport.start(wait=wait)
        self._thread = threading.Thread(target=self.run, name=f"paxos-{self.id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.inbox.put(("wake", None))
        if self._thread is not None:
            self._thread.join(10)
        self.link.stop()
        self.storage.close()

    def run(self) -> None:
        """The loop: input -> core -> Ready (persist, send, reply); returns when `stop()` is called."""
        deadline: float | None = None
        while not self._stop.is_set():
            now = self.clock.monotonic()
            wait = 0.5 if deadline is None else min(0.5, max(0.0, deadline - now))
            try:
                item: tuple[str, Any] | None = self.inbox.get(timeout=wait) if wait > 0 else self.inbox.get_nowait()
            except queue.Empty:
                item = None
            taken = 0
            while item is not None:
                self._handle(item, self.clock.monotonic())
                taken += 1
                if taken >= self.max_drain:
                    break
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    item = None
            now = self.clock.monotonic()
            if deadline is None or now >= deadline:
                self.replica.tick(now)
            deadline = self._carry_out(self.replica.ready())

    def _handle(self, item: tuple[str, Any], now: float) -> None:
        kind, payload = item
        if kind == "peer":
            self.replica.step(payload, now)
        elif kind == "request":
            req: m.ClientRequest = payload
            self.replica.propose(req.sender, req.req, req.command, now)
        elif kind == "gone":
            self._leader_gone(payload, now)

    def _leader_gone(self, node: str, now: float) -> None:
        """The broker says `node`'s connection died. If it was our leader, hold an election soon.

        Only a hint: an election is always safe, and a leader that is in fact alive (a paused
        process keeps its connection; a will can be late) wins back or is replaced, nothing worse.
        """
        r = self.replica
        if r.leader != node or r.is_leader:
            return
        self.hints += 1
        r.last_heard = -1e18  # no stickiness to a leader the broker saw die
        r.election_deadline = min(r.election_deadline, now + self.rng.uniform(0, r.opts.heartbeat_interval))
        self.log.info("paxos.leader_gone_hint", leader=node)

    def _carry_out(self, ready: Any) -> float | None:
        ready.persist(self.storage)  # returns once fsynced: the messages below promise it
        for to, msg in ready.messages:
            self.transport.send(to, msg)
        self.applied_slots += len(ready.applied)
        for reply in ready.replies:
            self.transport.reply(reply)
        return ready.deadline
