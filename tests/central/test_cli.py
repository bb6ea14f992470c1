"""`evnet central` as a process: its retained status and Last Will, its registry across a kill -9, its own
embedded broker where asked."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from central_broker.brokers import free_port, wait_listening
from central_broker.registry import Registry
from evnet.config import MqttConfig
from evnet.mqtt import MqttLink, decode_payload

from .conftest import until

pytestmark = pytest.mark.slow

TOML = """\
[mqtt]
url = "{url}"
version = "{version}"
[central]
broker = "{broker}"
web_listen = "127.0.0.1:{web}"
"""


def run_central(root: Path, url: str, broker: str = "external", version: str = "5") -> tuple[subprocess.Popen, str]:
    web = free_port()
    (root / "central.toml").write_text(TOML.format(url=url, broker=broker, web=web, version=version))
    log = open(root / "central.log", "ab")  # noqa: SIM115 - the child keeps its own copy
    proc = subprocess.Popen([sys.executable, "-m", "evnet.cli", "central", "--config", str(root / "central.toml"),
                             "--no-tui"], stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wait_listening("127.0.0.1", web, 30, proc)
    return proc, f"http://127.0.0.1:{web}"


def view(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/view", timeout=5) as r:
        return json.load(r)


def watch(url: str, topic: str, version: str = "5") -> tuple[MqttLink, queue.Queue]:
    got: queue.Queue = queue.Queue()
    link = MqttLink(MqttConfig(url=url, version=version), f"watch-{os.getpid()}")
    assert link.start(10)
    assert link.subscribe(topic, lambda _t, p: got.put(p), wait=10)
    return link, got


def test_status_will_and_registry_across_kill_9(tmp_path: Path, mosquitto) -> None:
    proc, web = run_central(tmp_path, mosquitto.url)
    link, central_status = watch(mosquitto.url, "evnet/central/status")
    try:
        assert decode_payload(central_status.get(timeout=10))["status"] == "ONLINE"
        status = {"v": 1, "cp": "cp7", "status": "AVAILABLE", "location": "Gate 7", "price_eur_kwh": 0.41, "ts": 1.0}
        link.publish_json("evnet/north/cp/cp7/status", status, retain=True).wait_for_publish(5)
        until(lambda: [c for c in view(web)["cps"] if c["cp"] == "cp7" and c["status"] == "AVAILABLE"], 10,
              "cp7 on the dashboard")
        until(lambda: [k for k in Registry(str(tmp_path / "central.db")).charge_points() if k.location == "Gate 7"],
              10, "cp7 in the registry")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert decode_payload(central_status.get(timeout=30))["status"] == "DISCONNECTED"  # its Last Will
        link.publish("evnet/north/cp/cp7/status", b"", retain=True).wait_for_publish(5)  # cp7 silent from now on
        proc, web = run_central(tmp_path, mosquitto.url)
        cp7 = [c for c in view(web)["cps"] if c["cp"] == "cp7"]
        assert [(c["status"], c["colour"], c["location"], c["price_eur_kwh"]) for c in cp7] == \
            [("DISCONNECTED", "grey", "Gate 7", 0.41)]
    finally:
        link.stop()
        proc.terminate()
        assert proc.wait(20) == 0


def test_it_starts_the_embedded_broker_when_asked(tmp_path: Path) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    proc, web = run_central(tmp_path, url, broker="embedded", version="5")  # amqtt: Central moves to 3.1.1 itself
    try:
        link, central_status = watch(url, "evnet/central/status", version="3.1.1")
        body = decode_payload(central_status.get(timeout=10))
        assert (body["status"], body["web"]) == ("ONLINE", web + "/")
        link.stop()
        assert view(web)["cps"] == []
    finally:
        proc.terminate()
        assert proc.wait(20) == 0


def test_controls_refuse_what_a_page_of_another_origin_could_send(tmp_path: Path, mosquitto) -> None:
    proc, web = run_central(tmp_path, mosquitto.url)

    def post(body: bytes, kind: str = "application/json", host: str | None = None) -> dict:
        req = urllib.request.Request(f"{web}/api/action", data=body, headers={"Content-Type": kind}, method="POST")
        if host:
            req.add_header("Host", host)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as exc:
            return json.load(exc)
    try:
        ask = json.dumps({"site": "north", "action": "stop", "cp": "all"}).encode()
        assert post(ask, kind="text/plain")["error"] == "not_json"          # what a cross-site form can send
        assert post(ask, host="evil.example:80")["error"] == "wrong_host"   # DNS rebinding
        assert post(b"[1, 2]")["error"] == "bad_request"
        assert post(ask)["error"] == "unknown_site"                          # no client made for any name
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
