"""A cheaper send path for `LinkPump`: the QoS-0 PUBLISH packets of one turn built here and written in one `send`.

paho's `publish` builds a message-info object with its own lock, checks the topic, packs the
packet, queues it and writes it: ~11 µs a message on this project's test machine against ~3 µs
here, and a leader's turn sends several (the Accepts, the answers to each client session). So
the writer packs them all, header and topic bytes cached per topic, and hands the socket one
buffer.

paho still owns the connection. While it has packets of its own waiting (a SUBSCRIBE, a PINGREQ
that found the socket full), or is not connected, the writer goes through `publish` so nothing
overtakes them; bytes the socket would not take now are queued in paho's outgoing queue, and
paho's `loop_write` sends them before anything else.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import paho.mqtt.client as mqtt

PUBLISH = 0x30


def remaining_length(n: int) -> bytes:
    """MQTT's variable byte integer (a packet's remaining length)."""
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | 0x80 if n else digit)
        if not n:
            return bytes(out)


class PacketWriter:
    """Publishes QoS-0, unretained messages on `client`'s socket, several in one write."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self._props = b"\x00" if client._protocol == mqtt.MQTTv5 else b""  # no v5 properties
        self._topics: dict[str, bytes] = {}  # topic -> its length-prefixed bytes (and empty properties)
        self.direct = 0  # messages written by this writer, not by paho

    def _packet(self, topic: str, payload: bytes) -> bytes:
        head = self._topics.get(topic)
        if head is None:
            t = topic.encode()
            if not t or len(t) > 0xFFFF or "+" in topic or "#" in topic:
                raise ValueError(f"not a topic to publish to: {topic!r}")
            head = self._topics[topic] = len(t).to_bytes(2, "big") + t + self._props
        return b"".join((bytes((PUBLISH,)), remaining_length(len(head) + len(payload)), head, payload))

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Send `(topic, payload)` messages in order; what the socket will not take now, paho sends later."""
        if not messages:
            return
        client = self.client
        sock = client.socket()
        if sock is None or client._out_packet or not client.is_connected():
            for topic, payload in messages:
                client.publish(topic, payload, qos=0)
            return
        data = b"".join([self._packet(t, p) for t, p in messages])
        try:
            sent = sock.send(data)
        except (BlockingIOError, ssl.SSLWantWriteError, InterruptedError):
            sent = 0
        except OSError:
            return  # the connection is gone: QoS 0, and paho's next read or write finds out
        self.direct += len(messages)
        client._last_msg_out = mqtt.time_func()  # paho's keepalive sees us talking
        if sent < len(data):
            rest = data[sent:]
            client._out_packet.append({"command": PUBLISH, "mid": 0, "qos": 0, "pos": 0,
                                       "to_process": len(rest), "packet": rest, "info": mqtt.MQTTMessageInfo(0)})
