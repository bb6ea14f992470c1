"""The `Evse` process object on the mock HAL: inproc cable, simulated meter over real Modbus, mock GPIO."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from hal.pilot import EvLoad

from .conftest import wait_for


def contactor_pin(evse):
    return evse.board.contactor._device.value


def plug_in_and_ask_for_energy(evse, driver: str):
    """A car without ISO 15118 plugs in (B), waits out the 5 % offer, is authorized, and asks for energy (C)."""
    ev = evse.cable.ev
    ev.set_load(EvLoad.B)
    wait_for(lambda: evse.core.session.state.value == "Authentication", what="PWM fallback")
    evse.authorize(driver)
    ev.set_load(EvLoad.C)
    return ev


def test_pwm_only_session_charges_and_the_ticket_matches_the_meter(evse_factory):
    tickets: queue.SimpleQueue = queue.SimpleQueue()
    evse = evse_factory(speed=50.0, on_ticket=tickets.put)
    ev = evse.cable.ev
    wait_for(lambda: ev.duty == 100.0, what="steady +12 V with no EV")
    ev.set_load(EvLoad.B)
    wait_for(lambda: ev.duty == 5.0, what="5 % (HLC offered)")
    wait_for(lambda: evse.core.session.state.value == "Authentication", what="fallback to PWM after 5 s")
    evse.authorize("alice")
    wait_for(lambda: ev.allowed_current_a() == pytest.approx(16.0), what="16 A offered by PWM")
    ev.set_load(EvLoad.C)
    wait_for(lambda: contactor_pin(evse) == 1, what="contactor closed")
    assert evse.board.led.status == "CHARGING"
    ev.set_current(16.0)
    start = evse.core.meter.first.import_kwh
    wait_for(lambda: evse.core.meter.live is not None and evse.core.meter.live.energy_kwh > 0.05,
             what="energy flowing")
    ev.set_load(EvLoad.B)
    wait_for(lambda: contactor_pin(evse) == 0, what="contactor open on C->B")
    ev.set_current(0.0)
    ev.set_load(EvLoad.NOT_CONNECTED)
    ticket = tickets.get(timeout=10)
    meter_now = evse.meter.read().import_kwh
    assert ticket.start_kwh == start and ticket.driver == "alice" and ticket.reason == "unplugged"
    assert ticket.end_kwh == pytest.approx(meter_now, abs=1e-6)  # nothing flowed after the contactor opened
    assert ticket.kwh > 0.05 and ticket.cost_eur == round(ticket.kwh * 0.30, 2)
    assert evse.board.led.status == "AVAILABLE"


def test_emergency_stop_opens_the_contactor_and_faults(evse_factory):
    evse = evse_factory(speed=50.0)
    plug_in_and_ask_for_energy(evse, "bob")
    wait_for(lambda: contactor_pin(evse) == 1, what="contactor closed")
    estop_pin = evse.board.pin_factory.pin(evse.cfg.hal.pins.button_estop.pin)
    estop_pin.drive_low()  # pressed (active low)
    assert contactor_pin(evse) == 0  # opened by the button itself, on the GPIO thread
    wait_for(lambda: evse.board.led.status == "FAULTED", what="FAULTED on the LED")
    assert evse.core.fault_code == "emergency_stop"
    estop_pin.drive_high()
    wait_for(lambda: evse.core.status == "AVAILABLE", what="fault cleared on release")
    assert contactor_pin(evse) == 0  # the session ended in Failure: no energy until unplugged


def test_meter_dying_mid_session_faults_and_closes_the_ticket(evse_factory):
    from hal.meter import Misbehaviour

    tickets: queue.SimpleQueue = queue.SimpleQueue()
    evse = evse_factory(speed=50.0, on_ticket=tickets.put, meter_extra="timeout_s = 0.05\nretries = 0\nfail_after = 2")
    ev = plug_in_and_ask_for_energy(evse, "carol")
    ev.set_current(16.0)
    wait_for(lambda: evse.core.meter.live is not None and evse.core.meter.live.energy_kwh > 0.01,
             what="energy flowing")
    evse.meter.simulator.misbehave(Misbehaviour.SILENT)
    ticket = tickets.get(timeout=15)
    assert contactor_pin(evse) == 0 and evse.core.status == "FAULTED" and evse.core.fault_code == "meter"
    assert ticket.reason == "fault:meter" and ticket.end_kwh == evse.meter.last_reading.import_kwh


def test_the_process_keeps_the_6_s_rule_on_an_injected_clock(evse_factory):
    from evnet.clock import ManualClock

    clock = ManualClock()
    evse = evse_factory(clock=clock)
    ev = evse.cable.ev
    ev.set_load(EvLoad.B)
    wait_for(lambda: evse.core.session.state.value == "BeginSession", what="plug-in seen")
    clock.advance(5.0)  # no ISO 15118 from this EV: charging without profile
    wait_for(lambda: evse.core.session.state.value == "Authentication", what="PWM fallback at 5 s")
    evse.authorize("frank")
    ev.set_load(EvLoad.C)
    wait_for(lambda: contactor_pin(evse) == 1, what="contactor closed")
    evse.request_stop("operator_stop")
    wait_for(lambda: ev.duty == 100.0, what="PWM withdrawn")
    clock.advance(5.9)  # the EV ignores it and stays in C
    wait_for(lambda: evse.loop_iterations > 3, what="the loop to run")
    iterations = evse.loop_iterations
    wait_for(lambda: evse.loop_iterations > iterations + 3, what="the loop to look at the clock again")
    assert contactor_pin(evse) == 1
    clock.advance(0.1)
    wait_for(lambda: contactor_pin(evse) == 0, what="contactor forced open 6 s after the PWM stop")


def test_stopping_the_engine_mid_session_opens_the_contactor_and_closes_the_ticket(evse_factory):
    tickets: queue.SimpleQueue = queue.SimpleQueue()
    evse = evse_factory(speed=50.0, on_ticket=tickets.put)
    ev = plug_in_and_ask_for_energy(evse, "gina")
    ev.set_current(16.0)
    wait_for(lambda: evse.core.meter.live is not None and evse.core.meter.live.energy_kwh > 0.01,
             what="energy flowing")
    evse.stop()
    assert not evse.contactor_closed and not evse.core.pilot.contactor
    ticket = tickets.get(timeout=1)
    assert ticket.reason == "fault:shutdown" and ticket.driver == "gina" and ticket.kwh > 0.01


def test_a_broken_diode_seen_on_the_pilot_puts_the_evse_in_f(evse_factory):
    evse = evse_factory(speed=50.0)
    ev = plug_in_and_ask_for_energy(evse, "hank")
    wait_for(lambda: contactor_pin(evse) == 1, what="contactor closed")
    ev.set_load(EvLoad.C, diode=False)  # the negative half of the PWM is now loaded too
    wait_for(lambda: contactor_pin(evse) == 0, what="contactor open on a diode fault")
    assert evse.core.status == "FAULTED" and evse.core.fault_code == "diode_fault"
    wait_for(lambda: ev.duty == 0.0, what="the EVSE driving -12 V: state F")  # the loop's next actions
    wait_for(lambda: evse.board.led.status == "FAULTED", what="the LED showing FAULTED")


def test_a_port_already_taken_gives_a_clear_error_and_releases_the_gpio(tmp_path):
    import logging
    import socket

    from evnet.config import load_config
    from firmware.engine.evse import main

    from .conftest import make_config

    root = logging.getLogger("evnet")
    saved = (list(root.handlers), root.propagate, root.level)  # main() sets up logging for the process
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        cfg = make_config(tmp_path)
        path = tmp_path / "tcp.toml"
        text = Path(cfg.path).read_text()
        path.write_text(text.replace('cable = "inproc"', f'cable = "tcp://127.0.0.1:{taken.getsockname()[1]}"'))
        assert load_config(path).hal.pilot.cable.startswith("tcp://")
        assert main(["--config", str(path), "--no-mqtt", "--no-monitor"]) == 1
        assert main(["--config", str(path), "--no-mqtt", "--no-monitor"]) == 1  # the pins were released
    finally:
        taken.close()
        root.handlers[:], root.propagate, root.level = saved[0], saved[1], saved[2]
