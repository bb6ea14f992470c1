"""A HAL thread that fails, fails safe: the running engine with a hostile EV on the TCP cable, and with the
real pilot backend (gpiozero mock pins, mock MCP3008) whose ADC stops answering.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from evnet.config.schema import PilotConfig
from firmware.monitor.port import MonitorPort
from firmware.protocols.heartbeat import decode_answer, encode_heartbeat
from hal.gpio import GpioBoard
from hal.pilot import GpioPilot, TcpEvseEnd
from hal.pilot.mock_adc import MockPilotLine
from hal.pilot.physics import EvLoad

from .conftest import wait_for


class HostileEv:
    """An EV on the TCP cable that writes raw lines (and pings, so that it stays plugged in)."""

    def __init__(self, url: str) -> None:
        host, port = url[len("tcp://"):].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pinger = threading.Thread(target=self._ping, daemon=True)
        self._pinger.start()

    def _ping(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.send(b'{"k":"ping"}')
            except OSError:
                return

    def send(self, line: bytes) -> None:
        with self._lock:
            self.sock.sendall(line + b"\n")

    def load(self, load: str) -> None:
        self.send(b'{"k":"load","load":"%s","diode":true}' % load.encode())

    def close(self) -> None:
        self._stop.set()
        self._pinger.join(5)
        self.sock.close()


def contactor_closed(evse) -> bool:
    return bool(evse.board.contactor._device.value)


def test_garbage_on_the_tcp_cable_never_stops_the_engine_hearing_the_ev(evse_factory) -> None:
    tickets: list = []
    pilot = TcpEvseEnd("tcp://127.0.0.1:0", cp="cp1")
    evse = evse_factory(speed=20.0, pilot=pilot, standing_driver="alice", on_ticket=tickets.append)
    ev = HostileEv(pilot.url)
    try:
        ev.load("B")
        wait_for(lambda: evse.core.session.started, what="a session (PWM, standing driver)")
        ev.load("C")
        ev.send(b'{"k":"current","a":16}')
        wait_for(lambda: contactor_closed(evse), what="contactor closed")
        ev.send(b'{"k":"current","a":1' + b"0" * 400 + b"}")  # OverflowError in the old reader
        ev.send(b"[" * 50_000)  # RecursionError in the old reader
        ev.load("B")  # the EV stops: this must still reach the engine
        wait_for(lambda: not contactor_closed(evse), what="contactor open on C->B after the garbage")
        assert pilot.dropped == 2 and evse.alive
    finally:
        ev.close()  # unplugged
    wait_for(lambda: len(tickets) == 1, what="the ticket")
    assert tickets[0].reason in ("ev_stopped", "unplugged") and evse.core.status == "AVAILABLE"
    second = HostileEv(pilot.url)  # a new EV is taken and gets a session
    try:
        second.load("B")
        wait_for(lambda: len(evse.core.sessions) == 2, what="the next EV's session")
    finally:
        second.close()


@pytest.fixture
def port() -> Iterator[MonitorPort]:
    port = MonitorPort("socket://127.0.0.1:0")
    yield port
    port.close()


def monitor_hears(port: MonitorPort, status: str) -> bool:
    """Heartbeats until an answer says `status` (the engine's status reaches the monitor with them)."""
    seq = iter(range(1, 10_000))

    def answered() -> bool:
        link = port.link(0.05)
        if link is None:
            return False
        n = next(seq)
        link.send(encode_heartbeat(n))
        payload = link.recv(0.2)
        return payload is not None and decode_answer(payload) == (n, status)

    wait_for(answered, what=f"the monitor to hear {status}")
    return True


class FailingAdc:
    """Mock hardware: an MCP3008 whose SPI transfers fail while `failing` is set."""

    def __init__(self, adc) -> None:
        self._adc = adc
        self.failing = threading.Event()

    @property
    def value(self) -> float:
        if self.failing.is_set():
            raise OSError(errno.EIO, "SPI transfer failed")
        return self._adc.value

    def close(self) -> None:
        self._adc.close()


def test_an_adc_that_fails_opens_the_contactor_faults_tells_the_monitor_and_recovers(
        evse_factory, mock_factory: MockFactory, port: MonitorPort, tmp_path) -> None:
    from .conftest import make_config

    cfg = make_config(tmp_path)
    board = GpioBoard(cfg.hal, pin_factory=mock_factory, cp="cp1")
    line = MockPilotLine(mock_factory, cfg.hal.pins.pilot_pwm.pin)
    pilot = GpioPilot(cfg.hal.pins.pilot_pwm, PilotConfig(backend="real"), pin_factory=mock_factory, cp="cp1")
    adc = FailingAdc(pilot._adc)
    pilot._adc = adc  # type: ignore[assignment]
    evse = evse_factory(speed=20.0, gpio=board, pilot=pilot, standing_driver="alice", monitor=True,
                        extra=f'[monitor]\nserial_url = "{port.engine_url}"\n')
    try:
        line.load = EvLoad.B
        wait_for(lambda: evse.core.session.started, what="a session")
        line.load = EvLoad.C
        wait_for(lambda: contactor_closed(evse), what="contactor closed")
        assert monitor_hears(port, "CHARGING")

        adc.failing.set()  # the watch thread and the engine's own reads now fail
        wait_for(lambda: not contactor_closed(evse), what="contactor open")
        assert evse.core.status == "FAULTED" and "pilot_read_fault" in (evse.core.fault_code or "")
        assert monitor_hears(port, "FAULTED")
        assert evse.alive

        adc.failing.clear()  # the ADC answers again: the pilot recovers without a restart
        wait_for(lambda: evse.core.status != "FAULTED", what="the fault cleared")
        assert "pilot_read_fault" not in (evse.core.fault_code or "") and pilot.fault_code is None
        assert not contactor_closed(evse)  # that session ended in Failure; no energy until a new one
    finally:
        line.close()
