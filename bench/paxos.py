"""Print, in one run, evnet's Paxos over Mosquitto against a 3-member etcd, both on loopback, fsync on.

    python bench/paxos.py [--seq 2000] [--seconds 5] [--rounds 3] [--failovers 10] [--no-etcd]
    python bench/paxos.py --client-failover-only [--failovers 10]

For each: sequential put latency p50/p99 (one client), throughput with 16 concurrent clients
(4 processes x 4 threads, each thread one client with one request at a time, the same load shape
for both; evnet's 4 clients of a process share one broker connection, a `KvSession`, etcd's have
an HTTP connection each, as its JSON gateway answers one request at a time per connection), and
the time from kill -9 of the leader to the first put committed through a new leader (median of
--failovers); for evnet also after a SIGSTOP of the leader (its connection stays up: no Last
Will, the election timeout alone), and what a client sees of a kill -9 of the leader: the longest
wait between two answers of a client putting without pause, with the default retry settings
(median of --failovers). Then the ratios.
Both systems run at once and are measured in turns (blocks of sequential puts, whole throughput
runs), so the machine's drift falls on both alike.
etcd (Debian `etcd-server`, `etcd_cluster.py`) is installed with apt-get if missing, or skipped
with a clear line. Never fails on a time: it prints figures.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from etcd_cluster import EtcdClient, EtcdCluster, find_or_install_etcd  # noqa: E402

from central_broker.brokers import MosquittoBroker  # noqa: E402
from evnet.config.schema import MqttConfig  # noqa: E402
from firmware.paxos.io.client import KvClient, KvSession, KvTimeout  # noqa: E402
from firmware.paxos.io.localsite import LocalSite  # noqa: E402

MEMBERS = ["cp1", "cp2", "cp3"]
BLOCK = 100  # sequential puts per turn


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
    lat = []
    for i in range(n):
        t = time.perf_counter()
        put(f"seq{i % 64}", f"v{i}")
        lat.append(time.perf_counter() - t)
    return statistics.median(lat) * 1e3, pct(lat, 0.99) * 1e3


def echo_worker(url: str, started: Any, stop: Any) -> None:
    """Answer every message on bench/ping with the same payload on bench/pong (the broker floor)."""
    from evnet.mqtt import MqttLink
    from evnet.mqtt.pump import LinkPump

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
    from evnet.mqtt.pump import LinkPump

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
        c.leader = c.session.leader = None  # a client that saw its leader fail asks the whole site
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


def _put_until(c: KvClient, stop: threading.Event, answered: list[float]) -> None:
    """Put without pause until `stop`, noting when each answer came."""
    while not stop.is_set():
        c.put("gap", len(answered))
        answered.append(time.perf_counter())


def client_gaps(site: LocalSite, rounds: int) -> list[float]:
    """The longest wait between two answers of a client putting without pause, across a kill -9 of the
    leader, `rounds` times: what a client sees of a failover (default retry settings, as `evnet kv`)."""
    gaps = []
    with site.client("gap", timeout=10.0) as c:
        for _ in range(rounds):
            for i in range(50):
                c.put("gap", i)  # the restarted replica of the round before has caught up
            old = c.leader
            assert old is not None
            answered: list[float] = []
            stop = threading.Event()
            worker = threading.Thread(target=_put_until, args=(c, stop, answered))
            worker.start()
            time.sleep(0.3)
            killed = time.perf_counter()
            site.kill(old)
            time.sleep(1.0)
            stop.set()
            worker.join(15)
            gaps.append(max(b - a for a, b in zip(answered, answered[1:], strict=False) if b > killed))
            site.start(old)
    return gaps


class EvnetSite:
    """Three `evnet replica` processes on a Mosquitto of their own, for as long as the `with` lasts."""

    kind = "evnet"

    def __init__(self, storage: str) -> None:
        self.base = tempfile.mkdtemp(prefix="bench-paxos-")
        self.broker = MosquittoBroker().start()
        self.site = LocalSite(self.base, MEMBERS, self.broker.url, storage=storage).start_all()
        self.client = self.site.client("seq", timeout=10.0, retry=0.2)
        cfg = self.site.cfg
        self.spec = {"url": self.broker.url, "prefix": cfg.mqtt.prefix, "site": cfg.site_id, "key": self.site.key.hex()}

    def put(self, key: str, value: str) -> Any:
        return self.client.put(key, value)

    def failovers(self, args: argparse.Namespace) -> dict[str, float]:
        with self.site.client("failover", timeout=10.0, retry=0.01, max_retry=0.05) as c:
            times = failover_times(c, self.site.kill, self.site.start, args.failovers)
            # A paused leader keeps its connection: no Last Will, only the election timeout helps.
            stall = failover_times(c, self.site.pause, self.site.resume, max(3, args.failovers // 2))
        gaps = client_gaps(self.site, args.failovers)
        return {"failover": statistics.median(times) * 1e3, "failover_max": max(times) * 1e3,
                "stall": statistics.median(stall) * 1e3, **gap_figures(gaps)}

    def __enter__(self) -> EvnetSite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.site.stop_all()
        self.broker.close()
        shutil.rmtree(self.base, ignore_errors=True)


class EtcdSite:
    """A three-member etcd, the same way."""

    kind = "etcd"

    def __init__(self, exe: str) -> None:
        self.base = tempfile.mkdtemp(prefix="bench-etcd-")
        self.cluster = EtcdCluster(self.base, exe)
        for n in self.cluster.names:
            self.cluster.start(n)
        leader = self.cluster.endpoint(self.cluster.leader())
        endpoints = [self.cluster.endpoint(n) for n in self.cluster.names]
        self.client = EtcdClient(endpoints, leader=leader)
        self.spec = {"endpoints": endpoints, "leader": leader}

    def put(self, key: str, value: str) -> Any:
        return self.client.put(key, value)

    def failovers(self, args: argparse.Namespace) -> dict[str, float]:
        cluster, times = self.cluster, []
        for _ in range(args.failovers):
            leader = cluster.leader()
            c = EtcdClient([cluster.endpoint(n) for n in cluster.names if n != leader], timeout=0.5)
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
        return {"failover": statistics.median(times) * 1e3, "failover_max": max(times) * 1e3}

    def __enter__(self) -> EtcdSite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.cluster.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def gap_figures(gaps: list[float]) -> dict[str, float]:
    return {"gap": statistics.median(gaps) * 1e3, "gap_max": max(gaps) * 1e3, "gap_n": len(gaps)}


def print_gaps(f: dict[str, float]) -> None:
    print(f"  client-visible failover (kill -9 of the leader; the longest wait between two answers of a client "
          f"putting without pause, default retry): median {f['gap']:.0f} ms, max {f['gap_max']:.0f} ms "
          f"over {f['gap_n']:.0f} kills (target <= 50 ms)", flush=True)


def interleaved(systems: list[Any], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Sequential latency and throughput of every system, their samples taken in turns.

    The machine's speed drifts by tens of per cent over a minute (other tenants, the disk), so
    measuring one system after the other puts the drift into the ratio. In turns — blocks of
    `BLOCK` sequential puts, then whole throughput runs — both see the same drift.
    """
    out: dict[str, dict[str, Any]] = {s.kind: {"lat": [], "tput": []} for s in systems}
    for s in systems:
        for i in range(200):
            s.put("warm", str(i))
    for block in range(max(1, args.seq // BLOCK)):
        for s in systems:
            lat = out[s.kind]["lat"]
            for i in range(BLOCK):
                t = time.perf_counter()
                s.put(f"seq{i % 64}", f"v{block}.{i}")
                lat.append(time.perf_counter() - t)
    for _ in range(args.rounds):
        for s in systems:
            out[s.kind]["tput"].append(throughput(s.kind, s.spec, args.seconds))
    for r in out.values():
        r["p50"], r["p99"] = statistics.median(r["lat"]) * 1e3, pct(r["lat"], 0.99) * 1e3
        r["tput_median"] = statistics.median(r["tput"])
    return out


# ------------------------------------------------------------------ report

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, default=2000, help="sequential puts measured (per system)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of one throughput run")
    ap.add_argument("--rounds", type=int, default=3, help="throughput runs per system, taken in turns")
    ap.add_argument("--failovers", type=int, default=10)
    ap.add_argument("--no-etcd", action="store_true")
    ap.add_argument("--client-failover-only", action="store_true",
                    help="only what a client sees of a kill -9 of the leader (3 replicas, file store)")
    args = ap.parse_args()
    if args.client_failover_only:
        with EvnetSite("file") as site:
            print(f"3 replicas on loopback, fsync on; {os.cpu_count()} CPUs", flush=True)
            print_gaps(gap_figures(client_gaps(site.site, args.failovers)))
        return
    print(f"3 replicas on loopback, fsync on; {os.cpu_count()} CPUs; sequential {args.seq} puts; "
          f"{args.rounds} runs of 16 clients for {args.seconds:g} s; median of {args.failovers} failovers; "
          f"evnet and etcd both up, measured in turns", flush=True)
    exe = None
    if args.no_etcd:
        print("etcd: skipped (--no-etcd)")
    else:
        exe = find_or_install_etcd()
        if exe is None:
            print("etcd: SKIPPED — not installed and apt-get could not install etcd-server")
    with EvnetSite("file") as ev_site, (EtcdSite(exe) if exe else contextlib.nullcontext()) as et_site:
        systems = [ev_site] + ([et_site] if et_site is not None else [])
        res = interleaved(systems, args)
        rtt = broker_round_trip(ev_site.broker.url)
        fo = {s.kind: s.failovers(args) for s in systems}
    for s in systems:
        r, f = res[s.kind], fo[s.kind]
        name = "evnet (file store)  " if s.kind == "evnet" else "etcd 3-member       "
        runs = " / ".join(f"{t:.0f}" for t in r["tput"])
        print(f"{name}: p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms  {r['tput_median']:.0f} puts/s (runs {runs})  "
              f"failover {f['failover']:.0f} ms (max {f['failover_max']:.0f} ms)", flush=True)
        if s.kind == "evnet":
            print(f"  SIGSTOP of the leader (no Last Will: the election timeout) to the first commit through "
                  f"another: median {f['stall']:.0f} ms", flush=True)
            print_gaps(f)
            print(f"  (floor: one round trip client -> Mosquitto -> another process -> back, p50 {rtt:.3f} ms;"
                  f" a commit crosses two such round trips plus a follower's fsync)", flush=True)
    with EvnetSite("sqlite") as sq:
        for i in range(200):
            sq.put("warm", str(i))
        p50, p99 = sequential(sq.put, args.seq // 2)
    print(f"evnet (SQLite store): p50 {p50:.3f} ms  p99 {p99:.3f} ms  (sequential only, on its own)", flush=True)
    if "etcd" in res:
        ev, et = res["evnet"], res["etcd"]
        pairs = " / ".join(f"{a / b:.2f}" for a, b in zip(ev["tput"], et["tput"], strict=True))
        print(f"ratios evnet/etcd   : p50 {ev['p50'] / et['p50']:.2f}x (target <= 1)  "
              f"throughput {ev['tput_median'] / et['tput_median']:.2f}x (run by run {pairs}; target >= 2)  "
              f"failover {fo['evnet']['failover'] / fo['etcd']['failover']:.2f}x (target: evnet < 500 ms)")


if __name__ == "__main__":
    main()
