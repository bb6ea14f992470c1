"""The engine answers the monitor's heartbeats from its control loop, over a real serial link (socket://)."""

from __future__ import annotations

import threading

import pytest

from firmware.monitor.heartbeat import decode_answer, encode_heartbeat
from firmware.monitor.port import MonitorPort

from .conftest import wait_for


@pytest.fixture
def port():
    port = MonitorPort("socket://127.0.0.1:0")
    yield port
    port.close()


def ask(port, seq, timeout=2.0):
    wait_for(lambda: port.link(0.05) is not None, what="the engine to connect")
    link = port.link(0.0)
    link.send(encode_heartbeat(seq))
    payload = link.recv(timeout)
    return None if payload is None else decode_answer(payload)


def test_heartbeats_are_answered_with_the_status_and_a_hung_loop_stops_answering(evse_factory, port):
    evse = evse_factory(speed=10.0, extra=f'[monitor]\nserial_url = "{port.engine_url}"\n', monitor=True)
    assert ask(port, 1) == (1, "AVAILABLE")
    assert ask(port, 2) == (2, "AVAILABLE")

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
    assert ask(port, 3, timeout=0.3) is None  # a hung loop does not answer
    release.set()
    answers = set()
    wait_for(lambda: answers.add(ask(port, 4, timeout=0.2)) or (4, "AVAILABLE") in answers,
             what="answers again after the loop is free")
    assert evse.responder.answered >= 3
