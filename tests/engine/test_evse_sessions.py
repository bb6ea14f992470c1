"""Sessions of the `Evse` process on the mock HAL (inproc cable, simulated meter over Modbus, mock GPIO):
an EV that arrives during a fault, or stays through one, charges when it clears."""

from __future__ import annotations

from hal.pilot import EvLoad

from .conftest import wait_for


def contactor_pin(evse):
    return evse.board.contactor._device.value


def press_estop(evse, pressed: bool) -> None:
    pin = evse.board.pin_factory.pin(evse.cfg.hal.pins.button_estop.pin)
    pin.drive_low() if pressed else pin.drive_high()  # active low


def test_an_ev_that_plugs_in_during_a_fault_charges_once_it_clears(evse_factory):
    evse = evse_factory(speed=50.0)
    ev = evse.cable.ev
    press_estop(evse, True)
    wait_for(lambda: ev.duty == 0.0, what="-12 V (state F)")
    ev.set_load(EvLoad.B)  # plugs in while the charge point is faulted
    press_estop(evse, False)
    wait_for(lambda: evse.core.session.state.value == "Authentication", what="the plug-in seen, PWM fallback")
    evse.authorize("alice")
    ev.set_load(EvLoad.C)
    wait_for(lambda: contactor_pin(evse) == 1, what="contactor closed")
    assert evse.core.status == "CHARGING" and evse.core.meter.driver == "alice"


def test_an_ev_that_stays_plugged_through_a_fault_charges_again_once_it_clears(evse_factory):
    evse = evse_factory(speed=50.0)
    ev = evse.cable.ev
    ev.set_load(EvLoad.B)
    wait_for(lambda: evse.core.session.state.value == "Authentication", what="PWM fallback")
    evse.authorize("bob")
    ev.set_load(EvLoad.C)
    wait_for(lambda: contactor_pin(evse) == 1, what="contactor closed")
    first = evse.core.meter.session_id
    press_estop(evse, True)
    wait_for(lambda: evse.core.session.state.value == "Failure", what="the session ended by the fault")
    ev.set_load(EvLoad.B)  # what an EV does when it sees -12 V: stop asking for energy
    press_estop(evse, False)
    wait_for(lambda: evse.core.session.state.value == "Authentication", what="a new session for the same EV")
    evse.authorize("bob")
    ev.set_load(EvLoad.C)
    wait_for(lambda: contactor_pin(evse) == 1, what="contactor closed again")
    assert evse.core.meter.session_id not in (None, first)


def test_an_authorization_with_no_ev_lapses_and_a_later_ev_is_not_billed_to_that_driver(evse_factory):
    evse = evse_factory(speed=60.0)  # the 60 s connection timeout is a second of real time
    ev = evse.cable.ev
    evse.authorize("alice")
    wait_for(lambda: evse.core.session.pending_driver == "alice", what="the authorization taken")
    wait_for(lambda: evse.core.session.pending_driver is None, what="the authorization to lapse")
    ev.set_load(EvLoad.B)
    wait_for(lambda: evse.core.session.state.value == "Authentication", what="PWM fallback")
    ev.set_load(EvLoad.C)
    iterations = evse.loop_iterations
    wait_for(lambda: evse.loop_iterations > iterations + 3, what="the loop to run")
    assert contactor_pin(evse) == 0 and evse.core.session.driver is None and not evse.core.sessions
