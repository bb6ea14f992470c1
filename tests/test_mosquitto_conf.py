"""The Mosquitto configuration we ship: accounts, ACLs and TCP_NODELAY, on a real broker."""

from __future__ import annotations

import os
import queue
import re
import subprocess
from pathlib import Path

import pytest

from central_broker.brokers import MosquittoBroker, free_port, wait_listening
from evnet.config import MqttConfig
from evnet.mqtt import MqttLink

CONF = Path(__file__).resolve().parent.parent / "config" / "mosquitto"


@pytest.fixture
def site_broker(tmp_path: Path):
    port = free_port()
    conf = (CONF / "mosquitto.conf").read_text()
    conf = re.sub(r"listener 8883\n(?:\w+file .*\n)+", "", conf)  # no certificates in a test
    conf = conf.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
    conf = conf.replace("/etc/mosquitto/evnet.passwd", str(tmp_path / "passwd"))
    conf = conf.replace("/etc/mosquitto/evnet.acl", str(CONF / "evnet.acl"))
    conf = conf.replace("/var/lib/mosquitto/", f"{tmp_path}/")
    assert "set_tcp_nodelay true" in conf
    conf += "user root\n" if os.geteuid() == 0 else ""  # stay able to read this test's private folder
    (tmp_path / "m.conf").write_text(conf)
    (tmp_path / "passwd").touch()
    for user, password in (("bay1", "s1"), ("central", "s2")):
        subprocess.run(["mosquitto_passwd", "-b", str(tmp_path / "passwd"), user, password], check=True)
        (tmp_path / f"{user}.toml").write_text(f'username = "{user}"\npassword = "{password}"\n')
    proc = subprocess.Popen([MosquittoBroker().exe, "-c", str(tmp_path / "m.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening("127.0.0.1", port, 10, proc)
        yield port, tmp_path
    finally:
        proc.terminate()
        proc.wait(10)


def _link(port: int, tmp_path: Path, user: str) -> MqttLink:
    cfg = MqttConfig(url=f"mqtt://127.0.0.1:{port}", credentials_file=str(tmp_path / f"{user}.toml"))
    return MqttLink(cfg, f"{user}-test")


def test_accounts_and_acl(site_broker) -> None:
    port, tmp_path = site_broker
    central, bay1 = _link(port, tmp_path, "central"), _link(port, tmp_path, "bay1")
    assert central.start(5) and bay1.start(5)
    try:
        seen: queue.Queue[tuple[str, bytes]] = queue.Queue()
        assert central.subscribe("evnet/#", lambda t, p: seen.put((t, p)), wait=5)
        bay1.publish("evnet/s/cp/bay2/status", b"forged").wait_for_publish(5)
        bay1.publish("evnet/s/cp/bay1/status", b"mine").wait_for_publish(5)
        # Messages from one publisher on one broker arrive in order: the forged one would come first.
        assert seen.get(timeout=5) == ("evnet/s/cp/bay1/status", b"mine")
    finally:
        central.stop()
        bay1.stop()


def test_wrong_password_is_refused(site_broker) -> None:
    port, tmp_path = site_broker
    (tmp_path / "bad.toml").write_text('username = "bay1"\npassword = "nope"\n')
    cfg = MqttConfig(url=f"mqtt://127.0.0.1:{port}", credentials_file=str(tmp_path / "bad.toml"))
    link = MqttLink(cfg, "intruder")
    try:
        assert not link.start(wait=1.0)
    finally:
        link.stop()
