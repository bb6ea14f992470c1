"""`PacketReader`: QoS-0 PUBLISHes parsed by us and handed to paho's dispatch, the rest left to paho.

The bytes come from the other end of a socket pair, as a broker would send them, so each test
can cut packets where a TCP read could.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from evnet.mqtt.reader import MalformedPacketError, PacketReader
from evnet.mqtt.writer import remaining_length as varint


def publish(topic: str, payload: bytes, properties: bytes = b"", v5: bool = True) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + ((varint(len(properties)) + properties) if v5 else b"") + payload
    return bytes([0x30]) + varint(len(body)) + body


@pytest.fixture
def pair() -> Iterator[tuple[mqtt.Client, PacketReader, socket.socket, socket.socket, list[tuple[str, bytes]]]]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5)
    got: list[tuple[str, bytes]] = []
    client.message_callback_add("evnet/lab/paxos/+", lambda _c, _u, msg: got.append((msg.topic, msg.payload)))
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    reader = PacketReader(client)
    yield client, reader, ours, broker, got
    ours.close()
    broker.close()


def test_a_publish_cut_anywhere_is_delivered_once_whole(pair) -> None:
    client, reader, ours, broker, got = pair
    big = bytes(range(256)) * 3  # a remaining length that takes two bytes
    stream = publish("evnet/lab/paxos/cp1", b"first") + publish("evnet/lab/paxos/cp2", big, properties=b"\x01\x00")
    for i in range(len(stream)):  # one byte at a time: every cut a TCP read could make
        broker.send(stream[i:i + 1])
        assert reader.read(ours)
    assert got == [("evnet/lab/paxos/cp1", b"first"), ("evnet/lab/paxos/cp2", big)]
    assert reader.fast == 2


def test_several_publishes_in_one_read_and_a_topic_nobody_asked_for(pair) -> None:
    client, reader, ours, broker, got = pair
    other: list[str] = []
    client.on_message = lambda _c, _u, msg: other.append(msg.topic)  # paho's fallback, as without the reader
    broker.send(publish("evnet/lab/paxos/cp1", b"a") + publish("elsewhere", b"b")
                + publish("evnet/lab/paxos/cp3", b"c"))
    assert reader.read(ours)
    assert got == [("evnet/lab/paxos/cp1", b"a"), ("evnet/lab/paxos/cp3", b"c")] and other == ["elsewhere"]


def test_other_packets_go_to_paho_which_handles_them(pair) -> None:
    client, reader, ours, broker, got = pair
    acked: list[int] = []
    client.on_subscribe = lambda _c, _u, mid, _codes, _props: acked.append(mid)
    client._sock = ours  # paho thinks it is connected through this socket
    suback = bytes([0x90, 4]) + struct.pack("!H", 7) + b"\x00" + b"\x00"  # packet id 7, no properties, QoS 0
    broker.send(suback + publish("evnet/lab/paxos/cp1", b"x"))
    assert reader.read(ours)
    assert got == [("evnet/lab/paxos/cp1", b"x")] and acked == []  # the SUBACK waits for paho
    assert reader.pending_for_paho
    assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
    assert acked == [7] and not reader.pending_for_paho


def test_a_closed_connection_and_a_length_that_is_not_mqtt(pair) -> None:
    client, reader, ours, broker, got = pair
    broker.send(bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]))
    with pytest.raises(MalformedPacketError):
        reader.read(ours)
    broker.close()
    assert reader.read(ours) is False


def test_a_handler_that_raises_is_counted_and_the_next_message_still_comes(pair, caplog) -> None:
    client, reader, ours, broker, got = pair
    calls: list[bytes] = []

    def fails(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        calls.append(msg.payload)
        raise RecursionError("maximum recursion depth exceeded")  # what json.loads raises on "[" * 100000
    client.message_callback_add("evnet/lab/boom", fails)
    broker.send(publish("evnet/lab/boom", b"1") + publish("evnet/lab/paxos/cp1", b"2"))
    assert reader.read(ours)  # nothing escapes: the read loop goes on
    broker.send(publish("evnet/lab/paxos/cp1", b"3"))
    assert reader.read(ours)
    assert calls == [b"1"] and got == [("evnet/lab/paxos/cp1", b"2"), ("evnet/lab/paxos/cp1", b"3")]
    assert reader.dropped["handler_failed"] == 1
    assert "topic=evnet/lab/boom" in caplog.text and "error=RecursionError" in caplog.text


def test_a_publish_over_the_cap_is_skipped_as_it_comes_never_buffered(pair, caplog) -> None:
    client, _, ours, broker, got = pair
    reader = PacketReader(client, max_packet=1000)
    huge = publish("evnet/lab/paxos/cp1", b"[" * 4_000_000)
    broker.setblocking(False)
    sent = 0
    while sent < len(huge):  # as a broker would stream it, read as it comes
        try:
            sent += broker.send(huge[sent:sent + 65536])
        except BlockingIOError:
            pass
        assert reader.read(ours)
        assert len(reader._buf) < 100  # the bytes of the big message are dropped, not kept
    broker.setblocking(True)
    broker.send(publish("evnet/lab/paxos/cp2", b"small"))
    while not got:
        assert reader.read(ours)
    assert got == [("evnet/lab/paxos/cp2", b"small")]  # the connection goes on, in step
    assert reader.dropped["too_big"] == 1
    assert "topic=evnet/lab/paxos/cp1" in caplog.text and "reason=too_big" in caplog.text
    # a whole one in a single read is skipped just the same, and what follows it delivered
    broker.send(publish("evnet/lab/x", b"y" * 2000) + publish("evnet/lab/paxos/cp3", b"after"))
    assert reader.read(ours)
    assert got[-1] == ("evnet/lab/paxos/cp3", b"after") and reader.dropped["too_big"] == 2


def test_a_packet_other_than_publish_over_the_cap_ends_the_connection(pair) -> None:
    client, _, ours, broker, got = pair
    reader = PacketReader(client, max_packet=1000)
    broker.send(bytes([0x90]) + varint(5000) + b"x" * 10)  # a SUBACK of 5000 bytes: not a broker we know
    with pytest.raises(MalformedPacketError):
        reader.read(ours)


def test_an_exact_topic_goes_to_its_handler_and_not_through_paho(pair) -> None:
    client, _, ours, broker, got = pair
    direct: list[tuple[str, bytes]] = []
    reader = PacketReader(client, {"evnet/lab/paxos/cp1": lambda t, p: direct.append((t, p))})
    broker.send(publish("evnet/lab/paxos/cp1", b"a") + publish("evnet/lab/paxos/cp2", b"b"))
    assert reader.read(ours)
    assert direct == [("evnet/lab/paxos/cp1", b"a")]  # only its handler, though paho's filter matches it too
    assert got == [("evnet/lab/paxos/cp2", b"b")]  # the rest through paho's dispatch
