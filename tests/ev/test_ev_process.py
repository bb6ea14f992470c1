"""The EV driver on a real virtual cable: in one process (VirtualCable) and as `evnet ev` over tcp://."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from evnet.clock import RealClock
from firmware.ev.emulator import EvEmulator, EvParams
from firmware.ev.plan import parse_plan
from firmware.ev.process import EvDriver, protocol_params
from hal.pilot import EvLoad, TcpEvseEnd, VirtualCable

TIMEOUT = 10.0


class Watch:
    """Wait for a condition on the EVSE end, woken by its change callbacks (no sleeps)."""

    def __init__(self, end) -> None:
        self.end = end
        self.cond = threading.Condition()
        end.on_change(self._changed)

    def _changed(self, what: str) -> None:
        with self.cond:
            self.cond.notify_all()

    def until(self, check: Callable[[], bool], what: str) -> None:
        with self.cond:
            assert self.cond.wait_for(check, TIMEOUT), f"timed out waiting for {what}"


def test_driver_in_one_process_follows_the_duty_and_runs_its_plan() -> None:
    cable = VirtualCable(cp="cp1")
    watch = Watch(cable.evse)
    ev = EvEmulator(EvParams(max_current_a=20), parse_plan("plug; charge; wait 3; stop; wait 1; unplug"))
    driver = EvDriver(cable.ev, ev, RealClock(speed=20), cp="cp1")
    try:
        cable.evse.set_steady()
        driver.start()
        watch.until(lambda: cable.evse.ev_load is EvLoad.C, "state C")
        assert cable.evse.ev_current_a == 0  # nothing offered yet
        cable.evse.set_current(16)
        watch.until(lambda: cable.evse.ev_current_a == pytest.approx(16), "16 A drawn")
        cable.evse.set_current(32)
        watch.until(lambda: cable.evse.ev_current_a == 20, "its own 20 A maximum")
        watch.until(lambda: cable.evse.ev_load is EvLoad.NOT_CONNECTED, "unplugged")
        assert driver.done.wait(TIMEOUT) and driver.error is None
        assert cable.evse.ev_current_a == 0 and ev.finished and ev.delivered_kwh > 0
    finally:
        driver.stop()
        cable.close()


def test_driver_unplugs_when_the_charge_point_goes_away() -> None:
    cable = VirtualCable()
    ev = EvEmulator(EvParams(), parse_plan("plug; charge; wait 1000"))
    driver = EvDriver(cable.ev, ev, RealClock(speed=1)).start()
    watch = Watch(cable.evse)
    cable.evse.set_current(10)
    watch.until(lambda: cable.evse.ev_current_a > 0, "drawing")
    cable.evse.close()
    assert driver.done.wait(TIMEOUT)
    assert driver.error == "the charge point went away" and ev.draw_a == 0
    assert cable.ev.current_a == 0


def test_protocol_timing_stays_sane_in_real_time() -> None:
    assert protocol_params(1) == {"status_period_s": 1.0, "response_timeout_s": 30.0, "reask_s": 0.1}
    assert protocol_params(60) == {"status_period_s": 15.0, "response_timeout_s": 120.0, "reask_s": 6.0}


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evnet.cli", "ev", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_evnet_ev_over_tcp_charges_and_reports() -> None:
    evse = TcpEvseEnd("tcp://127.0.0.1:0", cp="cp1")
    watch = Watch(evse)
    seen: list[EvLoad] = []
    evse.on_change(lambda what: seen.append(evse.ev_load) if what == "pilot" else None)
    evse.set_current(16)
    proc = subprocess.Popen([sys.executable, "-m", "evnet.cli", "ev", "--cable", evse.url, "--speed", "30",
                             "--plan", "plug; charge 10; wait 60; stop; unplug"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        watch.until(lambda: evse.ev_current_a == 10, "10 A drawn (its own limit under the 16 A offer)")
        out, err = proc.communicate(timeout=TIMEOUT * 3)
    finally:
        if proc.poll() is None:
            proc.kill()
        evse.close()
    assert proc.returncode == 0, err
    assert [s.value for s in seen[:3]] == ["B", "C", "B"] and EvLoad.NOT_CONNECTED in seen
    assert "plan done: delivered" in out
    kwh = float(out.split("delivered ")[1].split(" kWh")[0])
    assert kwh == pytest.approx(10 * 690 * 60 / 3.6e6, rel=0.1)  # 0.115 kWh, give or take the loop's latency
    assert "event=ev.event" in err


@pytest.mark.parametrize("args, message", [
    (["--cable", "tcp://127.0.0.1:1", "--plan", "plug; fly"], "plan line 1, word 2 ('fly'): unknown command"),
    (["--cable", "inproc", "--plan", "plug"], "the cable must be tcp://HOST:PORT"),
    (["--cable", "tcp://127.0.0.1:1", "--plan", "plug", "--speed", "0"], "--speed must be > 0"),
])
def test_evnet_ev_usage_errors_are_one_clear_line(args: list[str], message: str) -> None:
    res = run_cli(*args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


def test_evnet_ev_without_a_charge_point_says_so() -> None:
    res = run_cli("--cable", "tcp://127.0.0.1:1", "--plan", "plug")
    assert res.returncode == 1 and "cannot plug into the EVSE at tcp://127.0.0.1:1" in res.stderr


def test_a_broken_diode_reaches_the_charge_point_as_a_diode_fault() -> None:
    cable = VirtualCable()
    watch = Watch(cable.evse)
    driver = EvDriver(cable.ev, EvEmulator(plan=parse_plan("diode off; plug; wait 1000")), RealClock()).start()
    try:
        cable.evse.set_current(16)  # PWM on: the negative half shows the missing diode
        watch.until(lambda: cable.evse.read().diode_fault, "a diode fault on the EVSE's reading")
        assert cable.evse.read().state.value == "B"
    finally:
        driver.stop()
        cable.close()


def test_driver_with_reconnect_stays_plugged_in_and_plugs_into_the_restarted_charge_point() -> None:
    first, second = VirtualCable(), VirtualCable()
    ev = EvEmulator(EvParams(max_current_a=20), parse_plan("plug; charge; wait 1000"))
    driver = EvDriver(first.ev, ev, RealClock(), reconnect=lambda: second.ev).start()
    try:
        watch1, watch2 = Watch(first.evse), Watch(second.evse)
        first.evse.set_current(16)
        watch1.until(lambda: first.evse.ev_current_a == pytest.approx(16), "drawing from the first")
        second.evse.set_current(10)
        first.evse.close()  # the engine died; its monitor has it restarted
        watch2.until(lambda: second.evse.ev_load is EvLoad.C and second.evse.ev_current_a == pytest.approx(10),
                     "charging again on the restarted charge point")
        assert driver.error is None and not driver.done.is_set()
    finally:
        driver.stop()
        first.close()
        second.close()


def test_driver_with_reconnect_tries_again_when_the_charge_point_drops_it_at_once() -> None:
    """A charge point that closes the cable the moment the EV plugs back in (it still holds the old connection
    and refuses a second EV; a meter box on the cable whose charge point is not back yet): the EV must try
    again, not wait for ever on a dead end. hil_tests/test_site.py's kill -9 found it."""
    first, refused, second = VirtualCable(), VirtualCable(), VirtualCable()
    refused.evse.close()  # plugged in and dropped before the driver looks at it
    ends = iter([refused.ev, second.ev])
    ev = EvEmulator(EvParams(max_current_a=20), parse_plan("plug; charge; wait 1000"))
    driver = EvDriver(first.ev, ev, RealClock(), reconnect=lambda: next(ends)).start()
    try:
        watch1, watch2 = Watch(first.evse), Watch(second.evse)
        first.evse.set_current(16)
        watch1.until(lambda: first.evse.ev_current_a == pytest.approx(16), "drawing from the first")
        second.evse.set_current(10)
        first.evse.close()
        watch2.until(lambda: second.evse.ev_load is EvLoad.C and second.evse.ev_current_a == pytest.approx(10),
                     "charging on the charge point after the one that dropped it")
    finally:
        driver.stop()
        for cable in (first, refused, second):
            cable.close()
