"""The virtual cable between two processes: the EVSE listens, the EV connects (tcp://)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from hal.pilot.cable_tcp import CableError, TcpEvEnd, TcpEvseEnd, _Connection, parse_cable_url
from hal.pilot.cable_updates import MAX_LINE
from hal.pilot.conversions import PilotState
from hal.pilot.physics import EvLoad

WAIT = 10.0  # safety net for awaited events; they normally come within milliseconds


class Seen:
    """Listener that lets a test wait for a condition on an end without sleeping."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[str] = []

    def __call__(self, what: str) -> None:
        with self.cond:
            self.events.append(what)
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


def poll(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """For what no listener hears (a dropped line): look every 5 ms, as a safety net up to `timeout`."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.005)
    return True


@pytest.fixture
def evse() -> Iterator[TcpEvseEnd]:
    end = TcpEvseEnd("tcp://127.0.0.1:0", cp="cp1")
    yield end
    end.close()


def test_parse_cable_url() -> None:
    assert parse_cable_url("tcp://127.0.0.1:7500") == ("127.0.0.1", 7500)
    assert parse_cable_url("tcp://[::1]:0") == ("::1", 0)
    for bad in ("inproc", "tcp://host", "tcp://:80", "udp://h:1", "tcp://h:99999"):
        with pytest.raises(CableError):
            parse_cable_url(bad)


def test_plug_charge_and_unplug_over_tcp(evse: TcpEvseEnd) -> None:
    seen = Seen()
    evse.on_change(seen)
    ev = TcpEvEnd(evse.url)
    ev_seen = Seen()
    ev.on_change(ev_seen)
    assert seen.wait_for(lambda: evse.linked)
    evse.set_current(20)
    assert ev_seen.wait_for(lambda: ev.allowed_current_a() == pytest.approx(20))
    ev.set_load(EvLoad.C)
    ev.set_current(19.5)
    assert seen.wait_for(lambda: evse.read().state is PilotState.C and evse.ev_current_a == 19.5)
    ev.send({"type": "ChargingStatusReq", "soc": 42})
    assert evse.recv(timeout=WAIT) == {"type": "ChargingStatusReq", "soc": 42}
    evse.send({"type": "ChargingStatusRes", "limit_a": 16})
    assert ev.recv(timeout=WAIT) == {"type": "ChargingStatusRes", "limit_a": 16}
    ev.set_load(EvLoad.B)
    assert seen.wait_for(lambda: evse.read().state is PilotState.B)
    ev.close()  # unplug
    assert seen.wait_for(lambda: not evse.linked)
    assert evse.read().state is PilotState.A and evse.ev_current_a == 0


def test_the_ev_sees_the_evse_go(evse: TcpEvseEnd) -> None:
    ev = TcpEvEnd(evse.url)
    ev_seen = Seen()
    ev.on_change(ev_seen)
    evse.set_current(16)
    assert ev_seen.wait_for(lambda: ev.duty is not None and ev.duty > 0)
    evse.close()
    assert ev_seen.wait_for(lambda: not ev.linked)
    assert ev.duty is None and ev.allowed_current_a() == 0
    ev.close()


def test_a_second_ev_is_refused_and_the_first_keeps_charging(evse: TcpEvseEnd) -> None:
    seen = Seen()
    evse.on_change(seen)
    evse.set_steady()
    first = TcpEvEnd(evse.url)
    first.set_load(EvLoad.B)
    assert seen.wait_for(lambda: evse.read().state is PilotState.B)
    second = TcpEvEnd(evse.url)
    second_seen = Seen()
    second.on_change(second_seen)
    assert second_seen.wait_for(lambda: not second.linked)
    assert evse.linked and evse.read().state is PilotState.B
    first.close()
    second.close()


def test_the_evse_takes_a_new_ev_after_the_first_left(evse: TcpEvseEnd) -> None:
    seen = Seen()
    evse.on_change(seen)
    evse.set_current(16)
    for load in (EvLoad.B, EvLoad.C):
        ev = TcpEvEnd(evse.url)
        ev.set_load(load)
        assert seen.wait_for(lambda load=load: evse.read().state.value == load.value)
        ev.close()
        assert seen.wait_for(lambda: not evse.linked)


def test_nothing_listening_is_a_clear_error() -> None:
    probe = TcpEvseEnd("tcp://127.0.0.1:0")
    url = probe.url
    probe.close()
    with pytest.raises(CableError, match="cannot plug into the EVSE"):
        TcpEvEnd(url, timeout=2)


def test_port_taken_is_a_clear_error(evse: TcpEvseEnd) -> None:
    with pytest.raises(CableError, match="cannot listen"):
        TcpEvseEnd(evse.url)


EV_PROCESS = """
import sys, time
from hal.pilot.cable_tcp import TcpEvEnd
ev = TcpEvEnd(sys.argv[1])
ev.set_load("C")
ev.set_current(16)
print("charging", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_a_dead_or_frozen_ev_process_reads_as_a_never_a_stuck_c(evse: TcpEvseEnd, how: str) -> None:
    seen = Seen()
    evse.on_change(seen)
    evse.set_current(16)
    proc = subprocess.Popen([sys.executable, "-c", EV_PROCESS, evse.url], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "charging"
        assert seen.wait_for(lambda: evse.read().state is PilotState.C and evse.ev_current_a == 16)
        os.kill(proc.pid, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
        t0 = time.monotonic()
        assert seen.wait_for(lambda: not evse.linked)
        detected = time.monotonic() - t0
        assert evse.read().state is PilotState.A and evse.ev_current_a == 0
        assert detected < WAIT  # generous safety net; a frozen peer takes about dead_after_s (1 s)
    finally:
        proc.kill()
        proc.wait(timeout=10)


BAD_LINES = {
    "a 401-digit current": b'{"k":"current","a":1' + b"0" * 400 + b"}",
    "nested 50,000 deep": b"[" * 50_000,
    "nested objects": b'{"k":"msg","m":' * 20_000,
    "not JSON": b"this is not json",
    "not UTF-8": b'{"k":"load","load":"\xff\xfe"}',
    "not an object": b"[1, 2, 3]",
    "an unknown kind": b'{"k":"teleport"}',
    "a kind the EVSE does not take": b'{"k":"duty","duty":16.7}',
    "an infinite current": b'{"k":"current","a":1e400}',
    "a negative current": b'{"k":"current","a":-3}',
    "a boolean current": b'{"k":"current","a":true}',
    "an unknown load": b'{"k":"load","load":"Z","diode":true}',
    "a diode that is not a boolean": b'{"k":"load","load":"C","diode":"yes"}',
    "a message that is not an object": b'{"k":"msg","m":[1]}',
    "a line over the size cap": b"x" * (MAX_LINE + 10),
    "a huge line in pieces": b'{"k":"msg","m":{"pad":"' + b"y" * (3 * MAX_LINE) + b'"}}',
}


@pytest.mark.parametrize("line", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_bad_line_is_dropped_counted_and_the_reader_keeps_reading(evse: TcpEvseEnd, line: bytes) -> None:
    seen = Seen()
    evse.on_change(seen)
    evse.set_steady()
    with socket.create_connection((evse.host, evse.port), timeout=WAIT) as sock:
        sock.sendall(b'{"k":"load","load":"C","diode":true}\n{"k":"current","a":16}\n')
        assert seen.wait_for(lambda: evse.read().state is PilotState.C and evse.ev_current_a == 16)
        sock.sendall(line + b"\n")
        assert poll(lambda: evse.dropped == 1)
        sock.sendall(b'{"k":"load","load":"B","diode":true}\n')  # the EV's next change still gets through
        assert seen.wait_for(lambda: evse.read().state is PilotState.B)
        assert evse.linked and evse.ev_current_a == 16 and evse.dropped == 1 and evse.fault_code is None
    assert seen.wait_for(lambda: not evse.linked)  # and its unplugging too
    assert evse.read().state is PilotState.A


def test_a_dropped_line_is_logged_with_the_peer_and_repeats_are_folded(evse: TcpEvseEnd, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="evnet.pilot")
    seen = Seen()
    evse.on_change(seen)
    with socket.create_connection((evse.host, evse.port), timeout=WAIT) as sock:
        sock.sendall(b"junk\n" * 50)
        assert poll(lambda: evse.dropped == 50)
        host, port = sock.getsockname()[:2]
        peer = f"{host}:{port}"
    lines = [r.getMessage() for r in caplog.records if "event=cable.update_dropped" in r.getMessage()]
    assert len(lines) == 1 and f"source={peer}" in lines[0] and "cp=cp1" in lines[0]


def test_a_reader_that_fails_drops_the_ev_faults_and_the_next_ev_clears_it(evse: TcpEvseEnd, monkeypatch) -> None:
    seen = Seen()
    evse.on_change(seen)
    evse.set_steady()
    with socket.create_connection((evse.host, evse.port), timeout=WAIT) as sock:
        sock.sendall(b'{"k":"load","load":"C","diode":true}\n')
        assert seen.wait_for(lambda: evse.read().state is PilotState.C)

        def broken(self, chunk: bytes) -> None:
            raise RuntimeError("a bug in the reader")

        monkeypatch.setattr(_Connection, "_feed", broken)
        sock.sendall(b'{"k":"load","load":"B","diode":true}\n')
        assert seen.wait_for(lambda: "fault" in seen.events)
        assert evse.fault_code == "cable_fault"
        assert not evse.linked and evse.read().state is PilotState.A  # safe: no EV, no current
    monkeypatch.undo()
    ev = TcpEvEnd(evse.url)  # the listener still takes the next EV, and that clears the fault
    ev.set_load(EvLoad.B)
    assert seen.wait_for(lambda: evse.read().state is PilotState.B and evse.fault_code is None)
    ev.close()
