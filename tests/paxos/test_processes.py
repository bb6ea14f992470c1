"""Real `evnet replica` processes on a real Mosquitto under client load, with faults injected.

Each test runs clients against the site, injects one fault (kill -9 the leader, SIGSTOP and
SIGCONT a replica, restart the broker, kill -9 every replica at once), lets it recover, reads
every key at the end, and checks the whole recorded history with the WGL checker: a lost
acknowledged write or a stale read makes it non-linearizable.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from firmware.paxos.io.client import KvTimeout
from firmware.paxos.io.localsite import LocalSite
from firmware.paxos.sim.linearizability import check_kv_history

pytestmark = pytest.mark.slow
KEYS = ["a", "b", "c"]


class Load:
    """`n` clients doing put/get/cas on `KEYS`, one request at a time each, recording the history."""

    def __init__(self, site: LocalSite, n: int = 4) -> None:
        self.site = site
        self.history: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._work, args=(i,), daemon=True) for i in range(n)]
        self.errors: list[BaseException] = []

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def acked(self) -> int:
        with self.lock:
            return sum(1 for op in self.history if not math.isinf(op["ret"]))

    def wait_acked(self, more: int, timeout: float = 20.0) -> None:
        """Wait until `more` further operations have been answered (the site is live)."""
        target = self.acked() + more
        deadline = time.monotonic() + timeout
        while self.acked() < target:
            assert time.monotonic() < deadline, f"the site answered {self.acked()} of {target} ops in {timeout} s"
            time.sleep(0.01)

    def _work(self, i: int) -> None:
        try:
            client = self.site.client(f"c{i}", timeout=2.0, retry=0.1, max_retry=0.3)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.errors.append(e)
            return
        rng, n, seen = random.Random(i), 0, {}
        try:
            while not self.stop.is_set():
                key = rng.choice(KEYS)
                r = rng.random()
                n += 1
                if r < 0.45:
                    op = {"op": "put", "key": key, "value": f"c{i}.{n}"}
                elif r < 0.75:
                    op = {"op": "get", "key": key}
                else:
                    op = {"op": "cas", "key": key, "expect": seen.get(key), "value": f"c{i}.{n}"}
                record = {"client": f"c{i}", **op, "call": time.monotonic(), "ret": math.inf, "result": None}
                try:
                    args = {k: v for k, v in op.items() if k != "op"}
                    record["result"] = client.request(op["op"], args)
                    record["ret"] = time.monotonic()
                    if op["op"] == "get":
                        seen[key] = record["result"]
                    elif op["op"] == "put" or record["result"] is True:
                        seen[key] = op["value"]
                except KvTimeout:
                    pass  # may or may not have taken effect: ret stays infinite
                with self.lock:
                    self.history.append(record)
        finally:
            client.close()


def final_reads(site: LocalSite, history: list[dict[str, Any]]) -> None:
    """Read every key once the site is whole again; these reads must see every acknowledged write."""
    with site.client("final", timeout=10.0, retry=0.1) as c:
        for key in KEYS:
            call = time.monotonic()
            result = c.get(key)
            history.append({"client": "final", "op": "get", "key": key, "call": call, "ret": time.monotonic(),
                            "result": result})


def check(load: Load, site: LocalSite) -> None:
    assert not load.errors, load.errors
    final_reads(site, load.history)
    result = check_kv_history(load.history)
    assert result.ok, result.explanation
    writes = [op for op in load.history if op["op"] != "get" and not math.isinf(op["ret"])]
    assert len(writes) > 20, "too little load to mean anything"


def leader_of(site: LocalSite) -> str:
    with site.client("probe", timeout=10.0, retry=0.1) as c:
        c.get("probe")
        assert c.leader in site.members
        return c.leader


@pytest.fixture
def site3(tmp_path, mosquitto):
    with LocalSite(str(tmp_path), ["cp1", "cp2", "cp3"], mosquitto.url) as site:
        yield site


def test_kill_9_of_the_leader_under_load_then_its_restart(site3):
    with Load(site3) as load:
        load.wait_acked(120)
        leader = leader_of(site3)
        site3.kill(leader)
        load.wait_acked(120)  # the others elected a new leader and go on
        assert leader_of(site3) != leader
        site3.start(leader)  # back with its durable state; it catches up
        load.wait_acked(120)
    check(load, site3)


def test_sigstop_and_sigcont_of_the_leader_under_load(site3):
    with Load(site3) as load:
        load.wait_acked(120)
        leader = leader_of(site3)
        site3.pause(leader)  # its connection stays up: no Last Will, only silence
        load.wait_acked(120)
        site3.resume(leader)  # it wakes up with an old ballot and must not break anything
        load.wait_acked(120)
    check(load, site3)


def test_a_broker_restart_under_load(site3, mosquitto):
    with Load(site3) as load:
        load.wait_acked(120)
        mosquitto.restart()
        load.wait_acked(120)
    check(load, site3)


@pytest.mark.parametrize("storage", ["file", "sqlite"])
def test_kill_9_of_every_replica_at_once_then_restart(tmp_path, mosquitto, storage):
    with LocalSite(str(tmp_path), ["cp1", "cp2", "cp3"], mosquitto.url, storage=storage) as site:
        with Load(site) as load:
            load.wait_acked(150)
            for cp in list(site.procs):
                site.kill(cp)
            for cp in site.members:
                site.start(cp)  # each recovers its promise and accepted entries from its own store
            load.wait_acked(150)
        check(load, site)


def test_five_replicas_lose_the_leader_and_a_paused_one(tmp_path, mosquitto):
    with LocalSite(str(tmp_path), ["cp1", "cp2", "cp3", "cp4", "cp5"], mosquitto.url) as site:
        with Load(site) as load:
            load.wait_acked(120)
            leader = leader_of(site)
            other = next(cp for cp in site.members if cp != leader)
            site.pause(other)
            site.kill(leader)
            load.wait_acked(120)  # three of five are a majority
            site.resume(other)
            site.start(leader)
            load.wait_acked(120)
        check(load, site)


def test_evnet_kv_commands_talk_to_a_site_of_evnet_replica_processes(site3):
    cfg = site3.paths["cp2"]

    def kv(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "evnet.cli", "kv", "--config", cfg, *args],
                              capture_output=True, text=True, timeout=60)

    assert kv("put", "door", '{"state": "open"}').stdout.strip() == '"ok"'
    assert json.loads(kv("get", "door").stdout) == {"state": "open"}
    assert kv("cas", "door", '{"state": "shut"}', "x").stdout.strip() == "false"
    assert kv("get", "nothing").stdout.strip() == "null"
    site3.stop_all()
    gone = kv("--timeout", "0.5", "get", "door")  # no replica left: the client says so and fails
    assert gone.returncode == 1 and "no answer" in gone.stderr
