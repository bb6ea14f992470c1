"""How fast the HAL's safety paths react: figures for the 100 ms contactor rule and the monitor link.

    python bench/hal_latency.py [--events 1000]

- e-stop: a press driven on gpiozero's mock pin -> the contactor relay's line reads open (the
  relay is opened inside the GPIO callback; on mock pins the callback runs on the driving thread);
- cable, in one process: the EV end sets C then B -> the EVSE end's listener runs;
- cable over tcp:// loopback: the same, across a socket and the reader thread;
- cable over tcp://, a frozen EV (SIGSTOP): how long until the EVSE reads A (heartbeat 0.2 s,
  dead after 1 s);
- serial link: a frame to an echoing peer and back, over a socat pty pair and over socket://.
Prints figures; never fails on a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPWMPin

from evnet.config.schema import PinConfig
from hal.gpio import EmergencyStop, Relay
from hal.pilot import EvLoad, PilotState, TcpEvEnd, TcpEvseEnd, VirtualCable
from hal.serial_link import SerialLink


def summary(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{name:<50} n={len(ms):<5} p50={statistics.median(ms):8.3f} ms  p99={p99:8.3f} ms  max={ms[-1]:8.3f} ms")


def bench_estop(events: int) -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    contactor = Relay("contactor", PinConfig(17), pin_factory=factory)
    estop = EmergencyStop(PinConfig(26, False), [contactor], pin_factory=factory)
    line, button = factory.pin(17), factory.pin(26)
    samples = []
    for _ in range(events):
        contactor.close_contacts()
        t0 = time.perf_counter()
        button.drive_low()
        assert line.state == 0
        samples.append(time.perf_counter() - t0)
        button.drive_high()
    summary("e-stop press -> contactor open (mock pins)", samples)
    estop.close()
    contactor.close()


def cable_latency(evse, ev, events: int) -> list[float]:
    """EV toggles C/B; time until the EVSE's listener sees the new state."""
    cond = threading.Condition()
    seen: list[tuple[PilotState, float]] = []

    def listener(what: str) -> None:
        if what == "pilot":
            with cond:
                seen.append((evse.read().state, time.perf_counter()))
                cond.notify_all()

    evse.set_current(16)
    evse.on_change(listener)
    samples = []
    for i in range(events):
        load, state = (EvLoad.C, PilotState.C) if i % 2 == 0 else (EvLoad.B, PilotState.B)
        with cond:
            n = len(seen)
        t0 = time.perf_counter()
        ev.set_load(load)
        with cond:
            assert cond.wait_for(lambda n=n, state=state: len(seen) > n and seen[-1][0] is state, 10)
            samples.append(seen[-1][1] - t0)
    return samples


def bench_cable(events: int) -> None:
    cable = VirtualCable()
    summary("cable inproc: EV C<->B -> EVSE listener", cable_latency(cable.evse, cable.ev, events))
    cable.close()
    evse = TcpEvseEnd("tcp://127.0.0.1:0")
    ev = TcpEvEnd(evse.url)
    summary("cable tcp loopback: EV C<->B -> EVSE listener", cable_latency(evse, ev, events))
    ev.close()
    evse.close()


EV_PROCESS = """
import sys, time
from hal.pilot.cable_tcp import TcpEvEnd
ev = TcpEvEnd(sys.argv[1]); ev.set_load("C"); ev.set_current(16)
print("charging", flush=True); time.sleep(60)
"""


def bench_frozen_ev(rounds: int) -> None:
    samples = []
    for _ in range(rounds):
        evse = TcpEvseEnd("tcp://127.0.0.1:0")
        evse.set_current(16)
        gone = threading.Event()
        evse.on_change(lambda what, evse=evse, gone=gone: gone.set() if not evse.linked else None)
        proc = subprocess.Popen([sys.executable, "-c", EV_PROCESS, evse.url], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "charging"
        while evse.read().state is not PilotState.C:
            time.sleep(0.001)
        t0 = time.perf_counter()
        os.kill(proc.pid, signal.SIGSTOP)
        assert gone.wait(10) and evse.read().state is PilotState.A
        samples.append(time.perf_counter() - t0)
        proc.kill()
        proc.wait()
        evse.close()
    summary("cable tcp: frozen EV -> EVSE reads A", samples)


def echo(link: SerialLink, stop: threading.Event) -> None:
    while not stop.is_set():
        payload = link.recv(timeout=0.1)
        if payload is not None:
            link.send(payload)


def round_trips(link: SerialLink, events: int) -> list[float]:
    samples = []
    for i in range(events):
        payload = f'{{"t":"hb","seq":{i}}}'.encode()
        t0 = time.perf_counter()
        link.send(payload)
        assert link.recv(timeout=5) == payload
        samples.append(time.perf_counter() - t0)
    return samples


def with_echo(a: SerialLink, b: SerialLink, events: int, name: str) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=echo, args=(b, stop), daemon=True)
    thread.start()
    summary(name, round_trips(a, events))
    stop.set()
    thread.join()
    a.close()
    b.close()


def bench_serial(events: int) -> None:
    if shutil.which("socat"):
        with tempfile.TemporaryDirectory() as tmp:
            pa, pb = Path(tmp, "A"), Path(tmp, "B")
            proc = subprocess.Popen(["socat", f"pty,raw,echo=0,link={pa}", f"pty,raw,echo=0,link={pb}"],
                                    stderr=subprocess.DEVNULL)
            wait_until(lambda: pa.exists() and pb.exists())
            with_echo(SerialLink.open(str(pa)), SerialLink.open(str(pb)), events,
                      "serial link over a socat pty pair: round trip")
            proc.terminate()
            proc.wait()
    else:
        print("serial link over a pty pair: skipped (socat is not installed)")
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    a = SerialLink.open(f"socket://127.0.0.1:{server.getsockname()[1]}")
    wait_until(lambda: bool(accepted))
    peer = accepted[0]
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def raw_echo() -> None:  # the far end of socket:// is a plain TCP peer echoing whole frames
        buf = b""
        while True:
            data = peer.recv(4096)
            if not data:
                return
            buf += data
            while len(buf) >= 2 and b"\x03" in buf[:-1]:
                end = buf.index(b"\x03") + 2
                peer.sendall(buf[:end])
                buf = buf[end:]

    threading.Thread(target=raw_echo, daemon=True).start()
    summary("serial link over socket:// loopback: round trip", round_trips(a, events))
    a.close()
    peer.close()
    server.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the set-up")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--frozen-rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    bench_estop(args.events)
    bench_cable(args.events)
    bench_frozen_ev(args.frozen_rounds)
    bench_serial(args.events)


if __name__ == "__main__":
    main()
