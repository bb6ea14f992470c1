"""Central at scale: N simulated charge points in sites of five on one Mosquitto, against `evnet central`.

Each simulated point (a light publisher, not a process) publishes a status change (AVAILABLE <-> CHARGING,
retained, QoS 1, its `ts` the wall clock at the publish) and a telemetry message every second, spread
evenly over the second. `evnet central` runs as its own process (external broker, web dashboard on a free
port); a reader process holds the dashboard's live stream (server-sent events) open, as a browser does,
and for each status it sees there takes now - `ts`: from the status reaching the broker to the dashboard's
stream. Central's own CPU and memory are read from /proc by psutil. The first seconds (every point's first
status: the registry filling up) are left out.

    .venv/bin/python bench/central.py                     # N = 100, 1000, 5000; 15 s each
    .venv/bin/python bench/central.py --n 1000 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from central_broker.brokers import MosquittoBroker, free_port, wait_listening  # noqa: E402
from evnet.config import MqttConfig  # noqa: E402
from evnet.mqtt import MqttLink  # noqa: E402

SITE_SIZE = 5
WARMUP_S = 4.0
TOML = """\
[mqtt]
url = "{url}"
[central]
broker = "external"
web_listen = "127.0.0.1:{web}"
registry = "{root}/central.db"
"""


def publish(url: str, n: int, seconds: float, start_at: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """N points: each a status change and a telemetry message every second, spread over the second."""
    link = MqttLink(MqttConfig(url=url), f"bench-pub-{os.getpid()}")
    link.client.max_queued_messages_set(0)
    assert link.start(10)
    cps = [(f"s{i // SITE_SIZE:04d}", f"cp{i % SITE_SIZE + 1}") for i in range(n)]
    state = [False] * n
    time.sleep(max(0.0, start_at - time.time()))
    t0 = time.monotonic()
    slot = 0.01  # publish in 10 ms slices: each slice its share of the points
    per_slice = max(1, round(n * slot))
    i = 0
    while time.monotonic() - t0 < seconds:
        for _ in range(per_slice):
            k = i % n
            site, cp = cps[k]
            state[k] = not state[k]
            now = time.time()
            link.publish_json(f"evnet/{site}/cp/{cp}/status", {"cp": cp, "status": "CHARGING" if state[k] else
                              "AVAILABLE", "location": f"{site} bay {cp}", "price_eur_kwh": 0.3, "fault": None,
                              "ts": now}, qos=1, retain=True)
            link.publish_json(f"evnet/{site}/cp/{cp}/telemetry", {"cp": cp, "session": f"{cp}-1", "driver": "D1",
                              "power_kw": 11.0, "energy_kwh": 1.0, "cost_eur": 0.3, "current_a": 16.0,
                              "limit_a": 16.0, "ts": now}, qos=0)
            i += 1
        ahead = t0 + (i // per_slice) * slot - time.monotonic()  # the next slice starts on time, not before
        if ahead > 0:
            time.sleep(ahead)
    out.put(i)
    link.stop()


def read_stream(web: str, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Hold the live stream open; for each status seen (a new `ts` of a point), now - ts."""
    latencies: list[float] = []
    last: dict[tuple[str, str], float] = {}
    deadline = time.time() + seconds
    with urllib.request.urlopen(f"{web}/api/stream", timeout=30) as stream:
        event = None
        for raw in stream:
            now = time.time()
            if now > deadline:
                break
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event in ("changes", "snapshot"):
                for c in json.loads(line[6:])["cps"]:
                    ts, key = c["ts"], (c["site"], c["cp"])
                    if ts is not None and last.get(key) != ts:
                        last[key] = ts
                        if event == "changes":
                            latencies.append(now - ts)
    out.put(latencies)


def run(n: int, seconds: float) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="evnet-bench-central-"))
    broker = MosquittoBroker(extra_conf="message_size_limit 1048576\n").start()
    web_port = free_port()
    (root / "central.toml").write_text(TOML.format(url=broker.url, web=web_port, root=root))
    central = subprocess.Popen([sys.executable, "-m", "evnet.cli", "central", "--config", str(root / "central.toml"),
                                "--no-tui", "--log-level", "WARNING"], stdout=subprocess.DEVNULL,
                               stderr=open(root / "central.log", "wb"))  # noqa: SIM115
    try:
        wait_listening("127.0.0.1", web_port, 30, central)
        web = f"http://127.0.0.1:{web_port}"
        start_at = time.time() + 1.0
        out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        reader = mp.Process(target=read_stream, args=(web, seconds + 2.0, out))
        reader.start()
        sent: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        pub = mp.Process(target=publish, args=(broker.url, n, seconds, start_at, sent))
        pub.start()
        proc = psutil.Process(central.pid)
        time.sleep(max(0.0, start_at + WARMUP_S - time.time()))
        cpu0, t0 = proc.cpu_times(), time.monotonic()
        rss = []
        while pub.is_alive():
            rss.append(proc.memory_info().rss)
            time.sleep(0.5)
        cpu1, t1 = proc.cpu_times(), time.monotonic()
        latencies = out.get(timeout=seconds + 30)
        statuses_sent = sent.get(timeout=10)
        reader.join(10)
        pub.join(10)
    finally:
        central.terminate()
        central.wait(20)
        broker.close()
        shutil.rmtree(root, ignore_errors=True)
    warm = latencies[len(latencies) // 10:]  # the first tenth too: the registry filling with new points
    warm.sort()
    pct = (lambda q: warm[min(len(warm) - 1, int(q * len(warm)))]) if warm else (lambda q: float("nan"))
    return {"n": n, "statuses_seen": len(latencies), "statuses_sent": statuses_sent,
            "p50_ms": pct(0.5) * 1000, "p99_ms": pct(0.99) * 1000,
            "max_ms": (warm[-1] if warm else float("nan")) * 1000,
            "mean_ms": (statistics.fmean(warm) if warm else float("nan")) * 1000,
            "central_cpu_pct": 100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (t1 - t0),
            "central_rss_mb": max(rss) / 2**20 if rss else float("nan")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[100, 1000, 5000])
    p.add_argument("--seconds", type=float, default=15.0)
    args = p.parse_args()
    print(f"Central at scale on {os.cpu_count()} cores: a status change and a telemetry message per charge point per "
          f"second, sites of {SITE_SIZE}; latency from the status's publish to the dashboard's live stream")
    print(f"{'N':>6} {'msgs/s':>7} {'sent':>8} {'seen':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'CPU %':>6} "
          f"{'RSS MB':>7}")
    for n in args.n:
        r = run(n, args.seconds)
        print(f"{r['n']:>6} {2 * n:>7} {r['statuses_sent']:>8} {r['statuses_seen']:>8} {r['p50_ms']:>8.1f} "
              f"{r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {r['central_cpu_pct']:>6.0f} {r['central_rss_mb']:>7.1f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
