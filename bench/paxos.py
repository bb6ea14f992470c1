"""Print, in one run, evnet's Paxos over Mosquitto against a 3-member etcd, both on loopback, fsync on.

    python bench/paxos.py [--seq 2000] [--seconds 5] [--failovers 10] [--no-etcd]

For each: sequential put latency p50/p99 (one client), throughput with 16 concurrent clients
(4 processes x 4 threads, each thread one client with one request at a time, the same load shape
for both; evnet's 4 clients of a process share one broker connection, a `KvSession`, etcd's have
an HTTP connection each, as its JSON gateway answers one request at a time per connection), and
the time from kill -9 of the leader to the first put committed through a new leader (median of
--failovers); for evnet also after a SIGSTOP of the leader (its connection stays up: no Last
Will, the election timeout alone). Then the ratios.
etcd (Debian `etcd-server`) is installed with apt-get if missing, or skipped with a clear line.
It talks to etcd through its v3 JSON gateway with http.client: no new Python dependency.
Never fails on a time: it prints figures.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from central_broker.brokers import MosquittoBroker, free_port, wait_listening  # noqa: E402
from evnet.config.schema import MqttConfig  # noqa: E402
from firmware.paxos.client import KvClient, KvSession, KvTimeout  # noqa: E402
from firmware.paxos.localsite import LocalSite  # noqa: E402

MEMBERS = ["cp1", "cp2", "cp3"]


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * q))]


# ------------------------------------------------------------------ load workers (both systems)

def _evnet_put_fn(spec: dict[str, Any], name: str,
                  session: KvSession | None) -> tuple[Callable[[str, str], Any], Callable[[], None]]:
    c = KvClient(MqttConfig(url=spec["url"], prefix=spec["prefix"]), spec["site"], name, bytes.fromhex(spec["key"]),
                 timeout=5.0, retry=0.2, session=session).start()
    return (lambda k, v: c.put(k, v)), c.close


def _etcd_put_fn(spec: dict[str, Any], name: str,
                 _session: None) -> tuple[Callable[[str, str], Any], Callable[[], None]]:
    e = EtcdClient(spec["endpoints"], leader=spec.get("leader"))
    return e.put, e.close


def load_worker(kind: str, spec: dict[str, Any], index: int, threads: int, start: Any, seconds: float,
                out: Any) -> None:
    """One process of the throughput load: `threads` clients putting as fast as answers come."""
    import threading

    make = _evnet_put_fn if kind == "evnet" else _etcd_put_fn
    # evnet: the process's clients share one broker connection (`KvSession`), each with its own client
    # id and one request at a time; etcd: one HTTP connection per client (its gateway answers one
    # request at a time per connection).
    session = None
    if kind == "evnet" and spec.get("shared", True):
        session = KvSession(MqttConfig(url=spec["url"], prefix=spec["prefix"]), spec["site"], f"load{index}",
                            bytes.fromhex(spec["key"]))
    clients = [make(spec, f"load{index}-{t}", session) for t in range(threads)]
    counts = [0] * threads

    def run(t: int) -> None:
        put, _ = clients[t]
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            try:
                put(f"k{index}-{t}-{n % 64}", f"v{n}")
                counts[t] += 1
            except (KvTimeout, OSError, RuntimeError):
                pass
            n += 1

    start.wait()
    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    for _, close in clients:
        close()
    if session is not None:
        session.close()
    out.put(sum(counts))


def throughput(kind: str, spec: dict[str, Any], seconds: float, procs: int = 4, threads: int = 4) -> float:
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    ps = [ctx.Process(target=load_worker, args=(kind, spec, i, threads, start, seconds, out)) for i in range(procs)]
    for p in ps:
        p.start()
    time.sleep(2.0)  # let every worker connect (spawned interpreters import first)
    t0 = time.monotonic()
    start.set()
    total = sum(out.get(timeout=seconds + 60) for _ in ps)
    elapsed = time.monotonic() - t0
    for p in ps:
        p.join(30)
    return total / elapsed


def sequential(put: Callable[[str, str], Any], n: int) -> tuple[float, float]:
    for i in range(min(200, n // 5)):
        put("warm", str(i))
    lat = []
    for i in range(n):
        t = time.perf_counter()
        put(f"seq{i % 64}", f"v{i}")
        lat.append(time.perf_counter() - t)
    return statistics.median(lat) * 1e3, pct(lat, 0.99) * 1e3


def echo_worker(url: str, started: Any, stop: Any) -> None:
    """Answer every message on bench/ping with the same payload on bench/pong (the broker floor)."""
    from evnet.mqtt import MqttLink
    from firmware.paxos.transport import LinkPump

    link = MqttLink(MqttConfig(url=url), "bench-echo")
    link.subscribe("bench/ping", lambda _t, payload: link.publish("bench/pong", payload, qos=0), qos=0)
    pump = LinkPump(link)
    pump.connect(10)
    started.set()
    while not stop.is_set():
        pump.pump(0.1)


def broker_round_trip(url: str, n: int = 2000) -> float:
    """p50 of one publish -> broker -> echo process -> broker -> back: what one protocol round costs at least."""
    from evnet.mqtt import MqttLink
    from firmware.paxos.transport import LinkPump

    ctx = mp.get_context("spawn")
    started, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=echo_worker, args=(url, started, stop))
    proc.start()
    started.wait(30)
    got: list[bytes] = []
    link = MqttLink(MqttConfig(url=url), "bench-ping")
    link.subscribe("bench/pong", lambda _t, payload: got.append(payload), qos=0)
    pump = LinkPump(link)
    pump.connect(10)
    lat = []
    for i in range(n):
        t = time.perf_counter()
        link.publish("bench/ping", b"%d" % i, qos=0)
        while not got:
            pump.pump(1.0)
        got.clear()
        lat.append(time.perf_counter() - t)
    stop.set()
    proc.join(10)
    link.connected.clear()  # a disconnect we asked for: no warning line
    link.client.disconnect()
    return statistics.median(lat[n // 10:]) * 1e3


# ------------------------------------------------------------------ evnet

def failover_times(c: KvClient, fail: Callable[[str], Any], heal: Callable[[str], Any], rounds: int) -> list[float]:
    """Seconds from failing the leader (`fail(id)`) to the first put committed through another, `rounds` times."""
    times = []
    for _ in range(rounds):
        c.put("fo", "before")
        old = c.leader
        assert old is not None
        c.leader = None  # a client that saw its leader fail asks the whole site
        t0 = time.perf_counter()
        fail(old)
        while True:
            try:
                c.put("fo", "after")
            except KvTimeout:
                continue
            if c.leader != old:
                break
        times.append(time.perf_counter() - t0)
        heal(old)
        for i in range(20):
            c.put("settle", i)  # the healed replica catches up before the next round
    return times


def bench_evnet(args: argparse.Namespace, storage: str, full: bool = True) -> dict[str, float]:
    base = tempfile.mkdtemp(prefix="bench-paxos-")
    broker = MosquittoBroker().start()
    site = LocalSite(base, MEMBERS, broker.url, storage=storage).start_all()
    out: dict[str, float] = {}
    try:
        with site.client("seq", timeout=10.0, retry=0.2) as c:
            out["p50"], out["p99"] = sequential(lambda k, v: c.put(k, v), args.seq if full else args.seq // 2)
        if not full:
            return out
        out["rtt"] = broker_round_trip(broker.url)
        spec = {"url": broker.url, "prefix": site.cfg.mqtt.prefix, "site": site.cfg.site_id, "key": site.key.hex()}
        out["tput"] = throughput("evnet", spec, args.seconds)
        with site.client("failover", timeout=10.0, retry=0.01, max_retry=0.05) as c:
            times = failover_times(c, site.kill, site.start, args.failovers)
            out["failover"] = statistics.median(times) * 1e3
            out["failover_max"] = max(times) * 1e3
            # A paused leader keeps its connection: no Last Will, only the election timeout helps.
            times = failover_times(c, site.pause, site.resume, max(3, args.failovers // 2))
            out["stall"] = statistics.median(times) * 1e3
        return out
    finally:
        site.stop_all()
        broker.close()
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ etcd

def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class EtcdClient:
    """Puts through etcd's v3 JSON gateway; fails over to the next endpoint on an error."""

    def __init__(self, endpoints: list[str], leader: str | None = None, timeout: float = 2.0) -> None:
        self.endpoints = list(endpoints)
        self.i = self.endpoints.index(leader) if leader in self.endpoints else 0
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.conn is None:
            host, port = self.endpoints[self.i].split(":")
            self.conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
        return self.conn

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        conn = self._connect()
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            self.i = (self.i + 1) % len(self.endpoints)
            raise OSError(f"etcd {self.endpoints[self.i]}: {e}") from None
        if resp.status != 200:
            self.close()
            self.i = (self.i + 1) % len(self.endpoints)
            raise RuntimeError(f"etcd answered {resp.status}: {data[:200]!r}")
        return json.loads(data)

    def put(self, key: str, value: str) -> dict[str, Any]:
        return self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class EtcdCluster:
    def __init__(self, base: str, exe: str) -> None:
        self.base, self.exe = base, exe
        self.names = ["e1", "e2", "e3"]
        self.client_ports = {n: free_port() for n in self.names}
        self.peer_ports = {n: free_port() for n in self.names}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def endpoint(self, name: str) -> str:
        return f"127.0.0.1:{self.client_ports[name]}"

    def start(self, name: str) -> None:
        cluster = ",".join(f"{n}=http://127.0.0.1:{self.peer_ports[n]}" for n in self.names)
        cmd = [self.exe, "--name", name, "--data-dir", os.path.join(self.base, name),
               "--listen-client-urls", f"http://{self.endpoint(name)}",
               "--advertise-client-urls", f"http://{self.endpoint(name)}",
               "--listen-peer-urls", f"http://127.0.0.1:{self.peer_ports[name]}",
               "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_ports[name]}",
               "--initial-cluster", cluster, "--initial-cluster-state", "new",
               "--initial-cluster-token", "evnet-bench", "--log-level", "error"]
        log = open(os.path.join(self.base, f"{name}.log"), "ab")  # noqa: SIM115 - the child owns it
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        wait_listening("127.0.0.1", self.client_ports[name], 30, self.procs[name])

    def leader(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in self.procs:
                try:
                    st = EtcdClient([self.endpoint(n)]).call("/v3/maintenance/status", {})
                except (OSError, RuntimeError):
                    continue
                if st.get("leader") and st["leader"] == st["header"]["member_id"]:
                    return n
            time.sleep(0.05)
        raise RuntimeError("etcd elected no leader")

    def kill(self, name: str) -> None:
        p = self.procs.pop(name)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop(self) -> None:
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def find_or_install_etcd() -> str | None:
    exe = shutil.which("etcd")
    if exe:
        return exe
    print("etcd not found: installing Debian's etcd-server with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "etcd-server"]):
        r = subprocess.run(cmd, env=env, capture_output=True)
        if r.returncode != 0:
            print(f"  {' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-300:]}")
            return None
    return shutil.which("etcd")


def bench_etcd(args: argparse.Namespace, exe: str) -> dict[str, float]:
    base = tempfile.mkdtemp(prefix="bench-etcd-")
    cluster = EtcdCluster(base, exe)
    out: dict[str, float] = {}
    try:
        for n in cluster.names:
            cluster.start(n)
        leader = cluster.leader()
        c = EtcdClient([cluster.endpoint(n) for n in cluster.names], leader=cluster.endpoint(leader))
        out["p50"], out["p99"] = sequential(c.put, args.seq)
        c.close()
        spec = {"endpoints": [cluster.endpoint(n) for n in cluster.names], "leader": cluster.endpoint(leader)}
        out["tput"] = throughput("etcd", spec, args.seconds)
        times = []
        for _ in range(args.failovers):
            leader = cluster.leader()
            others = [cluster.endpoint(n) for n in cluster.names if n != leader]
            c = EtcdClient(others, timeout=0.5)
            while True:  # a member just restarted may still be catching up: retry, as after the kill
                try:
                    c.put("fo", "before")
                    break
                except (OSError, RuntimeError):
                    time.sleep(0.01)
            t0 = time.perf_counter()
            cluster.kill(leader)
            while True:
                try:
                    c.put("fo", "after")
                    break
                except (OSError, RuntimeError):
                    time.sleep(0.001)
            times.append(time.perf_counter() - t0)
            c.close()
            cluster.start(leader)
            cluster.leader()
        out["failover"] = statistics.median(times) * 1e3
        out["failover_max"] = max(times) * 1e3
        return out
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ report

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, default=2000, help="sequential puts measured")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the throughput run")
    ap.add_argument("--failovers", type=int, default=10)
    ap.add_argument("--no-etcd", action="store_true")
    args = ap.parse_args()
    print(f"3 replicas on loopback, fsync on; {os.cpu_count()} CPUs; sequential {args.seq} puts; "
          f"16 clients for {args.seconds:g} s; median of {args.failovers} failovers", flush=True)
    ev = bench_evnet(args, "file")
    print(f"evnet (file store)  : p50 {ev['p50']:.3f} ms  p99 {ev['p99']:.3f} ms  {ev['tput']:.0f} puts/s  "
          f"failover {ev['failover']:.0f} ms (max {ev['failover_max']:.0f} ms)", flush=True)
    print(f"  SIGSTOP of the leader (no Last Will: the election timeout) to the first commit through another: "
          f"median {ev['stall']:.0f} ms", flush=True)
    print(f"  (floor: one round trip client -> Mosquitto -> another process -> back, p50 {ev['rtt']:.3f} ms;"
          f" a commit crosses two such round trips plus a follower's fsync)", flush=True)
    sq = bench_evnet(args, "sqlite", full=False)
    print(f"evnet (SQLite store): p50 {sq['p50']:.3f} ms  p99 {sq['p99']:.3f} ms  (sequential only)", flush=True)
    if args.no_etcd:
        print("etcd: skipped (--no-etcd)")
        return
    exe = find_or_install_etcd()
    if exe is None:
        print("etcd: SKIPPED — not installed and apt-get could not install etcd-server")
        return
    et = bench_etcd(args, exe)
    print(f"etcd 3-member       : p50 {et['p50']:.3f} ms  p99 {et['p99']:.3f} ms  {et['tput']:.0f} puts/s  "
          f"failover {et['failover']:.0f} ms (max {et['failover_max']:.0f} ms)")
    print(f"ratios evnet/etcd   : p50 {ev['p50'] / et['p50']:.2f}x (target <= 1)  "
          f"throughput {ev['tput'] / et['tput']:.2f}x (target >= 2)  "
          f"failover {ev['failover'] / et['failover']:.2f}x (target: evnet < 500 ms)")


if __name__ == "__main__":
    main()
