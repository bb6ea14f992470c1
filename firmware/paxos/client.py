"""A small client of a site's replicated key-value machine, through the broker.

The client runs its broker connection on the calling thread (`LinkPump`): a request is written
to the socket and its answer read back with no hand-off to paho's network thread. So a
`KvClient` belongs to one thread at a time (the lock enforces it), and one request at a time per
client id (the site's de-duplication table keeps one answer per
client): a request is retried with the SAME request id until answered, so a retry that
reaches the site twice is applied once and gets the first answer. Request ids start from the
wall clock in microseconds, so a restarted client never reuses one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from evnet.clock import Clock, RealClock
from evnet.config.schema import MqttConfig
from evnet.logs import event_logger
from evnet.mqtt import MqttLink
from firmware.paxos.codec import Codec, CodecError
from firmware.paxos.transport import LinkPump, PaxosTopics


class KvTimeout(TimeoutError):  # noqa: N818 - reads as what it is: a timeout
    """No answer in time: the request may or may not have taken effect."""


class KvClient:
    """`put/get/cas` on the site's kv machine; `leader` is the replica that answered last."""

    def __init__(self, mqtt_cfg: MqttConfig, site: str, client_id: str, key: bytes, *, timeout: float = 5.0,
                 retry: float = 0.25, max_retry: float = 1.0, clock: Clock | None = None) -> None:
        self.site, self.id = site, client_id
        self.codec = Codec(site, key)
        self.topics = PaxosTopics(mqtt_cfg.prefix, site)
        self.timeout, self.retry, self.max_retry = timeout, retry, max_retry
        self.clock = clock or RealClock()
        self.req = time.time_ns() // 1000
        self.leader: str | None = None
        self.retries = 0
        self.log = event_logger("paxos.client", client=client_id, site=site)
        self.link = MqttLink(mqtt_cfg, f"kv-{site}-{client_id}")
        self.pump = LinkPump(self.link)
        self._replies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._started = False

    def start(self, wait: float = 10.0) -> KvClient:
        if self._started:
            return self
        self._started = True
        self.link.subscribe(self.topics.reply(self.id), self._on_reply, qos=0)  # sent on (re)connect
        with self._lock:
            if not self.pump.connect(wait):
                raise ConnectionError(f"no broker at {self.link.cfg.url} after {wait} s")
        return self

    def close(self) -> None:
        with self._lock:
            self.link.connected.clear()  # a disconnect we asked for: no warning
            self.link.client.disconnect()

    def __enter__(self) -> KvClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_reply(self, _topic: str, payload: bytes) -> None:
        try:
            self._replies.append(self.codec.decode_reply(payload))
        except CodecError as e:
            self.log.warning("paxos.reply_dropped", reason=e.reason, detail=str(e))

    def put(self, key: str, value: Any) -> Any:
        return self.request("put", {"key": key, "value": value})

    def get(self, key: str) -> Any:
        return self.request("get", {"key": key})

    def cas(self, key: str, expect: Any, value: Any) -> bool:
        return self.request("cas", {"key": key, "expect": expect, "value": value})

    def request(self, op: str, args: dict[str, Any], timeout: float | None = None) -> Any:
        """Send `op(args)` and wait for its result; `KvTimeout` if none comes within `timeout` s."""
        with self._lock:
            self.req += 1
            req = self.req
            start = self.clock.monotonic()
            end = start + (self.timeout if timeout is None else timeout)
            interval = self.retry
            to = self.leader
            self.pump.pump(0)  # keepalive, a reconnect, stale replies: whatever happened while idle
            while True:
                now = self.clock.monotonic()
                if now >= end:
                    self.leader = None
                    raise KvTimeout(f"{op} {args!r}: no answer from site {self.site!r} in {end - start:.2f} s")
                self.link.publish(self.topics.request, self.codec.encode_request(self.id, req, op, args, to), qos=0)
                retry_at = min(end, now + interval)
                while True:
                    while self._replies:
                        reply = self._replies.pop(0)
                        if reply["client"] == self.id and reply["req"] == req:
                            self.leader = reply.get("leader")
                            return reply["result"]
                    left = retry_at - self.clock.monotonic()
                    if left <= 0:
                        break
                    self.pump.pump(left)
                self.retries += 1
                to = None  # whoever leads now: every replica hears it; followers forward it
                interval = min(interval * 2, self.max_retry)
