"""Nothing metered is lost: a real `evnet evse` killed with -9 mid-charge closes that session from the meter when
it starts again (one ticket, matching the meter), and an engine stopped while the broker is down sends its ticket
once it is back; both on a real Mosquitto, the meter a real Modbus server that outlives the engine, as a meter does."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central_broker.brokers import free_port
from evnet.clock import RealClock
from firmware.engine.journal import Journal
from hal.meter import SimulatedMeter
from hal.pilot import CableError, EvLoad, TcpEvEnd

from .conftest import wait_for

SPEED = 60.0
TIMEOUT = 20.0

CONFIG = """\
[charge_point]
id = "cp1"
site = "s1"
price_eur_kwh = 0.30
max_current_a = 16
journal_dir = "journal"

[hal]
pin_factory = "mock"

[hal.pilot]
cable = "tcp://127.0.0.1:{cable}"

[meter]
backend = "real"
transport = "tcp"
address = "{meter}"
poll_interval_s = 1.0

[mqtt]
url = "{mqtt}"

[site]
members = ["cp1"]
limit_a = 32
key_file = "site.key"
"""


class Observer:
    """Central's view: every message on the charge point's topics, in order."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.q: queue.SimpleQueue[tuple[str, dict]] = queue.SimpleQueue()
        self.seen: list[tuple[str, dict]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="central-view")
        subscribed = threading.Event()
        self.client.on_message = lambda _c, _u, msg: self.q.put((msg.topic, json.loads(msg.payload)))
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(host, int(port))
        self.client.subscribe("evnet/s1/cp/cp1/#", qos=1)
        self.client.loop_start()
        assert subscribed.wait(TIMEOUT)

    def wait(self, check, what: str) -> dict:
        while True:
            try:
                topic, body = self.q.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no MQTT message: {what}") from None
            self.seen.append((topic, body))
            if check(topic, body):
                return body

    def tickets(self, session: str) -> list[dict]:
        return [b["ticket"] for t, b in self.seen if b.get("final") and b.get("session") == session]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def plug_in(url: str, engine: subprocess.Popen[str]) -> TcpEvEnd:
    """The EV's end of the cable, once the engine listens (a probe connection would count as an EV)."""
    retry = threading.Event()
    for _ in range(int(TIMEOUT / 0.05)):
        try:
            return TcpEvEnd(url)
        except CableError:
            assert engine.poll() is None, "the engine exited"
            retry.wait(0.05)
    raise AssertionError(f"nothing listens on {url}")


def final(session: str | None = None):
    return lambda t, b: t.endswith("/telemetry") and b.get("final") and (session is None or b["session"] == session)


def status(value: str):
    return lambda t, b: t.endswith("/status") and b.get("status") == value


@pytest.mark.slow
def test_an_engine_killed_mid_charge_gives_exactly_one_ticket_for_that_session_matching_the_meter(tmp_path, mosquitto):
    ev: TcpEvEnd | None = None
    meter = SimulatedMeter("SDM630", clock=RealClock(SPEED), cp_id="cp1",
                           load=lambda: ev.current_a if ev is not None and ev.linked and ev.load is EvLoad.C else 0.0)
    address = meter.start_tcp()
    cable = free_port()
    path = tmp_path / "cp1.toml"
    path.write_text(CONFIG.format(cable=cable, meter=address, mqtt=mosquitto.url))
    (tmp_path / "site.key").write_text("k" * 32)
    central = Observer(mosquitto.url)
    engines: list[subprocess.Popen[str]] = []

    def start_engine() -> subprocess.Popen[str]:
        with open(tmp_path / f"evse{len(engines)}.log", "w") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen([sys.executable, "-m", "evnet.cli", "evse", "--config", str(path), "--speed",
                                     str(SPEED), "--authorize", "alice", "--no-monitor", "--log-level", "WARNING"],
                                    stdout=subprocess.DEVNULL, stderr=log, text=True)
        engines.append(proc)
        return proc

    def stop_engine(proc: subprocess.Popen[str]) -> None:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
        central.wait(status("DISCONNECTED"), "the engine's farewell")  # after everything it published before

    try:
        engine = start_engine()
        ev = plug_in(f"tcp://127.0.0.1:{cable}", engine)
        ev.set_load(EvLoad.B)  # plugs in: no ISO 15118, so the PWM offer, once the standing driver is authorized
        wait_for(lambda: (ev.allowed_current_a() or 0) >= 6, timeout=TIMEOUT, what="a PWM offer")
        start_kwh = meter.energy_kwh
        ev.set_load(EvLoad.C)
        ev.set_current(16.0)
        body = central.wait(lambda t, b: t.endswith("/telemetry") and b.get("energy_kwh", 0) > 0.1, "charging")
        session = body["session"]
        engine.kill()  # kill -9 mid-charge: no goodbye, no ticket
        engine.wait(TIMEOUT)
        wait_for(lambda: not ev.linked, timeout=TIMEOUT, what="the EV to see the charge point gone")
        end_kwh = meter.energy_kwh  # nothing flows any more (the contactor of a dead engine is open)
        assert central.tickets(session) == []

        engine = start_engine()  # what systemd's Restart= does
        ticket = central.wait(final(session), "the ticket of the session the crash left open")["ticket"]
        assert (ticket["driver"], ticket["reason"]) == ("alice", "restart")
        assert ticket["start_kwh"] == pytest.approx(start_kwh, abs=1e-4)  # float32 registers
        assert ticket["end_kwh"] == pytest.approx(end_kwh, abs=1e-4)
        assert ticket["kwh"] > 0.1 and ticket["cost_eur"] == round(ticket["kwh"] * 0.30, 2)
        stop_engine(engine)
        engine = start_engine()  # it was taken: a third start does not send it again
        central.wait(status("AVAILABLE"), "the third engine up")
        stop_engine(engine)
        assert len(central.tickets(session)) == 1, central.tickets(session)
    finally:
        for proc in engines:
            if proc.poll() is None:
                proc.kill()
                proc.wait(TIMEOUT)
        if ev is not None:
            ev.close()
        central.close()
        meter.stop()


@pytest.mark.slow
def test_an_engine_stopped_while_the_broker_is_down_sends_its_ticket_once_it_is_back(evse_factory, mosquitto,
                                                                                     tmp_path):
    evse = evse_factory(speed=50.0, mqtt_url=mosquitto.url)
    ev = evse.cable.ev
    ev.set_load(EvLoad.B)
    wait_for(lambda: evse.core.session.state.value == "Authentication", what="PWM fallback")
    evse.authorize("dora")
    ev.set_load(EvLoad.C)
    ev.set_current(16.0)
    wait_for(lambda: evse.core.meter.live is not None and evse.core.meter.live.energy_kwh > 0.02,
             what="energy flowing")
    session = evse.core.meter.session_id
    mosquitto.stop()
    evse.stop()  # the ticket is closed now, and the broker cannot take it
    (ticket,) = evse.core.tickets
    journal = Journal(str(tmp_path / "journal"))
    assert list(journal.state.tickets) == [session]  # on disk, not only in the log
    journal.close()

    mosquitto.start()
    central = Observer(mosquitto.url)
    try:
        evse = evse_factory(speed=50.0, mqtt_url=mosquitto.url)
        sent = central.wait(final(session), "the ticket from before the outage")["ticket"]
        assert sent["kwh"] == ticket.kwh and sent["driver"] == "dora" and sent["reason"] == "fault:shutdown"
        wait_for(lambda: evse.ledger.journal.state.tickets == {}, what="the ticket to leave the journal once taken")
    finally:
        central.close()


def test_a_session_that_cannot_be_journaled_never_gets_energy(evse_factory):
    import os

    evse = evse_factory(speed=50.0)
    journal = evse.ledger.journal
    full = os.open("/dev/full", os.O_WRONLY)  # the disk is full: every write fails with ENOSPC
    os.dup2(full, journal._fd)
    os.close(full)
    ev = evse.cable.ev
    ev.set_load(EvLoad.B)
    wait_for(lambda: evse.core.session.state.value == "Authentication", what="PWM fallback")
    evse.authorize("erin")
    ev.set_load(EvLoad.C)
    wait_for(lambda: evse.core.status == "FAULTED", what="FAULTED")
    assert evse.core.fault_code == "journal" and not evse.contactor_closed
    assert evse.board.contactor._device.value == 0
