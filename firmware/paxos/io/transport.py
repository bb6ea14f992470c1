"""The Paxos replica's MQTT transport: signed frames in, signed frames out, nothing else decided here.

Topics (under the configured prefix): each replica's inbox `{site}/paxos/{replica}`, client
requests `{site}/request` (heard by the leader, and by any replica that knows no leader: a
follower of a known leader unsubscribes, so requests cost only the leader; a request may also
name the replica it is for),
replies `{site}/reply/{client}`, and `{site}/paxos/{replica}/gone`, where the broker publishes
a replica's Last Will when its connection dies: a hint that a leader may be gone, never proof.

QoS 0 everywhere: the protocol already retransmits (heartbeats, stale Accepts, Prepare rounds,
catch-up, client retries with the same request id) and de-duplicates, so QoS 1 would only add a
PUBACK to every hop and replay stale messages queued across a reconnect. Nothing is retained.

Frames too big, with a bad MAC, malformed, from a sender that is not a member (or, for
requests, a member's id), or for another site are dropped, counted by reason in `dropped`, and
logged at most once per `log_every` seconds per reason, with the topic and the sender when known.
A binary request with a bad MAC also gets, at most once per `notice_every` seconds, an empty
signed answer on its session's reply topic: the only way a client with the wrong site key can
tell that from a site that is not there (its own check of that answer fails).

A JSON request without the MAC field is an open one (a driver's or operator's, codec.py): it is
delivered `keyed=False`, and the core takes it only through the admission check its caller gave.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from evnet.clock import Clock, RealClock
from evnet.logs import FoldedLog, event_logger
from evnet.mqtt import MqttLink
from evnet.topics import SiteTopics
from firmware.paxos.core import messages as m
from firmware.paxos.wire.codec import REQUESTS, Codec, CodecError

QOS = 0
REQUESTS_BYTE = bytes((REQUESTS,))


class MqttTransport:
    """Carries one replica's messages over an `MqttLink`; calls `deliver(kind, payload)` on paho's thread.

    What is sent or answered waits in an outbox until `flush()`, which publishes it all at once
    through `publish` (a `PacketWriter`'s: one write to the socket per turn of the runner).
    `deliver` gets ("peer", Message), ("request", ClientRequest) — only those addressed to us or to
    whoever leads — or ("gone", (replica id, epoch of its connection that died));
    it must not block (the runner puts them on its queue).
    """

    def __init__(self, link: MqttLink, codec: Codec, node_id: str, members: list[str] | tuple[str, ...],
                 deliver: Callable[[str, Any], None], *, publish: Callable[[list[tuple[str, bytes]]], None],
                 clock: Clock | None = None, log_every: float = 5.0, notice_every: float = 1.0) -> None:
        self.link, self.codec, self.id = link, codec, node_id
        self.publish = publish
        self._out: list[tuple[str, bytes]] = []  # (topic, payload) not yet published
        self.members = frozenset(members)
        self.topics = SiteTopics(link.cfg.prefix, codec.site)
        self.deliver = deliver
        self.clock = clock or RealClock()
        self.log = event_logger("paxos.transport", cp=node_id, site=codec.site)
        self._drops = FoldedLog(self.log, log_every, self.clock.monotonic)
        self.dropped: Counter[str] = self._drops.counts  # by reason
        self.sent = 0
        self.notice_every = notice_every
        self._next_notice = 0.0  # when a client with a bad MAC may be told next
        self.sessions: dict[str, str] = {}  # client -> the session its last (binary) request came from

    @staticmethod
    def will(topics: SiteTopics, codec: Codec, node_id: str, epoch: int) -> tuple[str, bytes, bool]:
        """The Last Will of connection `epoch` (not retained: a retained 'gone' would outlive the restart);
        the signed bytes as they must arrive (the MAC is checked over them)."""
        return topics.gone(node_id), codec.signed_json(codec.gone_body(node_id, epoch)), False

    def start(self, wait: float | None = 5.0) -> None:
        for topic, handler in ((self.topics.paxos(self.id), self._on_peer), (self.topics.gone(), self._on_gone)):
            self.link.subscribe(topic, handler, qos=QOS, wait=wait)
        # The request topic is subscribed to only while wanted (see `want_requests`), so it is not
        # one of the link's remembered subscriptions; `_on_connected` renews it after a reconnect.
        self.link.on_topic(self.topics.request, self._on_request)
        self.link.on_connected = self._on_connected
        self.requests_wanted = True
        self.requests_subscribed = False

    def want_requests(self, wanted: bool) -> None:
        """Hear client requests or not (call from the thread that runs the link's loop)."""
        if wanted == self.requests_wanted:
            return
        self.requests_wanted = wanted
        if self.link.connected.is_set():
            self._apply_request_subscription()

    def _apply_request_subscription(self) -> None:
        if self.requests_wanted:
            self.link.client.subscribe(self.topics.request, QOS)
        else:
            self.link.client.unsubscribe(self.topics.request)
        self.requests_subscribed = self.requests_wanted

    def _on_connected(self) -> None:
        self.requests_subscribed = False  # a clean start: the broker kept no subscription of ours
        if self.requests_wanted:
            self._apply_request_subscription()

    def flush(self) -> None:
        """Publish what was sent and answered since the last flush, in that order."""
        if self._out:
            out, self._out = self._out, []
            self.publish(out)

    def send_all(self, messages: list[tuple[str, m.Message]]) -> None:
        """Send in one MQTT message per peer (a bundle): fewer publishes, fewer wake-ups at each end."""
        bodies: dict[str, list[bytes]] = {}
        for to, msg in messages:
            try:
                bodies.setdefault(to, []).append(self.codec.encode_body(msg))
            except CodecError as e:  # a message the broker would drop: say so here, where it is known
                self._drops.error("paxos.frame_unsendable", key="unsendable", to=to, detail=str(e))
        for to, bs in bodies.items():
            self._out += [(self.topics.paxos(to), payload) for payload in self.codec.seal(bs)]
            self.sent += len(bs)

    def reply_all(self, replies: list[m.ClientReply]) -> None:
        """Answer clients: one binary message per session of binary clients, JSON to each of the others.

        A member's own requests are not answered on the broker: its replica applies them too and
        hands their results to its process (runner.py, `on_applied`)."""
        sessions: dict[str, list[m.ClientReply]] = {}
        for r in replies:
            if r.client in self.members:
                continue
            session = self.sessions.get(r.client)
            if session is None:
                self._out.append((self.topics.reply(r.client), self.codec.encode_reply(r)))
            else:
                sessions.setdefault(session, []).append(r)
        for session, rs in sessions.items():
            self._out.append((self.topics.reply(session), self.codec.encode_replies(self.id, rs)))

    # -------------------------------------------------------------- inbound (paho's thread)

    def _drop(self, reason: str, topic: str, detail: str, sender: str | None = None) -> None:
        self._drops.warning("paxos.frame_dropped", key=reason, reason=reason, topic=topic, sender=sender,
                            detail=detail)

    def _on_peer(self, topic: str, payload: bytes) -> None:
        try:
            bodies = self.codec.unbundle(payload)  # size and MAC first: nothing unpacked before
        except CodecError as e:
            self._drop(e.reason, topic, str(e))
            return
        for body in bodies:
            try:
                msg = self.codec.decode_body(body)
            except CodecError as e:
                self._drop(e.reason, topic, str(e))
                continue
            if msg.site != self.codec.site:
                self._drop("foreign_site", topic, f"site {msg.site[:80]!r}", msg.sender[:80])
            elif msg.sender not in self.members or msg.sender == self.id or isinstance(msg, m.ClientRequest):
                self._drop("unknown_sender", topic, type(msg).__name__, msg.sender[:80])
            else:
                self.deliver("peer", msg)

    def _on_request(self, topic: str, payload: bytes) -> None:
        """A JSON request, or binary ones of a session (whose clients are then answered in binary)."""
        try:
            if payload[:1] == REQUESTS_BYTE:
                session, to, reqs = self.codec.decode_requests(payload)
            else:  # keyed JSON (ends with its MAC field), or an open one: a driver's, an operator's
                decode = self.codec.decode_request if self.codec.is_signed_json(payload) \
                    else self.codec.decode_open_request
                req, to = decode(payload)
                session, reqs = None, [req]
        except CodecError as e:
            self._drop(e.reason, topic, str(e))
            if e.reason == "mac":
                self._tell_bad_mac(payload)
            return
        if session is not None and session in self.members:
            self._drop("unknown_sender", topic, "requests from a member's id as session", session)
            return
        if not (to is None or to == self.id or to not in self.members):
            return
        for req in reqs:
            if req.sender in self.members:
                self._drop("unknown_sender", topic, "request from a member's id as client", req.sender)
                continue
            if session is None:
                self.sessions.pop(req.sender, None)
            else:
                self.sessions[req.sender] = session
            self.deliver("request", req)

    def _tell_bad_mac(self, payload: bytes) -> None:
        """Answer a binary request that failed its MAC with an empty signed reply (rate-limited).

        A client with the wrong key cannot verify it either, and so learns that the site is there
        and its key is not the site's (it would see only a timeout otherwise). The session id is
        read unverified, so the answer says nothing and goes at most once per `notice_every` s.
        """
        session = self.codec.claimed_session(payload)
        now = self.clock.monotonic()
        if session is None or session in self.members or now < self._next_notice:
            return
        self._next_notice = now + self.notice_every
        self._out.append((self.topics.reply(session), self.codec.encode_replies(self.id, [])))

    def _on_gone(self, topic: str, payload: bytes) -> None:
        try:
            node, epoch = self.codec.decode_gone(payload)
        except CodecError as e:
            self._drop(e.reason, topic, str(e))
            return
        if node in self.members and node != self.id and topic == self.topics.gone(node):
            self.deliver("gone", (node, epoch))
