"""The MQTT client wrapper against real brokers: delivery, NODELAY, resubscribe, Last Will, payloads."""

from __future__ import annotations

import json
import queue
import socket

import pytest

from central_broker.brokers import MosquittoBroker
from evnet.config import MqttConfig
from evnet.mqtt import MAX_PAYLOAD, MqttLink, PayloadError, decode_payload, encode_payload, parse_url


def _link(url: str, name: str, version: str = "5", **kw: object) -> MqttLink:
    link = MqttLink(MqttConfig(url=url, version=version), name, **kw)  # type: ignore[arg-type]
    assert link.start(wait=5), f"{name} did not connect to {url}"
    return link


def _inbox(link: MqttLink, topic: str) -> queue.Queue[tuple[str, bytes]]:
    q: queue.Queue[tuple[str, bytes]] = queue.Queue()
    assert link.subscribe(topic, lambda t, p: q.put((t, p)), wait=5)
    return q


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt_broker"])
def test_publish_reaches_subscriber(broker: str, request: pytest.FixtureRequest) -> None:
    b = request.getfixturevalue(broker)
    version = "5" if broker == "mosquitto" else "3.1.1"
    sub, pub = _link(b.url, "sub", version), _link(b.url, "pub", version)
    try:
        inbox = _inbox(sub, "evnet/s1/#")
        pub.publish_json(pub.topic("s1", "cp", "cp1", "status"), {"status": "AVAILABLE"})
        topic, payload = inbox.get(timeout=5)
        assert topic == "evnet/s1/cp/cp1/status"
        assert decode_payload(payload) == {"v": 1, "status": "AVAILABLE"}
    finally:
        sub.stop()
        pub.stop()


def test_socket_has_nodelay(mosquitto) -> None:
    link = _link(mosquitto.url, "nodelay")
    try:
        sock = link.client.socket()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        link.stop()


def test_subscriptions_come_back_after_broker_restart(mosquitto) -> None:
    sub, pub = _link(mosquitto.url, "sub"), _link(mosquitto.url, "pub")
    try:
        inbox = _inbox(sub, "t/#")
        mosquitto.restart()
        assert sub.connected.wait(10) and pub.connected.wait(10)
        # The broker lost every subscription; only our on_connect can have made it again.
        for _ in range(50):
            pub.publish("t/x", b"after").wait_for_publish(2)
            try:
                assert inbox.get(timeout=0.2) == ("t/x", b"after")
                break
            except queue.Empty:
                continue
        else:
            pytest.fail("no message after the broker restart: subscription not renewed")
    finally:
        sub.stop()
        pub.stop()


def test_last_will_published_when_connection_dies(mosquitto) -> None:
    watcher = _link(mosquitto.url, "watcher")
    inbox = _inbox(watcher, "evnet/s1/cp/+/status")
    dying = _link(mosquitto.url, "cp1", will=("evnet/s1/cp/cp1/status", {"status": "DISCONNECTED"}, True))
    try:
        dying.client.socket().close()  # an abrupt loss, not a DISCONNECT: the broker sends the will
        topic, payload = inbox.get(timeout=10)
        assert topic == "evnet/s1/cp/cp1/status"
        assert decode_payload(payload)["status"] == "DISCONNECTED"
    finally:
        dying.client.loop_stop()
        watcher.stop()


@pytest.mark.parametrize("raw, words", [
    (b"\xff\xfe", "not UTF-8 JSON"),
    (b"{not json", "not UTF-8 JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"status": "AVAILABLE"}', 'expected "v": 1'),
    (b'{"v": 2}', 'expected "v": 1'),
    (b"[" * 100_000, "RecursionError"),  # json.loads itself raises it: was not a PayloadError
    (b'{"v": 1, "current": ' + b"9" * 5000 + b"}", "ValueError"),  # an int too long for int()
    (b" " * (MAX_PAYLOAD + 1), "more than the"),
])
def test_bad_payloads_are_named(raw: bytes, words: str) -> None:
    with pytest.raises(PayloadError, match=words):
        decode_payload(raw)


def test_payload_round_trip_puts_version_first() -> None:
    assert encode_payload({"a": 1}) == b'{"v":1,"a":1}'
    assert decode_payload(encode_payload({"a": [1, 2]})) == {"v": 1, "a": [1, 2]}


@pytest.mark.parametrize("url, host, port, tls", [
    ("mqtt://broker", "broker", 1883, False),
    ("mqtts://broker:9999", "broker", 9999, True),
])
def test_parse_url(url: str, host: str, port: int, tls: bool) -> None:
    a = parse_url(url)
    assert (a.host, a.port, a.tls) == (host, port, tls)


def test_parse_url_rejects_other_schemes() -> None:
    with pytest.raises(ValueError, match="expected mqtt://"):
        parse_url("http://broker")


@pytest.mark.parametrize("version", ["5", "3.1.1"])
def test_a_failing_handler_or_an_oversized_message_never_ends_the_link(version: str) -> None:
    """On a broker with no size limit of its own: MQTT 5 asks it not to send more than MAX_PACKET,
    on 3.1.1 the link drops it before any handler; a handler that raises is counted, and the next
    message comes."""
    with MosquittoBroker() as broker:
        sub, pub = _link(broker.url, "sub", version), _link(broker.url, "pub", version)
        try:
            got: queue.Queue[bytes] = queue.Queue()

            def handler(_t: str, payload: bytes) -> None:
                if payload == b"boom":
                    json.loads(b"[" * 100_000)  # RecursionError, as a JSON decoder without a guard raises
                got.put(payload)
            assert sub.subscribe("t/#", handler, wait=5)
            pub.publish("t/a", b"boom", qos=1).wait_for_publish(5)
            pub.client.publish("t/b", b"x" * (MAX_PAYLOAD + 1), qos=1).wait_for_publish(5)  # fits MAX_PACKET
            pub.client.publish("t/b", b"x" * (2 * MAX_PAYLOAD), qos=1).wait_for_publish(5)  # over MAX_PACKET
            pub.publish("t/c", b"after", qos=1).wait_for_publish(5)
            assert got.get(timeout=5) == b"after"  # paho's thread lives on, and nothing else came
            assert got.empty()
            assert sub.dropped[("handler_failed", "t/#")] == 1
            assert sub.dropped[("too_big", "t/#")] == (1 if version == "5" else 2)  # MQTT 5: the broker kept one
        finally:
            sub.stop()
            pub.stop()


@pytest.mark.parametrize("url, words", [
    ("mqtt://broker.invalid:1883", "host 'broker.invalid' does not resolve"),
    ("closed", "connection refused: no broker listens there"),
])
def test_an_unreachable_broker_is_said_once_with_its_cause_then_folded(url: str, words: str,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import threading

    if url == "closed":
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            url = f"mqtt://127.0.0.1:{s.getsockname()[1]}"
    caplog.set_level(logging.INFO, logger="evnet.mqtt")
    link = MqttLink(MqttConfig(url=url), "lonely")
    link.start(wait=None)
    try:
        tick = threading.Event()
        for _ in range(1000):  # paho retries after 0.05, 0.1, 0.2, ... s: wait for the third attempt
            if link.failures.counts["mqtt.unreachable"] >= 3:
                break
            tick.wait(0.01)
        assert link.failures.counts["mqtt.unreachable"] >= 3
    finally:
        link.stop()
    lines = [r.getMessage() for r in caplog.records if "mqtt.unreachable" in r.getMessage()]
    assert len(lines) == 1 and words in lines[0] and url in lines[0], lines
