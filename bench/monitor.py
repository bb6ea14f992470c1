"""How fast the monitor watchdog catches a dead engine (kill -9) and a hung one (SIGSTOP), in real time.

    python bench/monitor.py [--runs 7] [--heartbeat 1.0] [--misses 2]

A real `Watchdog` (safety relay on gpiozero's mock pins, no broker) watches a real engine child
(`firmware.monitor.engine_stub`, which answers from its control loop) over a real serial link
(socket:// on loopback). Each run waits a random part of a heartbeat period before the kill or
the stop, so the figures cover every phase of the cycle. Detection = from the signal to the
safety line cut. Prints the median, the spread and the worst; never fails on a time.
Target: <= 2.5 s with a 1 s heartbeat. `bench/engine.py` may call `measure()` and `report()`.
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
from firmware.monitor.heartbeat import REPLY_FRACTION, Health
from firmware.monitor.port import MonitorPort
from firmware.monitor.watchdog import Watchdog
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
        port = MonitorPort(cfg.monitor.serial_url, cp="cp1")
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
    args = p.parse_args()
    report(measure(args.runs, args.heartbeat, args.misses), args.heartbeat, args.misses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
