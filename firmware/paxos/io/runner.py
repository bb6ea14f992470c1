"""Runs one replica: a single thread owns the core AND the broker connection; it reads the socket,
keeps time, and carries out each Ready strictly in order — persist (fsync) -> publish -> reply.

The thread drives the paho client itself (`LinkPump`) instead of paho's own network thread: a
message then reaches the core, and the core's answer reaches the socket, with no hand-off between
threads (each one costs tens of microseconds and a GIL switch; a consensus round crosses several).
It reads every message waiting (up to `max_drain`) before asking the core for its Ready, so one
fsync covers all the Accepts that arrived together (group commit).

It holds its data directory locked for its life (datadir.py), and gives each broker connection a
new epoch, set in the core (its stamps) and in the Last Will of that connection (liveness.py).

Its caller gives the state machine, may propose commands of its own (`submit`, from any thread:
the member's own client id, so the machine knows a member sent them), and is handed, on this
thread and once they are durable, the commands applied with their results (`on_applied`). It may
give an admission check for open requests (`admit`, routing.py), called on this thread, where the
machine is applied, so it may read the committed state.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from evnet.clock import Clock, RealClock
from evnet.config.schema import Config
from evnet.config.site_key import site_key
from evnet.logs import FoldedLog, event_logger
from evnet.mqtt import MqttLink
from evnet.mqtt.pump import LinkPump
from evnet.topics import SiteTopics
from firmware.paxos.core import messages as m
from firmware.paxos.core.dedup import StateMachine
from firmware.paxos.core.options import Options
from firmware.paxos.core.ready import Applied, Ready
from firmware.paxos.core.replica import Replica
from firmware.paxos.core.routing import Admit
from firmware.paxos.core.types import Storage
from firmware.paxos.io.datadir import DataDir
from firmware.paxos.io.storage import DEFAULT_KIND, open_storage
from firmware.paxos.io.transport import MqttTransport
from firmware.paxos.wire.codec import Codec


class ReplicaRunner:
    """One replica of `cfg`'s site with its durable store in `data_dir`, talking through the broker."""

    def __init__(self, cfg: Config, data_dir: str, *, machine: StateMachine, storage_kind: str = DEFAULT_KIND,
                 options: Options | None = None, clock: Clock | None = None, max_drain: int = 512,
                 commit_delay: float | None = None,
                 on_applied: Callable[[list[Applied]], None] | None = None, admit: Admit | None = None) -> None:
        self.cfg = cfg
        self.id, self.site = cfg.cp_id, cfg.site_id
        self.clock = clock or RealClock()
        self.max_drain = max_drain
        self.log = event_logger("paxos.runner", cp=self.id, site=self.site)
        self._broker_log = FoldedLog(self.log)
        self._failures = FoldedLog(self.log)
        self.handler_failures = 0  # messages whose handling raised (a bug): counted, logged, survived
        self.on_applied = on_applied
        self.observer_failures = 0  # on_applied calls that raised: counted, logged, the replica goes on
        self.codec = Codec(self.site, site_key(cfg))
        self.datadir = DataDir.open(data_dir)  # DataDirLockedError if another process runs on it: before any write
        try:
            self.storage: Storage = open_storage(data_dir, storage_kind)
            durable = self.storage.load()
        except BaseException:
            self.datadir.close()
            raise
        self.rng = random.Random()
        self.epoch = self.datadir.next_epoch()
        self.replica = Replica(self.id, cfg.site.members, self.site, machine, durable=durable,
                               options=options, rng=self.rng, now=self.clock.monotonic(), epoch=self.epoch,
                               admit=admit)
        self.log.info("paxos.recovered", promised=durable.promised, accepted=len(durable.accepted),
                      snapshot_slot=durable.snapshot_slot, storage=storage_kind, data_dir=data_dir, epoch=self.epoch)
        self.inbox: deque[tuple[str, Any]] = deque()  # filled by paho callbacks, on this runner's thread
        self.topics = SiteTopics(cfg.mqtt.prefix, self.site)
        self.link = MqttLink(cfg.mqtt, f"paxos-{self.site}-{self.id}", cp=self.id,
                             will=MqttTransport.will(self.topics, self.codec, self.id, self.epoch))
        self._link_up = False  # the connection named by self.epoch came up (its Will may be published)
        self._seen_error: OSError | None = None
        self.pump = LinkPump(self.link)
        self.transport = MqttTransport(self.link, self.codec, self.id, cfg.site.members, self._enqueue,
                                       clock=self.clock, publish=self.pump.writer.publish)
        self.applied_commands = 0
        self.persists = 0
        self.hints = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.commit_delay = self.replica.opts.heartbeat_interval / 10 if commit_delay is None else commit_delay
        self._deferred: list[tuple[str, m.Message]] = []  # Commit notices waiting for a ride
        self._commit_due: float | None = None

    def _enqueue(self, kind: str, item: Any) -> None:
        self.inbox.append((kind, item))

    def submit(self, req: int, command: bytes) -> None:
        """Propose `command` as this member's request `req` (its client id is the member's id); any thread.

        Its result comes back through `on_applied`, like every applied command. Requests follow the
        Paxos client rules: `req` grows, and a retry reuses it (de-duplication answers it once)."""
        self.inbox.append(("local", (req, command)))
        self.pump.wake()

    # -------------------------------------------------------------- life cycle

    def connect(self, wait: float = 10.0) -> bool:
        """Connect and subscribe, waiting up to `wait` s for the broker (the loop keeps trying after).

        Returns early when a stop is requested (Ctrl-C). Why the broker cannot be reached is
        logged at the first failed attempt, in one line, then folded (`_watch_link`)."""
        self.transport.start(wait=None)  # remembered; sent by MqttLink's on_connect, now and on reconnects
        end = time.monotonic() + wait
        while not self.pump.ready() and not self._stop.is_set() and time.monotonic() < end:
            self.pump.pump(0.05)
            self._watch_link()
        if wait > 0 and not self.pump.ready() and not self._stop.is_set() and self._seen_error is None:
            self._broker_log.warning("paxos.broker_unreachable", url=self.cfg.mqtt.url, waited_s=wait,
                                     error="the broker took the connection, but no session came up "
                                           "(refused, or no answer)", retrying=True)
        return self.pump.ready()

    @property
    def alive(self) -> bool:
        """False once the loop's thread (`start`) has ended: it must be restarted."""
        return self._thread is None or self._thread.is_alive() or self._stop.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _watch_link(self) -> None:
        """After each pump: a new epoch and Will once the connection they named is gone; why the broker is
        out of reach, if it is."""
        if self.link.connected.is_set():
            if not self._link_up:
                self._link_up = True
                self._seen_error = None
                attempts = self._broker_log.reset("paxos.broker_unreachable")
                if attempts:
                    self.log.info("paxos.broker_reachable", url=self.cfg.mqtt.url, failed_attempts=attempts)
            return
        if self._link_up:  # the Will of that connection may be published: the next one must name another
            self._link_up = False
            self.epoch = self.datadir.next_epoch()
            self.replica.set_epoch(self.epoch)
            self.link.set_will(*MqttTransport.will(self.topics, self.codec, self.id, self.epoch))
        error = self.pump.connect_error
        if error is not None and error is not self._seen_error:
            self._seen_error = error
            self._broker_log.warning("paxos.broker_unreachable", url=self.cfg.mqtt.url,
                                     error=broker_error(self.link.address.host, self.link.address.port, error),
                                     retrying=True)

    def start(self, wait: float = 10.0) -> ReplicaRunner:
        """Connect, then run the loop on a thread of its own (`evnet replica` runs it on the main thread)."""
        self.connect(wait)
        self._thread = threading.Thread(target=self.run, name=f"paxos-{self.id}", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the loop to end (safe from a signal handler or another thread)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.link.disconnect()
        self.pump.close()
        self.storage.close()
        self.datadir.close()

    def _pump(self, wait: float) -> None:
        """Read the socket for up to `wait` s, then every message already waiting (up to `max_drain`)."""
        seen = [len(self.inbox)]

        def more() -> bool:
            grew = seen[0] < len(self.inbox) < self.max_drain
            seen[0] = len(self.inbox)
            return grew
        self.pump.pump(wait, more)

    def run(self) -> None:
        """The loop: input -> core -> Ready (persist, send, reply); returns when `stop()` is called."""
        deadline: float | None = None
        while not self._stop.is_set():
            now = self.clock.monotonic()
            wait = 0.2 if deadline is None else min(0.2, max(0.0, deadline - now))
            self._pump(wait)
            self._watch_link()
            while self.inbox:
                self._handle(self.inbox.popleft(), self.clock.monotonic())
            now = self.clock.monotonic()
            self._flush_commits(now)
            if deadline is None or now >= deadline:
                self.replica.tick(now)
            deadline = self._carry_out(self.replica.ready())
            r = self.replica
            self.transport.want_requests(r.is_leader or r.leader is None)

    def _handle(self, item: tuple[str, Any], now: float) -> None:
        """One delivered message into the core; whatever it raises is this message's failure, not the loop's:
        counted, logged with the sender, and the loop goes on (nothing of that step was persisted or sent)."""
        kind, payload = item
        try:
            match kind:
                case "peer":
                    self.replica.step(payload, now)
                case "request":
                    req: m.ClientRequest = payload
                    self.replica.propose(req.sender, req.req, req.command, now, req.keyed)
                case "local":
                    number, command = payload
                    self.replica.propose(self.id, number, command, now)
                case "gone":
                    self._leader_gone(payload, now)
        except Exception as exc:  # noqa: BLE001 - a core bug on one authentic message must not end the replica
            sender = payload[0] if kind == "gone" else self.id if kind == "local" else payload.sender
            self.handler_failures += 1
            self._failures.error("paxos.message_failed", key=kind, kind=kind, sender=sender,
                                 message=type(payload).__name__, error=type(exc).__name__, detail=str(exc)[:200])

    def _leader_gone(self, gone: tuple[str, int], now: float) -> None:
        """The broker says connection `epoch` of `node` died. If it was our leader's, hold a pre-vote soon.

        Only a hint: an election is always safe, and a leader that is in fact alive (a paused
        process keeps its connection; a will can be late) wins back or is replaced, nothing worse.
        A replayed or overtaken Will is stale and changes nothing (the core logs what it takes).
        """
        if self.replica.leader_gone(*gone, now):
            self.hints += 1

    def _carry_out(self, ready: Ready) -> float | None:
        """Carry out `ready`, sending before the fsync all that may go (ready.py, `partition`).

        This loop waits for its own fsync, so when a Ready comes every earlier write is durable:
        Accepts (our promise is on disk, unless this very write holds a new one), what is chosen
        and the replies leave at once — the leader's Accepts reach the followers while its own
        write runs (Raft thesis 10.2.1), and clients are not kept waiting for a write their
        answer does not rely on. Only the votes wait for the fsync (and, on a one-member site,
        what our own vote chose).
        """
        now = self.clock.monotonic()
        parts = ready.partition()
        early, after = list(parts.free), list(parts.votes)
        (early if ready.promised is None else after).extend(parts.accepts)
        (after if ready.self_chosen else early).extend(parts.learned)
        if not ready.self_chosen:
            self.transport.reply_all(ready.replies)
        self._send(early, now)  # in one MQTT message per peer
        self.transport.flush()  # all of it in one write to the socket
        if ready.must_persist():
            ready.persist(self.storage)  # returns once fsynced: what is sent below relies on it
            self.persists += 1
        self._send(after, now)
        if ready.self_chosen:
            self.transport.reply_all(ready.replies)
        self.transport.flush()
        self.applied_commands += len(ready.applied)
        if ready.applied and self.on_applied is not None:
            try:
                self.on_applied(ready.applied)
            except Exception as exc:  # noqa: BLE001 - the observer's bug must not stop the site's replica
                self.observer_failures += 1
                self._failures.error("paxos.observer_failed", key="observer", error=type(exc).__name__,
                                     detail=str(exc)[:200])
        if self._commit_due is not None:
            return self._commit_due if ready.deadline is None else min(ready.deadline, self._commit_due)
        return ready.deadline

    def _send(self, batch: list[tuple[str, m.Message]], now: float) -> None:
        """Send `batch`, one MQTT message per peer, with the Commit notices waiting for those peers.

        Commit notices only tell followers what is chosen (a hint: they can also learn it by
        catch-up), so they wait up to `commit_delay` to ride in the same MQTT message as the next
        Accept to that peer: half the publishes per command at the leader, half the wake-ups at a
        follower.
        """
        if any(isinstance(msg, m.Commit) for _, msg in batch):
            self._deferred += [(to, msg) for to, msg in batch if isinstance(msg, m.Commit)]
            batch = [(to, msg) for to, msg in batch if not isinstance(msg, m.Commit)]
            if self._commit_due is None:
                self._commit_due = now + self.commit_delay
        if self._deferred:
            due = self._commit_due is not None and now >= self._commit_due
            peers = {to for to, _ in batch}
            ride = [(to, c) for to, c in self._deferred if due or to in peers]
            if ride:
                self._deferred = [] if due else [(to, c) for to, c in self._deferred if to not in peers]
                batch = ride + batch
                if not self._deferred:
                    self._commit_due = None
        if batch:
            self.transport.send_all(batch)

    def _flush_commits(self, now: float) -> None:
        """Queue the Commit notices whose wait is over; `_carry_out`, next in the loop, publishes them."""
        if self._deferred and self._commit_due is not None and now >= self._commit_due:
            self._send([], now)


def broker_error(host: str, port: int, error: OSError) -> str:
    """Why a connection to the broker failed, in words a person can act on."""
    if isinstance(error, socket.gaierror):
        return f"host {host!r} does not resolve ({error.strerror or error})"
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused: nothing listens on {host}:{port} (is the broker running?)"
    if isinstance(error, TimeoutError):
        return f"no answer from {host}:{port} (timed out)"
    return str(error)
