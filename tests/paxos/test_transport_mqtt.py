"""Three replicas in one process over a real Mosquitto: commands commit; forged frames are dropped and counted."""

from __future__ import annotations

import threading

import pytest

from evnet.clock import ManualClock
from evnet.config import MqttConfig, load_config
from evnet.config.site_key import site_key
from evnet.mqtt import MqttLink
from evnet.topics import SiteTopics
from firmware.paxos.core import messages as m
from firmware.paxos.core.kv import KVMachine
from firmware.paxos.core.types import Ballot
from firmware.paxos.io.client import KvClient, KvSession, KvTimeout
from firmware.paxos.io.process import write_site_configs
from firmware.paxos.io.runner import ReplicaRunner
from firmware.paxos.io.transport import MqttTransport
from firmware.paxos.wire.codec import MAX_MESSAGE, Codec

from .conftest import wait_for

MEMBERS = ["cp1", "cp2", "cp3"]


@pytest.fixture
def site(tmp_path, mosquitto):
    paths = write_site_configs(str(tmp_path / "etc"), MEMBERS, mosquitto.url)
    cfgs = {cp: load_config(p) for cp, p in paths.items()}
    runners = {cp: ReplicaRunner(cfgs[cp], str(tmp_path / "data" / cp), machine=KVMachine()).start() for cp in MEMBERS}
    yield cfgs, runners
    for r in runners.values():
        r.stop()


def client_for(cfg, name: str, **kw) -> KvClient:
    return KvClient(cfg.mqtt, cfg.site_id, name, site_key(cfg), **kw).start()


def test_a_site_of_three_elects_a_leader_and_commits_through_the_broker(site):
    cfgs, runners = site
    with client_for(cfgs["cp1"], "alice") as alice, client_for(cfgs["cp1"], "bob") as bob:
        assert alice.put("door", "open") == "ok"
        assert bob.get("door") == "open"
        assert bob.cas("door", "open", "shut") is True
        assert alice.cas("door", "open", "ajar") is False
        assert alice.get("door") == "shut"
        leader = alice.leader
        assert leader in MEMBERS and runners[leader].replica.is_leader
        # only the leader hears client requests; followers of a known leader do not pay for them
        assert [cp for cp, r in runners.items() if r.transport.requests_subscribed] == [leader]
    # every replica learns and applies the same commands
    wait_for(lambda: len({r.replica.learner.chosen_upto for r in runners.values()}) == 1, what="replicas to agree")
    assert all(r.replica.learner.machine.machine.data == {"door": "shut"} for r in runners.values())
    assert all(sum(r.transport.dropped.values()) == 0 for r in runners.values())


def test_clients_sharing_a_session_are_answered_together_and_json_clients_in_json(site):
    cfgs, runners = site
    cfg = cfgs["cp1"]
    key = site_key(cfg)
    session = KvSession(cfg.mqtt, cfg.site_id, "proc1", key)
    clients = [KvClient(cfg.mqtt, cfg.site_id, f"t{i}", key, session=session).start() for i in range(4)]
    results: dict[int, list] = {i: [] for i in range(4)}

    def run(i: int) -> None:
        for n in range(25):
            results[i].append(clients[i].put(f"k{i}", n))
            results[i].append(clients[i].get(f"k{i}"))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(results[i] == [x for n in range(25) for x in ("ok", n)] for i in range(4))
    leader = runners[clients[0].leader]
    assert all(leader.transport.sessions[f"t{i}"] == "proc1" for i in range(4))
    session.close()
    # the public JSON form: answered in JSON on the client's own reply topic
    topics = SiteTopics(cfg.mqtt.prefix, cfg.site_id)
    got: list[bytes] = []
    link = MqttLink(cfg.mqtt, "json-client")
    link.subscribe(topics.reply("jc"), lambda _t, payload: got.append(payload), qos=1)
    assert link.start()
    try:
        codec = Codec(cfg.site_id, key)
        wait_for(lambda: link.client.publish(topics.request, codec.encode_request("jc", 1, "get", {"key": "k0"}),
                                             qos=1) is not None and bool(got), what="a JSON reply")
        assert codec.decode_reply(got[0])["result"] == 24
    finally:
        link.stop()


def test_forged_and_foreign_frames_are_dropped_and_counted(site, mosquitto):
    cfgs, runners = site
    cfg = cfgs["cp1"]
    topics = SiteTopics(cfg.mqtt.prefix, cfg.site_id)
    good = Codec(cfg.site_id, site_key(cfg))
    forger = Codec(cfg.site_id, b"k" * 32)
    with client_for(cfg, "dave") as dave:
        dave.get("k")
        leader = runners[dave.leader]  # requests are heard by the leader (followers of a known leader unsubscribe)
    link = MqttLink(cfg.mqtt, "intruder")
    assert link.start()
    try:
        target = runners["cp2"]
        evil = m.Prepare(cfg.site_id, "cp1", Ballot(10**9, "cp1"), 0)
        link.publish(topics.paxos("cp2"), forger.encode(evil), qos=1)  # wrong key
        stranger = m.Heartbeat(cfg.site_id, "mallory", Ballot(1, "x"), 0, 1, 1, 0, 0)
        link.publish(topics.paxos("cp2"), good.encode(stranger), qos=1)
        link.publish(topics.paxos("cp2"), b"\x01garbage", qos=1)
        link.publish(topics.request, forger.encode_request("eve", 1, "put", {"key": "k", "value": 1}), qos=1)
        link.publish(topics.request, good.encode_request("cp3", 1, "put", {"key": "k", "value": 1}), qos=1)
        wait_for(lambda: target.transport.dropped["mac"] >= 1 and target.transport.dropped["unknown_sender"] >= 1
                 and target.transport.dropped["malformed"] >= 1, what="drops at cp2 to be counted")
        wait_for(lambda: leader.transport.dropped["mac"] >= 1 and leader.transport.dropped["unknown_sender"] >= 1,
                 what="dropped requests to be counted at the leader")
        assert target.replica.acceptor.promised.round < 10**9  # the forged Prepare changed nothing
        # a client with the wrong key is never answered
        bad = KvClient(cfg.mqtt, cfg.site_id, "eve", b"k" * 32, timeout=0.5).start()
        with pytest.raises(KvTimeout):
            bad.put("k", 1)
        bad.close()
    finally:
        link.stop()


def test_the_last_will_of_the_leader_makes_followers_elect_at_once(site):
    cfgs, runners = site
    with client_for(cfgs["cp1"], "carol") as carol:
        carol.put("x", 1)
        old = carol.leader
        old_ballot = runners[old].replica.ballot
        # A real kill -9 is in test_processes; here the old leader's loop stops and its connection
        # dies without a goodbye, so the broker publishes its Last Will.
        runners[old]._stop.set()
        runners[old]._thread.join(10)
        runners[old].link.client.socket().close()
        wait_for(lambda: any(r.hints for cp, r in runners.items() if cp != old), what="a follower to take the hint")
        assert carol.put("x", 2) == "ok"
        assert carol.leader != old
        assert runners[carol.leader].replica.is_leader and runners[carol.leader].replica.ballot > old_ballot


def _offline_transport(clock: ManualClock) -> tuple[MqttTransport, list[tuple[str, bytes]], Codec]:
    """A transport whose link never connects: what it would publish lands in a list."""
    codec = Codec("lab", b"s" * 32)
    link = MqttLink(MqttConfig(url="mqtt://127.0.0.1:9"), "offline")
    out: list[tuple[str, bytes]] = []
    return MqttTransport(link, codec, "cp1", MEMBERS, lambda *_: None, publish=out.extend, clock=clock), out, codec


def test_a_message_too_big_to_travel_is_logged_at_the_sender_and_the_rest_goes():
    transport, out, codec = _offline_transport(ManualClock())
    big = m.ClientReply("lab", "cp1", "c1", 1, b"x" * MAX_MESSAGE)  # the broker would drop it without a word
    transport.send_all([("cp2", big), ("cp2", m.Heartbeat("lab", "cp1", Ballot(1, "cp1"), 0, 1, 1, 0, 0))])
    transport.flush()
    assert [codec.decode(p) for _, p in out] == [m.Heartbeat("lab", "cp1", Ballot(1, "cp1"), 0, 1, 1, 0, 0)]
    assert transport.dropped["unsendable"] == 1


def test_a_binary_request_with_a_bad_mac_gets_an_empty_signed_answer_at_most_once_a_second():
    clock = ManualClock()
    transport, out, codec = _offline_transport(clock)
    forged = Codec("lab", b"w" * 32).encode_requests("app-7", None, [("app-7", 1, b"{}")])
    for _ in range(5):
        transport._on_request("evnet/lab/request", forged)
    transport._on_request("evnet/lab/request", Codec("lab", b"w" * 32).encode_request("app-8", 1, "get", {}))
    transport.flush()
    assert [(t, codec.decode_replies(p)) for t, p in out] == [("evnet/lab/reply/app-7", [])]  # signed, says nothing
    clock.advance(1.0)
    transport._on_request("evnet/lab/request", forged)
    transport.flush()
    assert len(out) == 2 and transport.dropped["mac"] == 7


def test_a_message_whose_handling_raises_is_counted_and_the_replica_goes_on(site, monkeypatch):
    """A bug in the core on one authentic message: logged with its sender, and the replica still serves."""
    cfgs, runners = site
    with client_for(cfgs["cp1"], "alice") as alice:
        assert alice.put("k", 1) == "ok"
        follower = next(r for r in runners.values() if not r.replica.is_leader)
        real_step, failed = follower.replica.step, []

        def step_with_a_bug(msg, now):
            if isinstance(msg, m.Heartbeat) and not failed:
                failed.append(msg.sender)
                raise KeyError("a bug")
            return real_step(msg, now)
        monkeypatch.setattr(follower.replica, "step", step_with_a_bug)
        wait_for(lambda: follower.handler_failures == 1, what="the failing heartbeat to be handled")
        assert follower._thread is not None and follower._thread.is_alive()
        assert alice.put("k", 2) == "ok"
        wait_for(lambda: follower.replica.learner.machine.machine.data == {"k": 2}, what="the follower to apply")
