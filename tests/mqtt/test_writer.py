"""`PacketWriter`: QoS-0 PUBLISHes packed by us, several in one write, that a real broker accepts.

The partial-write test uses a socket pair with a small buffer, so the socket takes only part of
what is written, as a busy TCP connection would.
"""

from __future__ import annotations

import socket
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from evnet.config.schema import MqttConfig
from evnet.mqtt import MqttLink
from evnet.mqtt.pump import LinkPump
from evnet.mqtt.reader import PacketReader
from evnet.mqtt.writer import PacketWriter


@pytest.mark.parametrize("version", ["5", "3.1.1"])
def test_messages_written_together_reach_a_subscriber_of_mosquitto_in_order(mosquitto, version) -> None:
    cfg = MqttConfig(url=mosquitto.url, version=version)
    got: list[tuple[str, bytes]] = []
    all_in = threading.Event()
    payloads = [b"a", bytes(range(256)) * 2, b"z" * 20_000, b""]  # 1-, 2- and 3-byte lengths, and none

    def on(topic: str, payload: bytes) -> None:
        got.append((topic, payload))
        if len(got) == 2 * len(payloads):
            all_in.set()
    sub = MqttLink(cfg, "writer-sub")
    assert sub.start(5)
    assert sub.subscribe("t/#", on, qos=0, wait=5)
    pub = MqttLink(cfg, "writer-pub")
    pub.subscribe("nothing/here", lambda _t, _p: None, qos=0)  # LinkPump is ready once a SUBACK came
    pump = LinkPump(pub)
    assert pump.connect(5)
    sent = [(f"t/{i % 2}", p) for i, p in enumerate(payloads + payloads)]
    pump.writer.publish(sent[:4])
    pump.writer.publish(sent[4:])
    try:
        assert all_in.wait(5), f"got {len(got)} of {len(sent)}"
        assert got == sent
        assert pump.writer.direct == len(sent)  # none went through paho's publish
    finally:
        sub.stop()
        pub.disconnect()


def connected_pair(v5: bool = True) -> tuple[mqtt.Client, socket.socket, socket.socket]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="w", protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
    ours, broker = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    broker.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ours.setblocking(False)
    client._sock = ours  # paho thinks it is connected through this socket
    client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
    return client, ours, broker


def test_what_the_socket_does_not_take_is_sent_by_paho_and_nothing_overtakes_it() -> None:
    client, ours, broker = connected_pair()
    writer = PacketWriter(client)
    big = bytes(range(256)) * 1000
    writer.publish([("t/1", big)])
    assert client._out_packet, "the socket took 256 kB at once: the test needs a smaller buffer"
    writer.publish([("t/2", b"after")])  # must queue behind the rest of the first
    assert writer.direct == 1
    reader_client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="r", protocol=mqtt.MQTTv5)
    got: list[tuple[str, bytes]] = []
    reader = PacketReader(reader_client, {"t/1": lambda t, p: got.append((t, p)),
                                          "t/2": lambda t, p: got.append((t, p))})
    broker.setblocking(False)
    while client._out_packet or len(got) < 2:
        assert client.loop_write() in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN)
        assert reader.read(broker)
    assert got == [("t/1", big), ("t/2", b"after")]
    ours.close()
    broker.close()


def test_a_client_that_is_not_connected_goes_through_paho() -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="w", protocol=mqtt.MQTTv5)
    writer = PacketWriter(client)
    writer.publish([("t/1", b"x")])  # paho answers "not connected" for QoS 0: nothing sent, nothing raised
    assert writer.direct == 0 and not client._out_packet


def test_a_wildcard_is_not_a_topic_to_publish_to() -> None:
    client, ours, broker = connected_pair()
    with pytest.raises(ValueError, match="not a topic"):
        PacketWriter(client).publish([("t/+", b"x")])
    ours.close()
    broker.close()
