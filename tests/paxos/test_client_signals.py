"""What a client learns from the site besides its answers (issue 9, A7 and C5).

A sign that the leader changed — the dead leader's Last Will, a reply that names another leader
— makes a waiting client ask again at once, not after its retry interval; and a client that
hears nothing says why that may be.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from evnet.config.schema import MqttConfig
from evnet.mqtt import MqttLink
from evnet.topics import SiteTopics
from firmware.paxos.core import messages as m
from firmware.paxos.io.client import KvClient, KvSession
from firmware.paxos.io.localsite import LocalSite
from firmware.paxos.io.process import write_site_configs
from firmware.paxos.wire.codec import Codec

KEY = b"k" * 32


@pytest.mark.slow
def test_a_kill_9_of_the_leader_costs_a_client_the_election_not_its_retry_interval(tmp_path, mosquitto):
    # A retry interval of 5 s: a client that waited it out would take 5 s after the kill.
    with LocalSite(str(tmp_path), ["cp1", "cp2", "cp3"], mosquitto.url) as site, \
            site.client("alice", timeout=30.0, retry=5.0, max_retry=5.0) as alice:
        for _ in range(3):
            assert alice.put("k", 1) == "ok"
            old = alice.leader
            site.kill(old)  # kill -9: the broker publishes its Last Will, which the client hears
            t = time.monotonic()
            assert alice.put("k", 2) == "ok"
            elapsed = time.monotonic() - t
            assert alice.leader != old
            assert elapsed < 2.5, f"{elapsed:.3f} s: the client waited for its retry interval"
            site.start(old)


def test_a_reply_naming_another_leader_makes_a_waiting_client_ask_it_at_once(mosquitto) -> None:
    """Two clients of one session: `a`'s answer names a new leader while `b` waits on the old one."""
    cfg = MqttConfig(url=mosquitto.url)
    codec, topics = Codec("lab", KEY), SiteTopics(cfg.prefix, "lab")
    seen: list[tuple[str, str | None]] = []  # (client, to) of every request the site got
    site = MqttLink(cfg, "scripted-site")

    def on_request(_topic: str, payload: bytes) -> None:  # the old leader cp1 answers only `a`; cp2 anyone
        session, to, reqs = codec.decode_requests(payload)
        for r in reqs:
            seen.append((r.sender, to))
            leader = "cp2" if to == "cp2" else "cp1" if r.sender == "a" else None
            if leader is not None:
                site.publish(topics.reply(session), codec.encode_replies(
                    leader, [m.ClientReply("lab", leader, r.sender, r.req, b'"ok"')]), qos=0)
    assert site.start(5) and site.subscribe(topics.request, on_request, qos=0, wait=5)
    session = KvSession(cfg, "lab", "proc1", KEY)
    a = KvClient(cfg, "lab", "a", KEY, session=session, retry=5.0, timeout=20).start()
    b = KvClient(cfg, "lab", "b", KEY, session=session, retry=5.0, timeout=20).start()
    try:
        assert a.get("x") == "ok" and a.leader == "cp1"
        result: list[object] = []
        waiting = threading.Thread(target=lambda: result.append(b.put("x", 1)))
        t = time.monotonic()
        waiting.start()
        while not any(client == "b" for client, _ in seen):  # b asked (cp1, its session's leader): no answer
            assert time.monotonic() - t < 5, "b's request never came"
            time.sleep(0.005)
        # Some other request of the session is answered by cp2 (a new leader took over).
        site.publish(topics.reply("proc1"), codec.encode_replies(
            "cp2", [m.ClientReply("lab", "cp2", "a", 1, b'"ok"')]), qos=0)
        waiting.join(10)
        assert result == ["ok"] and time.monotonic() - t < 2.5  # not its 5 s retry interval
        assert seen[-2:] == [("b", "cp1"), ("b", "cp2")]  # it asked the new leader by name
    finally:
        session.close()
        site.stop()


def _kv(cfg_path: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evnet.cli", "kv", "--config", cfg_path, "--timeout", "1", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_evnet_kv_says_why_it_may_hear_nothing(tmp_path, mosquitto):
    with LocalSite(str(tmp_path / "site"), ["cp1", "cp2", "cp3"], mosquitto.url):
        wrong_key = write_site_configs(str(tmp_path / "wrong-key"), ["cp1", "cp2", "cp3"], mosquitto.url)
        out = _kv(wrong_key["cp1"], "get", "k")
        assert out.returncode == 1 and "no answer" in out.stderr
        assert "bad MAC: the site key differs from the replicas'" in out.stderr, out.stderr
        wrong_site = write_site_configs(str(tmp_path / "wrong-site"), ["cp1", "cp2", "cp3"], mosquitto.url,
                                        site="elsewhere")
        out = _kv(wrong_site["cp1"], "get", "k")
        assert out.returncode == 1 and "nothing came back" in out.stderr and "'elsewhere'" in out.stderr, out.stderr
