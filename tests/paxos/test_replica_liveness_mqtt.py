"""Liveness against a replay, with real replicas on a real Mosquitto (issue 9, A4 and A5).

Someone on the broker without the site key records the frames of a site and publishes them again:
the heartbeats of a leader that was then paused (SIGSTOP), and the Last Will an earlier connection
of today's leader left. Neither may hold off or cause an election. And while the broker is down,
nobody raises a ballot or writes a promise.
"""

from __future__ import annotations

import threading
import time

import pytest

from evnet.config import load_config
from evnet.config.site_key import site_key
from evnet.mqtt import MqttLink
from evnet.topics import SiteTopics
from firmware.paxos.core import messages as m
from firmware.paxos.core.kv import KVMachine
from firmware.paxos.io.client import KvClient, KvTimeout
from firmware.paxos.io.localsite import LocalSite
from firmware.paxos.io.process import write_site_configs
from firmware.paxos.io.runner import ReplicaRunner
from firmware.paxos.wire.codec import Codec, CodecError

from .conftest import wait_for

pytestmark = pytest.mark.slow
MEMBERS = ["cp1", "cp2", "cp3"]
REPLAY_EVERY = 0.040


class Recorder:
    """An MQTT client that records what a site's replicas send one another (what anyone on the broker sees)."""

    def __init__(self, cfg, name: str, topic_filter: str) -> None:
        self.frames: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.link = MqttLink(cfg.mqtt, name)
        self.link.subscribe(topic_filter, self._on, qos=0)
        assert self.link.start()

    def _on(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.frames.append((topic, bytes(payload)))

    def publish_every(self, frames: list[tuple[str, bytes]], every: float, stop: threading.Event) -> threading.Thread:
        def run() -> None:
            while not stop.wait(every):
                for topic, payload in frames:
                    self.link.publish(topic, payload, qos=0)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self.link.stop()


def leader_heartbeats(recorded: list[tuple[str, bytes]], codec: Codec, leader: str) -> dict[str, bytes]:
    """The newest message on each inbox that carries a Heartbeat from `leader`, as it was on the wire."""
    out = {}
    for topic, payload in recorded:
        try:
            msgs = [codec.decode_body(b) for b in codec.unbundle(payload)]
        except CodecError:
            continue
        if any(isinstance(x, m.Heartbeat) and x.sender == leader for x in msgs):
            out[topic] = payload
    return out


def test_replayed_heartbeats_of_a_paused_leader_do_not_hold_off_failover(tmp_path, mosquitto):
    with LocalSite(str(tmp_path), MEMBERS, mosquitto.url) as site:
        codec = Codec(site.cfg.site_id, site.key)
        topics = SiteTopics(site.cfg.mqtt.prefix, site.cfg.site_id)
        recorder = Recorder(site.cfg, "eavesdropper", topics.paxos("+"))
        stop = threading.Event()
        try:
            with site.client("probe", timeout=10.0, retry=0.01, max_retry=0.05) as c:
                c.put("k", "before")
                old = c.leader
                time.sleep(0.3)  # several heartbeat rounds recorded
                with recorder.lock:
                    replay = leader_heartbeats(recorder.frames, codec, old)
                assert sorted(replay) == sorted(topics.paxos(cp) for cp in MEMBERS if cp != old)
                site.pause(old)  # SIGSTOP: its connection stays up, so no Last Will
                t0 = time.perf_counter()
                recorder.publish_every(list(replay.items()), REPLAY_EVERY, stop)
                c.leader = None
                while time.perf_counter() - t0 < 5.0:
                    try:
                        c.put("k", "after")
                    except KvTimeout:
                        continue
                    if c.leader != old:
                        break
                took = time.perf_counter() - t0
                print(f"failover after SIGSTOP of the leader, its heartbeats replayed every 40 ms: {took * 1e3:.0f} ms")
                assert c.leader not in (None, old)
                assert took < 1.5, f"the replay held off failover for {took:.1f} s"  # usually 0.2-0.3 s
        finally:
            stop.set()
            recorder.close()
            site.resume(old)


@pytest.fixture
def runners(tmp_path, mosquitto):
    paths = write_site_configs(str(tmp_path / "etc"), MEMBERS, mosquitto.url)
    cfgs = {cp: load_config(p) for cp, p in paths.items()}
    made: list[ReplicaRunner] = []

    def start(cp: str) -> ReplicaRunner:
        r = ReplicaRunner(cfgs[cp], str(tmp_path / "data" / cp), machine=KVMachine()).start()
        made.append(r)
        return r
    yield cfgs, start
    for r in made:
        r.stop()


def die_without_goodbye(r: ReplicaRunner) -> None:
    """End the runner's loop and close its socket with no DISCONNECT: the broker publishes its Will."""
    r.request_stop()
    assert r._thread is not None
    r._thread.join(10)
    sock = r.link.client.socket()
    if sock is not None:
        sock.close()
    r.storage.close()
    r.datadir.close()


def current_leader(rs: dict[str, ReplicaRunner]) -> str:
    wait_for(lambda: sum(r.replica.is_leader for r in rs.values()) == 1
             and all(r.replica.leader is not None for r in rs.values()), what="one leader, known to all")
    return next(cp for cp, r in rs.items() if r.replica.is_leader)


def test_a_replayed_will_of_an_earlier_connection_does_not_depose_the_leader(runners):
    cfgs, start = runners
    cfg = cfgs["cp1"]
    topics = SiteTopics(cfg.mqtt.prefix, cfg.site_id)
    recorder = Recorder(cfg, "eavesdropper", topics.gone())
    stop = threading.Event()
    try:
        first = {cp: start(cp) for cp in MEMBERS}
        current_leader(first)
        for r in first.values():  # every replica's first connection dies: the broker publishes its Will
            die_without_goodbye(r)
        wait_for(lambda: len(recorder.frames) >= 3, what="the three Wills")
        wills = {topic: payload for topic, payload in recorder.frames}
        second = {cp: start(cp) for cp in MEMBERS}  # the same replicas, restarted (new epochs)
        leader = current_leader(second)
        ballot = second[leader].replica.ballot
        recorder.publish_every([(topics.gone(leader), wills[topics.gone(leader)])], REPLAY_EVERY, stop)
        with kv_client(cfg, "writer") as c:
            for i in range(40):  # two seconds of commits while the leader's old Will is replayed
                assert c.put("k", i) == "ok"
                time.sleep(0.05)
        assert second[leader].replica.is_leader and second[leader].replica.ballot == ballot
        assert all(r.hints == 0 for r in second.values())
    finally:
        stop.set()
        recorder.close()


def kv_client(cfg, name: str) -> KvClient:
    return KvClient(cfg.mqtt, cfg.site_id, name, site_key(cfg), timeout=5.0, retry=0.05).start()


def test_while_the_broker_is_down_no_replica_raises_its_ballot_or_writes_a_promise(runners, mosquitto):
    cfgs, start = runners
    rs = {cp: start(cp) for cp in MEMBERS}
    leader = current_leader(rs)
    round_before = rs[leader].replica.ballot.round
    with kv_client(cfgs["cp1"], "writer") as c:
        assert c.put("k", 1) == "ok"
    time.sleep(0.2)  # the followers' votes and learned slots are written
    persists = {cp: r.persists for cp, r in rs.items()}
    mosquitto.stop()
    time.sleep(3.0)  # about ten election timeouts and more
    assert {cp: r.replica.max_round for cp, r in rs.items()} == dict.fromkeys(MEMBERS, round_before)
    assert {cp: r.persists for cp, r in rs.items()} == persists  # not one promise fsynced
    mosquitto.start()
    with kv_client(cfgs["cp1"], "writer2") as c:
        assert c.put("k", 2) == "ok"
    assert max(r.replica.ballot.round for r in rs.values()) <= round_before + 2  # one election, two at worst
