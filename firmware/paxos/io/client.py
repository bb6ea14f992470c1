"""A small client of a site's replicated key-value machine, through the broker.

A `KvSession` is one broker connection; several `KvClient`s — logical clients, each with its own
client id and one request at a time — may share it, one per thread. The session sends their
requests as binary frames (`codec.py`) and the site answers all the clients of a session that a
commit settles in one message: fewer broker messages, connections and wake-ups per request than
a connection per client, with de-duplication and linearizability unchanged (those are per client
id). Nobody runs a network thread: whichever waiting thread finds no other one reading the socket
reads it (`LinkPump`) and hands the replies it finds to their threads; publishes go out on the
caller's thread. A `KvClient` without a session gets one of its own.

A request is retried with the SAME request id until answered, so a retry that reaches the site
twice is applied once and gets the first answer. Request ids start from the wall clock in
microseconds, so a restarted client never reuses one.

A retry waits `retry` s, doubling up to `max_retry`, unless the session sees a sign that the
leader changed: the Last Will of the replica it believes leads (`paxos/{replica}/gone`, signed
by the site), or a reply that names another leader. Then every waiting client asks again at
once, of whoever leads now, and every `fast_retry` s for the next `retry` s (a few small
messages, de-duplicated by the site): a kill -9 of the leader costs a client about the
election, not a retry interval.

A client that hears nothing says why it may be: answers with a bad MAC (a replica answers a
request it cannot verify with an empty signed reply) mean the site key differs.

A session without the site key (`key=None`: a driver's or an operator's app) is **open**: it sends
each request as an open JSON request (codec.py), whose command must carry its own signature
(firmware/site/credentials.py), and reads the replies on `reply/{client}` without checking their
MAC, which it cannot: the broker's ACL, by which only the site's members write there, is what it
trusts. It does not watch the replicas' Last Wills (it could not tell a forged one): a reply that
names another leader, or a retry, finds the new one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from evnet.clock import Clock, RealClock
from evnet.config.schema import MqttConfig
from evnet.logs import FoldedLog, event_logger
from evnet.mqtt import MqttLink
from evnet.mqtt.pump import LinkPump
from evnet.topics import SiteTopics
from firmware.paxos.core.canonical import dumps
from firmware.paxos.wire.codec import Codec, CodecError

LINGER = 0.001  # s a woken thread's next request may wait for those of the others woken with it


class KvTimeout(TimeoutError):  # noqa: N818 - reads as what it is: a timeout
    """No answer in time: the request may or may not have taken effect."""


class KvSession:
    """One broker connection for the `KvClient`s of one process (any number of threads).

    `linger` (s) bounds how long a woken thread's next request waits for those of the others
    that the same read woke (see `send`).
    """

    def __init__(self, mqtt_cfg: MqttConfig, site: str, session_id: str, key: bytes | None, *,
                 clock: Clock | None = None) -> None:
        self.site, self.id = site, session_id
        self.open = key is None  # no site key: open requests, replies read unverified
        self.codec = Codec(site, key or b"")
        self.topics = SiteTopics(mqtt_cfg.prefix, site)
        self.clock = clock or RealClock()
        self.log = event_logger("paxos.client", client=session_id, site=site)
        self._drops = FoldedLog(self.log)
        self.dropped = self._drops.counts  # replies and Wills that failed their check, by reason
        self.heard = 0  # authentic messages on our reply topics
        self.leader: str | None = None  # the replica the site's latest reply came from, None once it is gone
        self.changes = 0  # signs that the leader changed (a Will of the leader, a reply naming another)
        self.link = MqttLink(mqtt_cfg, f"kv-{site}-{session_id}")
        self.pump = LinkPump(self.link)
        self._lock = threading.RLock()  # held around every paho call; guards the fields below
        self._wakeups: dict[str, threading.Condition] = {}  # client -> its thread's wake-up (on _lock)
        self._waiting: set[str] = set()  # clients whose thread waits while another reads the socket
        self._answers: dict[str, dict[str, Any]] = {}  # client -> its latest reply
        self._pumper: str | None = None  # the client whose thread reads the socket now
        self._selecting = False  # the reading thread may be blocked in select: send at once
        self._coming: dict[str, int] = {}  # client -> the read that woke it, until its next request is queued
        self._reads = 0  # times a thread of this session has read the socket
        self.linger = LINGER
        self._outbox: list[tuple[str | None, tuple[str, int, bytes]]] = []  # (to, request) not yet sent
        self._started = False

    def start(self, wait: float = 10.0) -> KvSession:
        with self._lock:
            if self._started:
                return self
            self._started = True
            self.link.subscribe(self.topics.reply(self.id), self._on_reply, qos=0)  # sent on (re)connect
            if not self.open:
                self.link.subscribe(self.topics.gone(), self._on_gone, qos=0)
            if not self.pump.connect(wait):
                raise ConnectionError(f"no broker at {self.link.cfg.url} after {wait} s")
        return self

    def add(self, client_id: str) -> None:
        """Also hear `client_id`'s own reply topic: a replica that got its request forwarded answers there."""
        with self._lock:
            self._wakeups.setdefault(client_id, threading.Condition(self._lock))
            if client_id != self.id:
                self.link.subscribe(self.topics.reply(client_id), self._on_reply, qos=0)

    def close(self) -> None:
        with self._lock:
            self.link.disconnect()
            self.pump.close()

    def _on_reply(self, topic: str, payload: bytes) -> None:  # under self._lock (the pump's guard)
        try:
            replies = [Codec.decode_reply_unverified(payload)] if self.open else self.codec.decode_replies(payload)
        except CodecError as e:
            self._drops.warning("paxos.reply_dropped", key=e.reason, reason=e.reason, topic=topic, detail=str(e))
            return
        self.heard += 1
        leader = replies[0].get("leader") if replies else None
        if isinstance(leader, str) and leader != self.leader:
            self._leader_changed(leader)
        for r in replies:
            client = r.get("client")
            if isinstance(client, str):
                self._answers[client] = r
                if client in self._waiting:
                    self._wakeups[client].notify()  # only the thread this answer is for
                    self._coming[client] = self._reads  # its next request waits for the others woken with it

    def _on_gone(self, topic: str, payload: bytes) -> None:  # under self._lock
        try:
            replica, _epoch = self.codec.decode_gone(payload)  # an old Will replayed costs one early retry
        except CodecError as e:
            self._drops.warning("paxos.will_dropped", key=e.reason, reason=e.reason, topic=topic, detail=str(e))
            return
        if replica == self.leader:
            self._leader_changed(None)

    def _leader_changed(self, leader: str | None) -> None:  # under self._lock
        """A new leader, or none known: wake every waiting client to ask again at once (see `wait`)."""
        if self.leader is not None:
            self.changes += 1
            for client in self._waiting:
                self._wakeups[client].notify()
        self.leader = leader

    def diagnosis(self) -> str:
        """What silence from the site most likely means, from what this session saw."""
        if self.dropped["mac"]:
            return (f"{self.dropped['mac']} answers came with a bad MAC: the site key differs from the "
                    f"replicas' (check [site] key_file)")
        if not self.heard and self.open:
            return (f"nothing came back: check the broker ({self.link.cfg.url}), the site name ({self.site!r}), "
                    f"that this account may publish on {self.topics.request} and read {self.topics.reply(self.id)}, "
                    f"and that the site's replicas are running")
        if not self.heard:
            return (f"nothing came back: check the broker ({self.link.cfg.url}), the site name ({self.site!r}) "
                    f"and key, and that the site's replicas are running")
        return "the site answered before: it may be electing a leader, or overloaded"

    def send(self, client: str, req: int, command: bytes, to: str | None) -> None:
        """Queue a request; it leaves at once, or with the next requests of the threads one read woke.

        The threads that one read of the socket woke send their next requests in one message (not
        one each): the last of them to queue sends them all, or the reading thread does after
        `linger` s (a woken thread need not ask again).
        """
        with self._lock:
            self._outbox.append((to, (client, req, command)))
            self._coming.pop(client, None)
            if self._selecting and not self._coming:
                self._flush()

    def _flush(self) -> None:  # under self._lock
        if not self._outbox:
            return
        by_to: dict[str | None, list[tuple[str, int, bytes]]] = {}
        for to, request in self._outbox:
            by_to.setdefault(to, []).append(request)
        self._outbox.clear()
        if self.open:  # one open JSON request each: only its own signature vouches for it
            self.pump.writer.publish([(self.topics.request, Codec.encode_open_request(*request, to=to))
                                      for to, requests in by_to.items() for request in requests])
            return
        self.pump.writer.publish([(self.topics.request, self.codec.encode_requests(self.id, to, requests))
                                  for to, requests in by_to.items()])

    def wait(self, client: str, req: int, until: float, changes: int | None = None) -> dict[str, Any] | None:
        """The reply to `client`'s request `req`, or None at `until` (this session's clock), or as soon
        as the leader changed (`self.changes` is no longer `changes`): time to ask again, at once.

        One waiting thread at a time reads the socket, until its own answer comes; then it wakes
        one other waiting thread to take over. The others sleep until their answer is read: each
        reply wakes the one thread it is for, not all of them.
        """
        with self._lock:
            wakeup = self._wakeups.setdefault(client, threading.Condition(self._lock))
            try:
                while True:
                    answer = self._answers.get(client)
                    if answer is not None and answer["req"] == req:
                        del self._answers[client]
                        return answer
                    left = until - self.clock.monotonic()
                    if left <= 0 or (changes is not None and changes != self.changes):
                        return None
                    if self._pumper is None:
                        self._pumper = client
                    if self._pumper == client:
                        lingering = bool(self._coming)
                        if not lingering:
                            self._flush()
                        self._selecting = True
                        self._reads += 1
                        self._lock.release()
                        try:
                            self.pump.pump(min(left, self.linger if lingering else 0.05), guard=self._lock)
                        finally:
                            self._lock.acquire()
                            self._selecting = False
                            if lingering:  # those woken before this read waited long enough: send without them
                                self._coming = {c: r for c, r in self._coming.items() if r == self._reads}
                    else:
                        self._waiting.add(client)
                        wakeup.wait(left)  # until our answer is read, or the socket is handed to us
                        self._waiting.discard(client)
            finally:
                if self._pumper == client:
                    self._flush()
                    self._pumper = None
                if self._pumper is None and self._waiting:  # hand the socket to a waiting thread (a
                    self._wakeups[next(iter(self._waiting))].notify()  # woken one may have had its answer)


class KvClient:
    """`put/get/cas` on the site's kv machine; `leader` is the replica that answered last."""

    def __init__(self, mqtt_cfg: MqttConfig, site: str, client_id: str, key: bytes | None, *, timeout: float = 5.0,
                 retry: float = 0.25, max_retry: float = 1.0, fast_retry: float = 0.01, clock: Clock | None = None,
                 session: KvSession | None = None) -> None:
        self.site, self.id = site, client_id
        self.clock = clock or RealClock()
        self.own_session = session is None
        self.session = session or KvSession(mqtt_cfg, site, client_id, key, clock=self.clock)
        self.timeout, self.retry, self.max_retry, self.fast_retry = timeout, retry, max_retry, fast_retry
        self.req = time.time_ns() // 1000
        self.leader: str | None = None
        self.retries = 0
        self._lock = threading.Lock()

    def start(self, wait: float = 10.0) -> KvClient:
        self.session.add(self.id)
        self.session.start(wait)
        return self

    def close(self) -> None:
        if self.own_session:
            self.session.close()

    def __enter__(self) -> KvClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put(self, key: str, value: Any) -> Any:
        return self.request("put", {"key": key, "value": value})

    def get(self, key: str) -> Any:
        return self.request("get", {"key": key})

    def cas(self, key: str, expect: Any, value: Any) -> bool:
        return self.request("cas", {"key": key, "expect": expect, "value": value})

    def request(self, op: str, args: dict[str, Any], timeout: float | None = None) -> Any:
        """Send `op(args)` and wait for its result; `KvTimeout` if none comes within `timeout` s."""
        return self.call(dumps({**args, "op": op}), f"{op} {args!r}", timeout)

    def call(self, command: bytes, what: str, timeout: float | None = None) -> Any:
        """Send the state machine's `command` (bytes as it takes them) and wait for its result, retrying
        with the same request id; `KvTimeout` (naming `what`) if none comes within `timeout` s."""
        with self._lock:
            self.req += 1
            req = self.req
            start = self.clock.monotonic()
            end = start + (self.timeout if timeout is None else timeout)
            interval = self.retry
            to = self.session.leader
            fast_until = start  # after a sign that the leader changed: ask every fast_retry s until then
            while True:
                now = self.clock.monotonic()
                if now >= end:
                    self.leader = None
                    raise KvTimeout(f"{what}: no answer from site {self.site!r} in {end - start:.2f} s; "
                                    f"{self.session.diagnosis()}")
                changes = self.session.changes
                self.session.send(self.id, req, command, to)
                reply = self.session.wait(self.id, req, min(end, now + interval), changes)
                if reply is not None:
                    self.leader = reply.get("leader")
                    return reply.get("result")
                self.retries += 1
                if self.session.changes != changes:  # the leader changed: ask whoever leads now, at once,
                    to, interval = self.session.leader, self.fast_retry  # and often while it is elected
                    fast_until = self.clock.monotonic() + self.retry
                elif self.clock.monotonic() < fast_until:
                    to, interval = None, self.fast_retry
                else:  # whoever leads now: every replica that knows no leader hears it, and forwards it
                    to, interval = None, min(interval * 2, self.max_retry)
