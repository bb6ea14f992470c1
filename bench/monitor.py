"""How fast the monitor watchdog catches a dead engine (kill -9) and a hung one (SIGSTOP), in real time,
and how fast the real engine answers a heartbeat.

    python bench/monitor.py [--runs 7] [--heartbeat 1.0] [--misses 2] [--round-trips 1000]

A real `Watchdog` (safety relay on gpiozero's mock pins, no broker) watches a real engine child
(`firmware.monitor.engine_stub`, which answers from its control loop) over a real serial link
(socket:// on loopback). Each run waits a random part of a heartbeat period before the kill or
the stop, so the figures cover every phase of the cycle. Detection = from the signal to the
safety line cut. Prints the median, the spread and the worst; never fails on a time.
Target: <= 2.5 s with a 1 s heartbeat. `bench/engine.py` may call `measure()` and `report()`.

Round trip: a real `evnet evse` process (mock GPIO, simulated meter, no broker) connects to this
process's monitor port; each heartbeat is timed from the monitor's send to the engine's answer read
back, through the engine's link thread and its control loop (which makes the answer). Target 20 ms.
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPWMPin

from evnet.config import parse_config
from firmware.monitor.port import MonitorPort
from firmware.monitor.watchdog import Watchdog
from firmware.protocols.heartbeat import REPLY_FRACTION, Health, decode_answer, encode_heartbeat
from hal.gpio import Relay

ROOT = Path(__file__).resolve().parent.parent


def _config(heartbeat_s: float, misses: int, key_dir: str):
    raw = {"charge_point": {"id": "cp1", "site": "bench", "price_eur_kwh": 0.3, "max_current_a": 32},
           "site": {"members": ["cp1"], "limit_a": 32, "key_file": str(Path(key_dir) / "site.key")},
           "monitor": {"serial_url": "socket://127.0.0.1:0", "heartbeat_s": heartbeat_s, "misses": misses}}
    (Path(key_dir) / "site.key").write_text("bench\n")
    return parse_config(raw, "<bench>")


def _engine(url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "firmware.monitor.engine_stub", url, "CHARGING"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", "engine stub did not start"
    return proc


def _wait(wd: Watchdog, health: Health, timeout: float = 30.0) -> None:
    with wd.changed:
        if not wd.changed.wait_for(lambda: wd.hb.health is health, timeout):
            raise RuntimeError(f"the monitor never became {health.value}")


def measure(runs: int = 7, heartbeat_s: float = 1.0, misses: int = 2, seed: int = 1) -> dict[str, list[float]]:
    """Detection times in seconds: {"kill -9": [...], "SIGSTOP (hang)": [...]}."""
    rng = random.Random(seed)
    factory = MockFactory(pin_class=MockPWMPin)
    results: dict[str, list[float]] = {"kill -9": [], "SIGSTOP (hang)": []}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(heartbeat_s, misses, tmp)
        port = MonitorPort(cfg.monitor.monitor_end, cp="cp1")
        relay = Relay("safety", cfg.hal.pins.safety, pin_factory=factory, cp="cp1")
        wd = Watchdog(cfg, port=port, safety=relay, reporter=None, startup_grace_s=0.0)
        stop = threading.Event()
        thread = threading.Thread(target=wd.run, args=(stop,), daemon=True)
        thread.start()
        try:
            for _ in range(runs):
                for kind, sig in (("kill -9", signal.SIGKILL), ("SIGSTOP (hang)", signal.SIGSTOP)):
                    proc = _engine(port.engine_url)
                    try:
                        _wait(wd, Health.HEALTHY)
                        time.sleep(rng.uniform(0, heartbeat_s))  # land anywhere in the heartbeat cycle
                        t0 = wd.clock.monotonic()
                        proc.send_signal(sig)
                        _wait(wd, Health.FAULTED)
                        assert not relay.contacts_closed
                        results[kind].append(wd.lost_at - t0)
                    finally:
                        proc.send_signal(signal.SIGCONT)
                        proc.kill()
                        proc.wait()
        finally:
            stop.set()
            thread.join(10)
            port.close()
            relay.close()
            factory.reset()
    return results


ENGINE_CONFIG = """\
[charge_point]
id = "cp1"
site = "bench"
price_eur_kwh = 0.30
max_current_a = 16
journal_dir = "journal"

[hal]
pin_factory = "mock"

[hal.pilot]
cable = "tcp://127.0.0.1:0"

[meter]
backend = "simulated"
address = "127.0.0.1:0"

[site]
members = ["cp1"]
limit_a = 32
key_file = "site.key"

[monitor]
serial_url = "{url}"
"""


def measure_round_trip(count: int = 1000, gap_s: float = 0.01) -> list[float]:
    """Seconds from each heartbeat sent to the real engine's answer received (answers to older ones skipped)."""
    with tempfile.TemporaryDirectory() as tmp:
        port = MonitorPort("socket://127.0.0.1:0", cp="cp1")
        path = Path(tmp) / "cp1.toml"
        path.write_text(ENGINE_CONFIG.format(url=port.engine_url))
        (Path(tmp) / "site.key").write_text("bench\n")
        proc = subprocess.Popen([sys.executable, "-m", "evnet.cli", "evse", "--config", str(path), "--no-mqtt",
                                 "--log-level", "WARNING"], cwd=ROOT, stdout=subprocess.DEVNULL)
        samples: list[float] = []
        try:
            deadline = time.monotonic() + 30
            while (link := port.link(0.1)) is None:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the engine never connected to the monitor port")
            for seq in range(1, count + 101):
                t0 = time.perf_counter()
                link.send(encode_heartbeat(seq))
                while (payload := link.recv(1.0)) is not None and decode_answer(payload)[0] != seq:
                    pass
                if payload is None and samples:
                    raise RuntimeError(f"no answer to heartbeat {seq} within 1 s")
                if seq > 100 and payload is not None:  # the first hundred warm the engine up
                    samples.append(time.perf_counter() - t0)
                time.sleep(gap_s)  # heartbeats are paced, not a flood: the engine's loop is idle between them
        finally:
            proc.terminate()
            proc.wait(10)
            port.close()
    return samples


def report_round_trip(samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"heartbeat round trip, monitor -> real evnet evse (link thread, control loop) -> monitor, socket://: "
          f"n={len(ms)} p50={statistics.median(ms):.3f} ms  p99={p99:.3f} ms  max={ms[-1]:.3f} ms (target 20 ms)")


def report(results: dict[str, list[float]], heartbeat_s: float = 1.0, misses: int = 2) -> None:
    print(f"monitor detection (heartbeat {heartbeat_s:g} s, {misses} misses, reply timeout "
          f"{heartbeat_s * REPLY_FRACTION:g} s; target <= 2.5 s), signal -> safety line cut:")
    for kind, times in results.items():
        times = sorted(times)
        print(f"  {kind:<15} median {statistics.median(times):.3f} s   min {times[0]:.3f} s   "
              f"max {times[-1]:.3f} s   ({len(times)} runs)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--heartbeat", type=float, default=1.0)
    p.add_argument("--misses", type=int, default=2)
    p.add_argument("--round-trips", type=int, default=1000, help="heartbeats timed through the real engine (0: skip)")
    args = p.parse_args()
    if args.round_trips:
        report_round_trip(measure_round_trip(args.round_trips))
    if args.runs:
        report(measure(args.runs, args.heartbeat, args.misses), args.heartbeat, args.misses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
