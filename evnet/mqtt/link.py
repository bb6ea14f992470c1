"""The link to a broker: paho-mqtt 2 set up from `MqttConfig`, the one MQTT client of every evnet part.

What every client here needs and paho does not do by itself: TCP_NODELAY on the
socket (without it a two-hop round trip takes ~88 ms instead of ~0.3 ms), the
subscriptions made again after every reconnect, a Last Will, JSON payloads that
carry `"v": 1` and are checked on the way in, and a broker that cannot be reached said
in one line with its cause (paho retries in silence), its repeats folded. And the trust
boundary every subscriber shares: no payload over `MAX_PAYLOAD` reaches a handler (the broker
is asked not to send one, and one that comes anyway is dropped), and whatever a handler raises
for one message is caught, counted and logged with its topic: one bad message never ends
paho's thread or the caller's loop.
"""

from __future__ import annotations

import socket
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from evnet.config.schema import MqttConfig
from evnet.logs import FoldedLog, event_logger
from evnet.mqtt.payload import MAX_PACKET, MAX_PAYLOAD, encode_payload

Handler = Callable[[str, bytes], None]


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool


def parse_url(url: str) -> BrokerAddress:
    """`mqtt://host[:1883]` or `mqtts://host[:8883]`."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"broker URL {url!r}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, parts.port or (8883 if tls else 1883), tls)


def read_credentials(path: str) -> tuple[str, str]:
    """A credentials file is TOML: `username = "..."` and `password = "..."`."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    try:
        return str(data["username"]), str(data["password"])
    except KeyError as exc:
        raise ValueError(f"{path}: missing {exc.args[0]!r}; expected username and password") from None


def describe_connect_error(host: str, exc: BaseException | None) -> str:
    """Why a connection attempt failed, in words a person acts on."""
    if isinstance(exc, socket.gaierror):
        return f"host {host!r} does not resolve ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: no broker listens there"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer (timed out)"
    return str(exc) if exc is not None else "unknown error"


class _Client(mqtt.Client):
    """paho's client, keeping why the last connection attempt failed (its `on_connect_fail` does not say)."""

    last_error: OSError | None = None

    def reconnect(self) -> mqtt.MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as exc:
            self.last_error = exc
            raise


def set_nodelay(client: mqtt.Client) -> None:
    sock = client.socket()
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class MqttLink:
    """A connected-or-reconnecting broker client with remembered subscriptions.

    Callbacks run on paho's network thread: handlers must not block.
    """

    def __init__(self, cfg: MqttConfig, client_id: str, *, cp: str | None = None,
                 will: tuple[str, dict[str, Any] | bytes, bool] | None = None, clean_start: bool = True) -> None:
        self.cfg = cfg
        self.address = parse_url(cfg.url)
        self.client_id = client_id
        self.log = event_logger("mqtt", cp=cp, client=client_id)
        self.connected = threading.Event()
        self._drops = FoldedLog(self.log)
        self.dropped = self._drops.counts  # messages no handler got, or whose handler failed, by (reason, topic filter)
        self._subs: dict[str, tuple[int, Handler]] = {}
        self.exact: dict[str, Handler] = {}  # exact topic filters' handlers: a reader may dispatch these itself
        self._suback: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self.on_connected: Callable[[], None] | None = None
        self.v5 = cfg.version == "5"
        self.client = _Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                              protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
                              **({} if self.v5 else {"clean_session": clean_start}))
        self.failures = FoldedLog(self.log, every=60.0)  # an unreachable broker: one line, then one a minute
        self._clean_start = clean_start
        if cfg.credentials_file:
            self.client.username_pw_set(*read_credentials(cfg.credentials_file))
        if self.address.tls or cfg.tls_ca:
            self.client.tls_set(ca_certs=cfg.tls_ca, certfile=cfg.tls_cert, keyfile=cfg.tls_key)
        if will is not None:
            self.set_will(*will)
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=2.0)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def set_will(self, topic: str, body: dict[str, Any] | bytes, retain: bool) -> None:
        """The Last Will for the next connection (a body as JSON; bytes, e.g. signed, sent as they are)."""
        payload = body if isinstance(body, bytes) else encode_payload(body)
        self.client.will_set(topic, payload, qos=1, retain=retain)

    def topic(self, *parts: str) -> str:
        """A topic under the configured prefix: `topic(site, "cp", cp, "status")`."""
        return "/".join((self.cfg.prefix, *parts))

    def connect_args(self) -> dict[str, Any]:
        """paho's `connect` keywords: keepalive, and on MQTT 5 the clean start and MAX_PACKET.

        MQTT 5 lets a client say the largest packet it takes (Maximum Packet Size): the broker then
        drops a larger message for us instead of sending it, so we never even read it.
        """
        kwargs: dict[str, Any] = {"keepalive": self.cfg.keepalive_s}
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            props.MaximumPacketSize = MAX_PACKET
            kwargs["clean_start"] = self._clean_start
            kwargs["properties"] = props
        return kwargs

    def start(self, wait: float | None = 5.0) -> bool:
        """Connect in the background (retrying forever); wait up to `wait` s for the first connection."""
        kwargs = self.connect_args()
        try:
            self.client.connect_async(self.address.host, self.address.port, **kwargs)
        except OSError as exc:
            self.log.warning("mqtt.connect_failed", url=self.cfg.url, error=str(exc))
        self.client.loop_start()
        return self.connected.wait(wait) if wait else self.connected.is_set()

    def disconnect(self) -> None:
        """Leave the broker on purpose: a DISCONNECT (so no Last Will), and no warning logged."""
        self.connected.clear()
        self.client.disconnect()

    def stop(self, farewell: tuple[str, dict[str, Any], bool] | None = None, timeout: float = 1.0) -> None:
        """Disconnect and end paho's network thread (for links started with `start`).

        A clean disconnect sends no Last Will, so a link that has one says it itself:
        `farewell` = (topic, body, retain) is published first, waiting up to `timeout` s.
        """
        if farewell is not None and self.connected.is_set():
            topic, body, retain = farewell
            try:
                self.publish_json(topic, body, qos=1, retain=retain).wait_for_publish(timeout)
            except (RuntimeError, ValueError):  # the connection went meanwhile: the Will speaks instead
                pass
        self.disconnect()
        self.client.loop_stop()

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1, wait: float | None = None) -> bool:
        """Call `handler(topic, payload)` for messages on `topic_filter`, now and after every reconnect.

        With `wait`, block up to that many seconds for the broker's SUBACK; True once it came.
        """
        with self._lock:
            self._subs[topic_filter] = (qos, handler)
        self.on_topic(topic_filter, handler)
        if not self.connected.is_set():
            return False
        acked = threading.Event()
        with self._lock:
            _rc, mid = self.client.subscribe(topic_filter, qos)
            self._suback[mid] = acked
        return acked.wait(wait) if wait else False

    def on_topic(self, topic_filter: str, handler: Handler) -> None:
        """Call `handler(topic, payload)` for messages on `topic_filter`, subscribed to by the caller.

        The handler is called through `_guarded`, on paho's dispatch and on a reader's alike.
        """
        guarded = self._guarded(topic_filter, handler)
        self.client.message_callback_add(topic_filter, lambda _c, _u, msg: guarded(msg.topic, msg.payload))
        if "+" not in topic_filter and "#" not in topic_filter:
            self.exact[topic_filter] = guarded

    def _guarded(self, topic_filter: str, handler: Handler) -> Handler:
        """`handler` behind the boundary: nothing over MAX_PAYLOAD reaches it, nothing it raises escapes."""
        def guarded(topic: str, payload: bytes) -> None:
            if len(payload) > MAX_PAYLOAD:
                self._drops.warning("mqtt.message_dropped", key=("too_big", topic_filter), reason="too_big",
                                    topic=topic, size=len(payload), limit=MAX_PAYLOAD)
                return
            try:
                handler(topic, payload)
            except Exception as exc:  # noqa: BLE001 - one message's failure must not end the loop that reads
                self._drops.error("mqtt.handler_failed", key=("handler_failed", topic_filter), topic=topic,
                                  size=len(payload), error=type(exc).__name__, detail=str(exc)[:200])
        return guarded

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        """Publish; a payload over MAX_PAYLOAD is a bug of ours and a ValueError (the broker would refuse
        it, and paho 2.2 takes an MQTT 5 broker's refusal of a QoS-1 message for a protocol error:
        it reconnects and sends it again, for ever)."""
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"a payload of {len(payload)} bytes on {topic}: more than the {MAX_PAYLOAD} allowed")
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def publish_json(self, topic: str, body: dict[str, Any], qos: int = 1,
                     retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.publish(topic, encode_payload(body), qos=qos, retain=retain)

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.failures.warning("mqtt.connect_refused", url=self.cfg.url, reason=str(reason), retrying=True)
            return
        self.failures.reset("mqtt.unreachable")
        self.failures.reset("mqtt.connect_refused")
        set_nodelay(client)
        with self._lock:
            subs = [(t, q) for t, (q, _) in self._subs.items()]
        if subs:
            client.subscribe(subs)
        self.connected.set()
        self.log.info("mqtt.connected", url=self.cfg.url, subscriptions=len(subs))
        if self.on_connected is not None:
            self.on_connected()

    def _on_connect_fail(self, client: _Client, _userdata: Any) -> None:
        """Runs on paho's thread after each failed attempt (it retries, backing off to 2 s)."""
        self.failures.warning("mqtt.unreachable", url=self.cfg.url,
                              error=describe_connect_error(self.address.host, client.last_error), retrying=True)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if self.connected.is_set():
            self.log.warning("mqtt.disconnected", url=self.cfg.url, reason=str(reason))
        self.connected.clear()

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, mid: int, _reasons: Any, _props: Any) -> None:
        with self._lock:
            acked = self._suback.pop(mid, None)
        if acked is not None:
            acked.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.log.debug("mqtt.unhandled_message", topic=msg.topic)

