"""What Central sees of the engine on a real Mosquitto: retained status, the Last Will, a clean goodbye."""

from __future__ import annotations

import json
import queue

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from .conftest import wait_for


@pytest.fixture
def central(mosquitto):
    got: queue.SimpleQueue = queue.SimpleQueue()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="central-view")
    sub.on_message = lambda _c, _u, msg: got.put((msg.topic, json.loads(msg.payload), msg.retain))
    sub.connect(mosquitto.host, mosquitto.port)
    sub.subscribe("evnet/s1/cp/cp1/status", qos=1)
    sub.loop_start()
    statuses: list[str] = []

    def saw(status):
        def check():
            while True:
                try:
                    statuses.append(got.get_nowait()[1]["status"])
                except queue.Empty:
                    return status in statuses
        return check

    yield saw, statuses
    sub.loop_stop()
    sub.disconnect()


def test_status_is_retained_the_last_will_says_disconnected_and_a_reconnect_restores_it(evse_factory, mosquitto,
                                                                                         central):
    saw, statuses = central
    evse = evse_factory(speed=10.0, mqtt_url=mosquitto.url)
    wait_for(saw("AVAILABLE"), what="AVAILABLE")
    late = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="late-joiner")
    retained: queue.SimpleQueue = queue.SimpleQueue()
    late.on_message = lambda _c, _u, msg: retained.put((json.loads(msg.payload), msg.retain))
    late.connect(mosquitto.host, mosquitto.port)
    late.subscribe("evnet/s1/cp/cp1/status", qos=1)
    late.loop_start()
    body, was_retained = retained.get(timeout=5)
    late.loop_stop()
    late.disconnect()
    assert was_retained and body["status"] == "AVAILABLE" and body["location"] == "Bay 1" and body["v"] == 1
    assert body["price_eur_kwh"] == 0.30 and body["max_current_a"] == 16 and "ts" in body

    evse.publisher.link.client.socket().close()  # the connection dies without a DISCONNECT: the broker sends the Will
    wait_for(saw("DISCONNECTED"), what="the Last Will")
    statuses.clear()
    wait_for(saw("AVAILABLE"), what="the status again after paho reconnects")


def test_a_clean_stop_says_disconnected(evse_factory, mosquitto, central):
    saw, _ = central
    evse = evse_factory(speed=10.0, mqtt_url=mosquitto.url)
    wait_for(saw("AVAILABLE"), what="AVAILABLE")
    evse.stop()
    wait_for(saw("DISCONNECTED"), what="DISCONNECTED on a clean stop")


def read_until(stream, words: str, timeout: float = 20.0) -> str:
    """Lines of a child's stderr until one holds `words` (a reader thread, so a silent child cannot hang us)."""
    import threading

    found: queue.SimpleQueue = queue.SimpleQueue()

    def reader():
        for line in stream:
            if words in line:
                found.put(line)
                return
        found.put(None)

    threading.Thread(target=reader, daemon=True).start()
    try:
        line = found.get(timeout=timeout)
    except queue.Empty:
        line = None
    assert line is not None, f"no line with {words!r}"
    return line


def test_evnet_evse_says_when_the_broker_host_does_not_resolve(tmp_path):
    import signal
    import subprocess
    import sys

    from .conftest import make_config

    cfg = make_config(tmp_path, mqtt_url="mqtt://broker.invalid:1883")
    proc = subprocess.Popen([sys.executable, "-m", "evnet.cli", "evse", "--config", cfg.path, "--no-monitor"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = read_until(proc.stderr, "event=mqtt.unreachable")
        assert "cp=cp1" in line and "host 'broker.invalid' does not resolve" in line and "retrying=True" in line
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
