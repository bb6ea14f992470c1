"""The virtual cable in one process: the simulated pilot backend against an EV end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hal.pilot.cable import VirtualCable
from hal.pilot.conversions import PilotState, PilotValueError
from hal.pilot.physics import EvLoad


@pytest.fixture
def cable() -> Iterator[VirtualCable]:
    c = VirtualCable(cp="cp1")
    yield c
    c.close()


def test_starts_off_with_nothing_plugged_in(cable: VirtualCable) -> None:
    assert cable.evse.duty == 0
    assert cable.evse.read().state is PilotState.F  # the EVSE drives -12 V: not available
    assert cable.ev.duty == 0
    assert cable.ev.allowed_current_a() == 0
    cable.evse.set_steady()
    assert cable.evse.read().state is PilotState.A


def test_a_whole_charge_a_b_c_b_a(cable: VirtualCable) -> None:
    evse, ev = cable.evse, cable.ev
    evse.set_steady()
    ev.set_load(EvLoad.B)
    assert evse.read().state is PilotState.B
    assert evse.set_current(16) == pytest.approx(26.6667, abs=1e-3)
    assert ev.allowed_current_a() == pytest.approx(16)
    ev.set_load(EvLoad.C)
    ev.set_current(16)
    reading = evse.read()
    assert reading.state is PilotState.C and reading.low_v == -12.0 and not reading.fault
    assert evse.ev_current_a == 16
    ev.set_current(0)
    ev.set_load(EvLoad.B)
    assert evse.read().state is PilotState.B
    ev.set_load(EvLoad.NOT_CONNECTED)
    assert evse.read().state is PilotState.A


def test_listeners_fire_at_once_on_the_changing_thread(cable: VirtualCable) -> None:
    seen: list[tuple[str, PilotState]] = []
    cable.evse.on_change(lambda what: seen.append((what, cable.evse.read().state)))
    cable.evse.set_current(32)
    cable.ev.set_load(EvLoad.C)
    cable.ev.set_load(EvLoad.B)  # C -> B: the engine hears it before set_load returns
    assert seen == [("pilot", PilotState.C), ("pilot", PilotState.B)]
    cable.ev.set_load(EvLoad.B)  # no change, no call
    cable.ev.set_current(5)
    assert seen[-1] == ("current", PilotState.B)


def test_the_ev_hears_duty_changes(cable: VirtualCable) -> None:
    heard: list[float | None] = []
    cable.ev.on_change(lambda what: heard.append(cable.ev.duty))
    cable.evse.set_current(10)
    cable.evse.set_hlc()
    assert cable.ev.allowed_current_a() is None  # 5 %: talk first
    cable.evse.set_off()
    assert heard == [pytest.approx(16.6667, abs=1e-3), 5.0, 0.0]


def test_a_broken_listener_does_not_stop_the_others(cable: VirtualCable) -> None:
    got: list[str] = []
    cable.evse.on_change(lambda what: 1 / 0)
    cable.evse.on_change(got.append)
    cable.ev.set_load(EvLoad.B)
    assert got == ["pilot"]


def test_diode_and_short_faults(cable: VirtualCable) -> None:
    cable.evse.set_current(16)
    cable.ev.set_load(EvLoad.C, diode=False)
    assert cable.evse.read().diode_fault
    cable.ev.set_load(EvLoad.SHORT, diode=True)
    reading = cable.evse.read()
    assert reading.state is PilotState.E and reading.fault


def test_messages_both_ways_are_copies_of_json(cable: VirtualCable) -> None:
    request = {"type": "SessionSetupReq", "evcc_id": "ev-1", "nested": [1, {"a": 2}]}
    assert cable.ev.send(request)
    request["nested"].append(3)  # the sender's object is not shared
    assert cable.evse.poll() == {"type": "SessionSetupReq", "evcc_id": "ev-1", "nested": [1, {"a": 2}]}
    assert cable.evse.poll() is None
    cable.evse.send({"type": "SessionSetupRes", "code": "OK"})
    assert cable.ev.recv(timeout=5) == {"type": "SessionSetupRes", "code": "OK"}
    assert cable.ev.recv(timeout=0.01) is None
    with pytest.raises(TypeError):
        cable.ev.send({"when": object()})
    with pytest.raises(ValueError):
        cable.ev.send({"x": float("nan")})


def test_unplugging_reads_a_with_no_current_and_drops_messages(cable: VirtualCable) -> None:
    seen: list[str] = []
    cable.evse.on_change(seen.append)
    cable.evse.set_current(16)
    cable.ev.set_load(EvLoad.C)
    cable.ev.set_current(16)
    cable.ev.close()
    assert seen[-1] == "link"
    assert not cable.evse.linked
    assert cable.evse.read().state is PilotState.A
    assert cable.evse.ev_current_a == 0
    assert cable.evse.send({"type": "x"}) is False


def test_closing_the_evse_turns_the_pilot_off_first(cable: VirtualCable) -> None:
    duties: list[float | None] = []
    cable.ev.on_change(lambda what: duties.append(cable.ev.duty))
    cable.evse.set_current(16)
    cable.evse.close()
    assert duties[-2:] == [0.0, None]  # off, then gone
    assert cable.ev.allowed_current_a() == 0


def test_bad_values_are_refused(cable: VirtualCable) -> None:
    with pytest.raises(PilotValueError):
        cable.evse.set_current(81)
    with pytest.raises(PilotValueError):
        cable.evse.set_duty(3)
    assert cable.evse.duty == 0
    with pytest.raises(PilotValueError):
        cable.ev.set_current(-1)
    with pytest.raises(ValueError):
        cable.ev.set_load("E")
