"""`KvSession`: the clients of one process share a connection; their requests travel together.

The site here is a scripted leader on a real Mosquitto: it answers only once it holds a request
from every client, all in one reply message, so each round wakes the same threads at once.
"""

from __future__ import annotations

import threading

from evnet.config.schema import MqttConfig
from evnet.mqtt import MqttLink
from evnet.topics import SiteTopics
from firmware.paxos.core import messages as m
from firmware.paxos.io.client import KvClient, KvSession
from firmware.paxos.wire.codec import Codec

KEY = b"k" * 32
CLIENTS = 4
ROUNDS = 4


def test_the_next_requests_of_the_threads_one_reply_woke_leave_in_one_message(mosquitto) -> None:
    cfg = MqttConfig(url=mosquitto.url)
    codec, topics = Codec("lab", KEY), SiteTopics(cfg.prefix, "lab")
    messages: list[int] = []  # requests per message, as the leader received them
    held: list[tuple[str, m.ClientRequest]] = []
    leader = MqttLink(cfg, "scripted-leader")

    def on_request(_topic: str, payload: bytes) -> None:  # paho's thread
        session, _to, reqs = codec.decode_requests(payload)
        messages.append(len(reqs))
        held.extend((session, r) for r in reqs)
        if len(held) == CLIENTS:
            replies = [m.ClientReply("lab", "cp1", r.sender, r.req, b'"ok"') for _, r in held]
            answer = codec.encode_replies("cp1", replies)
            # A commit's latency, long beside the microseconds between a thread's request and its
            # wait: every thread but the reading one is asleep when the answer comes.
            threading.Timer(0.05, leader.publish, (topics.reply(held[0][0]), answer), {"qos": 0}).start()
            held.clear()
    assert leader.start(5)
    assert leader.subscribe(topics.request, on_request, qos=0, wait=5)
    session = KvSession(cfg, "lab", "proc1", KEY)
    session.linger = 5.0  # the woken threads' requests wait for each other, however slow this machine
    clients = [KvClient(cfg, "lab", f"t{i}", KEY, session=session, timeout=20).start() for i in range(CLIENTS)]
    results: list[str] = []

    def run(client: KvClient) -> None:
        for n in range(ROUNDS):
            results.append(client.put("k", n))
    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == ["ok"] * CLIENTS * ROUNDS
        # the first round's requests leave as their threads start; every later round is one reply
        # that wakes the other threads, so the round's requests travel as one message
        first, later = 0, list(messages)
        while first < CLIENTS:
            first += later.pop(0)
        assert later == [CLIENTS] * (ROUNDS - 1)
    finally:
        session.close()
        leader.stop()


def test_a_closed_session_gives_back_its_file_descriptors() -> None:
    """Each session's pump holds a socket pair (its wake-up); a process that opens many sessions (a
    benchmark, a tool run in a loop) must not run out of descriptors."""
    import os

    from evnet.config import MqttConfig
    from firmware.paxos.io.client import KvSession

    before = len(os.listdir("/proc/self/fd"))
    for n in range(20):
        KvSession(MqttConfig(url="mqtt://127.0.0.1:1"), "s", f"fd{n}", b"k" * 32).close()
    assert len(os.listdir("/proc/self/fd")) <= before + 2
