"""The charging engine's safety timing and footprint, in real time on the mock HAL.

    python bench/engine.py [--events 1000] [--idle 10] [--monitor-runs 7] [--skip-monitor]
                           [--meter-fault-runs 7] [--only-meter-fault]

- C -> B: the EV end of the cable goes from C to B -> the engine's contactor relay is open
  (cable change callback -> control loop -> EngineCore -> gpiozero line), over 1,000 events,
  on the in-process cable and over tcp:// loopback (the cable `evnet ev` uses);
- C -> contactor closed: the EV asks for energy with the EVSE ready -> the relay is closed;
- resident memory and idle CPU of a real `evnet evse` process (simulated meter inside it,
  polled every second; tcp cable; MQTT to a local Mosquitto when one is installed);
- the monitor's detection time for kill -9 and for a hang (bench/monitor.py's `measure`);
- meter fault -> contactor open: a charging session's simulated meter goes silent, garbles its
  answers, answers Modbus exceptions, gives impossible values or disappears at a random moment;
  the time until the contactor relay is open (the shipped meter defaults: poll 1 s, timeout 0.5 s,
  2 retries, faulted after 3 failed attempts: hal/meter/driver.py gives the bound).
Targets: C->B max <= 100 ms and p99 <= 20 ms; C -> closed <= 3 s; detection <= 2.5 s;
meter fault -> open <= poll interval + 3 x timeout + back-offs (2.65 s).
Prints figures; never fails on a time.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evnet.clock import RealClock  # noqa: E402
from evnet.config import load_config  # noqa: E402
from firmware.engine.evse import Evse  # noqa: E402
from hal.meter import Misbehaviour  # noqa: E402
from hal.pilot import EvLoad, TcpEvEnd  # noqa: E402

CONFIG = """\
[charge_point]
id = "cp1"
site = "bench"
price_eur_kwh = 0.30
max_current_a = 16

[hal]
pin_factory = "mock"

[hal.pilot]
cable = "{cable}"

[meter]
backend = "simulated"
address = "127.0.0.1:0"

[mqtt]
url = "{mqtt}"

[site]
members = ["cp1"]
limit_a = 32
key_file = "site.key"

[monitor]
serial_url = "socket://127.0.0.1:1"
"""


def summary(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{name:<60} n={len(ms):<5} p50={statistics.median(ms):8.3f} ms  p99={p99:8.3f} ms  max={ms[-1]:8.3f} ms",
          flush=True)


def write_config(folder: Path, cable: str, mqtt: str = "mqtt://127.0.0.1:1") -> Path:
    path = folder / "cp1.toml"
    path.write_text(CONFIG.format(cable=cable, mqtt=mqtt))
    (folder / "site.key").write_text("bench-key-" * 4)
    return path


class RelayWatch:
    """Wraps the contactor relay so the bench learns the moment its line was switched."""

    def __init__(self, evse: Evse) -> None:
        relay = evse.board.contactor
        assert relay is not None
        self.cond = threading.Condition()
        self.closed = False
        self.at = 0.0
        real_open, real_close = relay.open_contacts, relay.close_contacts

        def open_contacts() -> None:
            real_open()
            self._mark(False)

        def close_contacts() -> bool:
            ok = real_close()
            if ok:
                self._mark(True)
            return ok

        relay.open_contacts, relay.close_contacts = open_contacts, close_contacts  # type: ignore[method-assign]

    def _mark(self, closed: bool) -> None:
        with self.cond:
            if closed != self.closed:
                self.closed, self.at = closed, time.perf_counter()
                self.cond.notify_all()

    def wait(self, closed: bool, timeout: float = 10.0) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: self.closed is closed, timeout):
                raise RuntimeError(f"contactor never {'closed' if closed else 'opened'}")
            return self.at


def toggle(evse: Evse, ev, events: int) -> tuple[list[float], list[float]]:
    """EV C <-> B `events` times; (C -> closed, C->B -> open) latencies."""
    watch = RelayWatch(evse)
    ev.set_load(EvLoad.B)
    deadline = time.monotonic() + 30
    while evse.core.session.state.value != "Charging":  # PWM fallback, then the standing driver
        if time.monotonic() > deadline:
            raise RuntimeError(f"no session: {evse.core.session.state.value}")
        time.sleep(0.01)
    closing, opening = [], []
    for _ in range(events):
        t0 = time.perf_counter()
        ev.set_load(EvLoad.C)
        closing.append(watch.wait(True) - t0)
        time.sleep(0.001)
        t0 = time.perf_counter()
        ev.set_load(EvLoad.B)
        opening.append(watch.wait(False) - t0)
        time.sleep(0.001)
    return closing, opening


def bench_latency(events: int, folder: Path) -> None:
    speed = 50.0  # domain time for the 5 s HLC wait and the meter; the latencies are real time
    for cable in ("inproc", "tcp://127.0.0.1:0"):
        cfg = load_config(write_config(folder, cable))
        evse = Evse(cfg, clock=RealClock(speed), mqtt=False, monitor=False, standing_driver="bench",
                    print_tickets=False)
        evse.start()
        ev = evse.cable.ev if evse.cable is not None else TcpEvEnd(evse.pilot.url)  # type: ignore[attr-defined]
        try:
            closing, opening = toggle(evse, ev, events)
        finally:
            ev.close()
            evse.stop()
        name = "inproc cable" if cable == "inproc" else "tcp:// cable"
        summary(f"C->B -> contactor open ({name})", opening)
        summary(f"C (EVSE ready) -> contactor closed ({name})", closing)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_footprint(idle_s: float, folder: Path) -> None:
    broker = None
    mqtt = "mqtt://127.0.0.1:1"
    if shutil.which("mosquitto"):
        from central_broker.brokers import MosquittoBroker

        broker = MosquittoBroker().start()
        mqtt = broker.url
    path = write_config(folder, "tcp://127.0.0.1:0", mqtt)
    proc = subprocess.Popen([sys.executable, "-m", "evnet.cli", "evse", "--config", str(path), "--no-monitor",
                             "--log-level", "WARNING"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3.0)  # imports, meter server, first reads
        if proc.poll() is not None:
            print(f"evnet evse exited early: {proc.stderr.read()[-500:] if proc.stderr else ''}")
            return
        cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
        time.sleep(idle_s)
        cpu = (_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
        print(f"{'evnet evse idle (no EV), resident memory':<60} {_rss_mib(proc.pid):8.1f} MiB", flush=True)
        print(f"{'evnet evse idle (no EV), CPU over ' + format(idle_s, 'g') + ' s':<60} {cpu * 100:8.2f} % of one core"
              f"{'' if broker else ' (no broker installed: MQTT retrying)'}", flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
        if broker is not None:
            broker.stop()


METER_FAULT_SPEED = 10.0  # domain time runs 10x (the 5 s HLC wait); the poll is set to 1 s of real time
METER_FAULTS = {
    "silent (no answer)": Misbehaviour.SILENT,
    "garbled answers": Misbehaviour.GARBLED,
    "Modbus exception": Misbehaviour.EXCEPTION,
    "impossible values (NaN kWh)": Misbehaviour.NAN,
    "meter gone (refused)": None,
}


def bench_meter_fault(runs: int, folder: Path) -> None:
    """Contactor open after the meter goes bad mid-session, in real time, with the shipped meter defaults."""
    import random

    path = write_config(folder, "inproc")
    path.write_text(path.read_text().replace('address = "127.0.0.1:0"', 'address = "127.0.0.1:0"\n'
                                             f"poll_interval_s = {METER_FAULT_SPEED:g}"))
    cfg = load_config(path)
    rng = random.Random(9)
    for name, mode in METER_FAULTS.items():
        samples = []
        for _ in range(runs):
            evse = Evse(cfg, clock=RealClock(METER_FAULT_SPEED), mqtt=False, monitor=False, standing_driver="bench",
                        print_tickets=False)
            evse.start()
            try:
                watch = RelayWatch(evse)
                ev = evse.cable.ev
                ev.set_load(EvLoad.B)
                deadline = time.monotonic() + 30
                while not evse.core.session.started:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"no session: {evse.core.session.state.value}")
                    time.sleep(0.01)
                ev.set_load(EvLoad.C)
                ev.set_current(16.0)
                watch.wait(True)
                time.sleep(1.0 + rng.random())  # the meter goes bad anywhere in a poll interval
                sim = evse.meter.simulator
                t0 = time.perf_counter()
                if mode is None:
                    sim.stop()
                else:
                    sim.misbehave(mode)
                samples.append(watch.wait(False, timeout=30) - t0)
                if evse.core.fault_code != "meter":
                    raise RuntimeError(f"opened for {evse.core.fault_code}, not a meter fault")
            finally:
                evse.stop()
        summary(f"meter fault -> contactor open: {name}", samples)


def bench_monitor(runs: int) -> None:
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import monitor as monitor_bench  # bench/monitor.py, by the monitor's engineer
    except ImportError as exc:
        print(f"monitor detection: skipped ({exc})")
        return
    monitor_bench.report(monitor_bench.measure(runs=runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle to measure CPU over")
    parser.add_argument("--monitor-runs", type=int, default=7)
    parser.add_argument("--skip-monitor", action="store_true")
    parser.add_argument("--meter-fault-runs", type=int, default=7, help="runs per kind of meter fault (0: skip)")
    parser.add_argument("--only-meter-fault", action="store_true", help="measure the meter-fault latency only")
    args = parser.parse_args()
    logging.getLogger("evnet").setLevel(logging.CRITICAL)  # cable unplug warnings, meter faults are expected here
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # and pymodbus' own dumps of them
    print(f"bench/engine.py: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, mock GPIO, simulated meter")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.only_meter_fault:
            bench_latency(args.events, Path(tmp))
            bench_footprint(args.idle, Path(tmp))
        if args.meter_fault_runs > 0:
            bench_meter_fault(args.meter_fault_runs, Path(tmp))
    if not args.skip_monitor and not args.only_meter_fault:
        bench_monitor(args.monitor_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
