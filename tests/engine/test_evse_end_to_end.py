"""End to end in one process: `Evse` + the EV emulator on an inproc cable, the simulated meter over real
Modbus TCP, mock GPIO, and a real Mosquitto for the status and telemetry Central would see."""

from __future__ import annotations

import json
import queue

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from evnet.clock import RealClock
from firmware.ev.emulator import EvEmulator, EvParams
from firmware.ev.plan import parse_plan
from firmware.ev.process import EvDriver, protocol_params

from .conftest import wait_for

SPEED = 120.0


def run_ev(evse, plan: str, **params) -> tuple[EvEmulator, EvDriver]:
    ev = EvEmulator(EvParams(**{**protocol_params(SPEED), **params}), parse_plan(plan))
    driver = EvDriver(evse.cable.ev, ev, evse.clock, cp="cp1").start()
    return ev, driver


@pytest.mark.parametrize("hlc", [True, False], ids=["with_profile", "without_profile"])
def test_an_emulated_ev_charges_and_the_ticket_matches_the_meter(evse_factory, hlc):
    tickets: queue.SimpleQueue = queue.SimpleQueue()
    evse = evse_factory(speed=SPEED, on_ticket=tickets.put, clock=RealClock(SPEED))
    evse.authorize("alice")  # from the app, before the EV arrives
    start_kwh = evse.meter.read().import_kwh
    ev, driver = run_ev(evse, "plug; charge 16; wait 4m; stop; wait 10; unplug", hlc=hlc, max_current_a=32)
    try:
        ticket = tickets.get(timeout=30)
        assert driver.done.wait(30)
    finally:
        driver.stop()
    meter_kwh = evse.meter.read().import_kwh
    assert [(st.driver, st.hlc) for st in evse.core.sessions] == [("alice", hlc)]
    assert ticket.driver == "alice" and ticket.start_kwh == pytest.approx(start_kwh)
    assert ticket.end_kwh == pytest.approx(meter_kwh, abs=1e-6)  # all the meter counted, nothing after
    # 16 A x 3 phases x 230 V for at most 4 minutes: at most 0.74 kWh (PWM only starts after the HLC wait)
    assert 0.25 < ticket.kwh < 0.75
    assert ticket.kwh == pytest.approx(ev.delivered_kwh, rel=0.05)  # what the meter counted is what the EV got
    assert ticket.cost_eur == round(ticket.kwh * 0.30, 2)
    assert evse.core.status == "AVAILABLE"
    assert not evse.core.pilot.contactor


@pytest.mark.slow
def test_status_and_telemetry_reach_mosquitto_and_charging_survives_the_broker_going(evse_factory, mosquitto):
    got: queue.SimpleQueue = queue.SimpleQueue()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="central-test")
    sub.on_message = lambda _c, _u, msg: got.put((msg.topic, json.loads(msg.payload)))
    sub.connect(mosquitto.host, mosquitto.port)
    sub.subscribe("evnet/s1/cp/cp1/#", qos=1)
    sub.loop_start()
    try:
        evse = evse_factory(speed=SPEED, mqtt_url=mosquitto.url)
        seen: dict[str, list] = {}

        def saw(topic_end, pred):
            def check():
                while True:
                    try:
                        topic, body = got.get_nowait()
                    except queue.Empty:
                        break
                    seen.setdefault(topic.rsplit("/", 1)[1], []).append(body)
                return any(pred(b) for b in seen.get(topic_end, []))
            return check

        wait_for(saw("status", lambda b: b["status"] == "AVAILABLE" and b["v"] == 1), what="AVAILABLE status")
        evse.authorize("bob")
        ev, driver = run_ev(evse, "plug; charge 16; wait 30m; stop; unplug", hlc=True)
        wait_for(saw("telemetry", lambda b: b.get("power_kw", 0) > 10 and b["driver"] == "bob"),
                 what="telemetry while charging")
        mosquitto.stop()
        energy = evse.core.meter.live.energy_kwh
        wait_for(lambda: evse.core.meter.live.energy_kwh > energy + 0.2, what="charging on without the broker")
        assert evse.core.pilot.contactor
        mosquitto.start()
        wait_for(saw("status", lambda b: b["status"] == "CHARGING"), what="status again after the broker is back")
        driver.stop()
    finally:
        sub.loop_stop()
        sub.disconnect()
