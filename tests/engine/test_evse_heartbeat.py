"""The engine answers the monitor's heartbeats from its control loop, over a real serial link (socket://)."""

from __future__ import annotations

import threading
import time

import pytest

from firmware.monitor.port import MonitorPort
from firmware.protocols.heartbeat import decode_answer, encode_heartbeat

from .conftest import wait_for


@pytest.fixture
def port():
    port = MonitorPort("socket://127.0.0.1:0")
    yield port
    port.close()


def ask(port, seq, timeout=2.0):
    """Send heartbeat `seq`; its answer (seq, status), or None if none came within `timeout`.
    Answers to older heartbeats are skipped: a heartbeat sent while the engine's end was still
    opening may be thrown away by pyserial's open (it flushes its input), as a monitor would count a miss."""
    wait_for(lambda: port.link(0.05) is not None, what="the engine to connect")
    link = port.link(0.0)
    link.send(encode_heartbeat(seq))
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        payload = link.recv(left)
        if payload is not None and decode_answer(payload)[0] == seq:
            return decode_answer(payload)
    return None


def test_heartbeats_are_answered_with_the_status_and_a_hung_loop_stops_answering(evse_factory, port):
    evse = evse_factory(speed=10.0, extra=f'[monitor]\nserial_url = "{port.engine_url}"\n', monitor=True)
    seqs = iter(range(1, 1000))
    wait_for(lambda: ask(port, next(seqs), timeout=0.5) is not None, what="a first answer")
    assert ask(port, 100) == (100, "AVAILABLE")

    release = threading.Event()
    blocked = threading.Event()
    real_authorize = evse.core.authorize

    def hang(driver, now):  # the control loop gets stuck inside the core
        blocked.set()
        release.wait(10)
        return real_authorize(driver, now)

    evse.core.authorize = hang
    evse.authorize("x")
    assert blocked.wait(5)
    assert ask(port, 101, timeout=0.3) is None  # a hung loop does not answer
    release.set()
    assert ask(port, 102) == (102, "AVAILABLE")  # answers again once the loop is free
    assert evse.responder.answered >= 3


def test_the_answer_leaves_as_soon_as_the_control_loop_made_it(evse_factory, port):
    """The link's writer waits on the answers, not on a read timeout of the line: the round trip through the
    engine is a millisecond or so (bench/monitor.py measures it), far below pyserial's 50 ms read slice."""
    evse_factory(speed=10.0, extra=f'[monitor]\nserial_url = "{port.engine_url}"\n', monitor=True)
    seqs = iter(range(1, 1000))
    wait_for(lambda: ask(port, next(seqs), timeout=0.5) is not None, what="a first answer")
    times = []
    for seq in range(500, 530):
        t0 = time.perf_counter()
        assert ask(port, seq) == (seq, "AVAILABLE")
        times.append(time.perf_counter() - t0)
    times.sort()
    assert times[len(times) // 2] < 0.020, f"median round trip {times[len(times) // 2] * 1000:.1f} ms"
