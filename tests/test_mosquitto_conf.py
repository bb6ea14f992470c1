"""The Mosquitto configuration we ship: accounts, ACLs, the size limit and TCP_NODELAY, on a real broker.

The ACL's example site is `site1` with members bay1, bay2, bay3; `alice` and `bob` are clients
(accounts that only the ACL's patterns apply to).
"""

from __future__ import annotations

import dataclasses
import os
import queue
import re
import subprocess
from pathlib import Path

import pytest

from central_broker.brokers import MosquittoBroker, free_port, wait_listening
from evnet.config import MqttConfig, load_config
from evnet.config.site_key import site_key
from evnet.mqtt import MAX_PAYLOAD, MqttLink
from firmware.paxos.core.kv import KVMachine
from firmware.paxos.io.client import KvClient
from firmware.paxos.io.process import write_site_configs
from firmware.paxos.io.runner import ReplicaRunner

USERS = ("central", "bay1", "bay2", "bay3", "alice", "bob")

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
    for user in USERS:
        password = f"pw-{user}"
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


def _cfg(port: int, tmp_path: Path, user: str) -> MqttConfig:
    return MqttConfig(url=f"mqtt://127.0.0.1:{port}", credentials_file=str(tmp_path / f"{user}.toml"))


def _link(port: int, tmp_path: Path, user: str) -> MqttLink:
    return MqttLink(_cfg(port, tmp_path, user), f"{user}-test")


def _first(seen: queue.Queue[tuple[str, bytes]]) -> tuple[str, bytes]:
    return seen.get(timeout=5)


def test_the_size_limit_is_evnets_own_in_every_shipped_config_and_in_the_test_broker(mosquitto) -> None:
    for conf in ("mosquitto.conf", "laptop.conf"):
        assert re.findall(r"^message_size_limit (\d+)$", (CONF / conf).read_text(), re.M) == [str(MAX_PAYLOAD)]
    assert f"message_size_limit {MAX_PAYLOAD}\n" in mosquitto.conf_path.read_text()


def test_a_message_over_the_limit_is_dropped_by_the_broker(site_broker) -> None:
    port, tmp_path = site_broker
    central = _link(port, tmp_path, "central")
    assert central.start(5)
    try:
        seen: queue.Queue[tuple[str, bytes]] = queue.Queue()
        assert central.subscribe("evnet/#", lambda t, p: seen.put((t, p)), wait=5)
        with pytest.raises(ValueError, match="more than the"):  # never sent by evnet's own link
            central.publish("evnet/site1/paxos/bay1", b"\xb2" + bytes(MAX_PAYLOAD))
        central.client.publish("evnet/site1/paxos/bay1", b"\xb2" + bytes(MAX_PAYLOAD), qos=0)  # as another would
        central.publish("evnet/site1/paxos/bay1", b"small").wait_for_publish(5)
        assert _first(seen) == ("evnet/site1/paxos/bay1", b"small")
    finally:
        central.stop()


def test_accounts_and_acl(site_broker) -> None:
    port, tmp_path = site_broker
    central, bay1 = _link(port, tmp_path, "central"), _link(port, tmp_path, "bay1")
    assert central.start(5) and bay1.start(5)
    try:
        seen: queue.Queue[tuple[str, bytes]] = queue.Queue()
        assert central.subscribe("evnet/#", lambda t, p: seen.put((t, p)), wait=5)
        bay1.publish("evnet/site1/cp/bay2/status", b"forged").wait_for_publish(5)
        bay1.publish("evnet/site1/cp/bay1/status", b"mine").wait_for_publish(5)
        # Messages from one publisher on one broker arrive in order: the forged one would come first.
        assert seen.get(timeout=5) == ("evnet/site1/cp/bay1/status", b"mine")
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


def test_only_members_speak_paxos_and_each_client_reads_only_its_own_replies(site_broker) -> None:
    """A real site of three replicas on the shipped configuration, accounts and ACL."""
    port, tmp_path = site_broker
    paths = write_site_configs(str(tmp_path / "etc"), ["bay1", "bay2", "bay3"], f"mqtt://127.0.0.1:{port}",
                               site="site1")
    cfgs = {cp: load_config(p) for cp, p in paths.items()}
    cfgs = {cp: dataclasses.replace(c, mqtt=_cfg(port, tmp_path, cp)) for cp, c in cfgs.items()}
    runners = {cp: ReplicaRunner(c, str(tmp_path / "data" / cp), machine=KVMachine()).start() for cp, c in cfgs.items()}
    key = site_key(cfgs["bay1"])
    links = {u: _link(port, tmp_path, u) for u in ("central", "alice", "bay1")}
    alice = KvClient(_cfg(port, tmp_path, "alice"), "site1", "alice", key, timeout=10).start()
    bob = KvClient(_cfg(port, tmp_path, "bob"), "site1", "bob", key, timeout=10).start()
    try:
        assert all(link.start(5) for link in links.values())
        assert alice.put("door", "open") == "ok" and bob.get("door") == "open"  # a site of members works
        seen: queue.Queue[tuple[str, bytes]] = queue.Queue()  # only what this test publishes, not the site's traffic
        assert links["central"].subscribe("evnet/site1/#", lambda t, p: p in (b"forged", b"mine", b"peer")
                                          and seen.put((t, p)), wait=5)
        # A client may publish on request, and nowhere in paxos/: not an inbox, not a Last Will.
        for topic in ("evnet/site1/paxos/bay2", "evnet/site1/paxos/bay2/gone", "evnet/site1/reply/bob"):
            links["alice"].publish(topic, b"forged", qos=1).wait_for_publish(5)
        links["alice"].publish("evnet/site1/request", b"mine", qos=1).wait_for_publish(5)
        assert _first(seen) == ("evnet/site1/request", b"mine")
        # A member writes its peers' inboxes, but no other member's Last Will.
        links["bay1"].publish("evnet/site1/paxos/bay2/gone", b"forged", qos=1).wait_for_publish(5)
        links["bay1"].publish("evnet/site1/paxos/bay2", b"peer", qos=1).wait_for_publish(5)
        assert _first(seen) == ("evnet/site1/paxos/bay2", b"peer")
        # A client reads its own replies only (and no replica's inbox).
        mine: queue.Queue[tuple[str, bytes]] = queue.Queue()
        for topic in ("evnet/site1/reply/+", "evnet/site1/paxos/+"):
            links["alice"].subscribe(topic, lambda t, p: mine.put((t, p)), wait=5)
        for topic in ("evnet/site1/reply/bob", "evnet/site1/paxos/bay1", "evnet/site1/reply/alice"):
            links["central"].publish(topic, b"x", qos=1).wait_for_publish(5)
        assert _first(mine) == ("evnet/site1/reply/alice", b"x")
        # Only a member publishes the site's state; every client may read it.
        links["alice"].subscribe("evnet/site1/state", lambda t, p: mine.put((t, p)), wait=5)
        links["alice"].publish("evnet/site1/state", b"forged", qos=1).wait_for_publish(5)
        links["bay1"].publish("evnet/site1/state", b"mine", qos=1).wait_for_publish(5)
        assert _first(mine) == ("evnet/site1/state", b"mine")
        assert bob.put("door", "shut") == "ok" and alice.get("door") == "shut"
    finally:
        alice.close()
        bob.close()
        for link in links.values():
            link.stop()
        for r in runners.values():
            r.stop()
