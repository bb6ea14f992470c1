"""The EV core against the engine's real cores (SessionMachine, PilotMachine) in simulated time.

No cable and no threads: a loop carries the EV's load and messages to the engine's machines
and their duty and answers back, the way `evnet evse` and `evnet ev` do over the virtual cable.
"""

from __future__ import annotations

import heapq

import pytest

from firmware.engine import pilot_sm as psm
from firmware.engine import session_sm as ssm
from firmware.ev.emulator import EvEmulator, EvParams, EvState, SendMessage, SetDraw, SetLoad
from firmware.ev.plan import parse_plan
from firmware.protocols import iso15118 as iso
from hal.pilot.conversions import DUTY_OFF, DUTY_STEADY


class Bench:
    def __init__(self, ev: EvEmulator, allowed_a: float = 16.0) -> None:
        self.ev = ev
        self.secc = ssm.SessionMachine("cp1", local_drivers=["owner"], hlc_wait_s=5.0)
        self.pilot = psm.PilotMachine()
        self.now = 0.0
        self.log: list[tuple[float, object]] = []
        self.contactor: list[tuple[float, bool]] = []
        self.draws: list[tuple[float, float]] = []
        self.scripted: list[tuple[float, int, str, object]] = []
        self._n = 0
        self._do_pilot(self.pilot.set_current(allowed_a, 0.0))
        self.secc.set_current(allowed_a, 0.0)
        self._do_ev(ev.start(0.0))

    def at(self, t: float, what: str, arg: object = None) -> None:
        self._n += 1
        heapq.heappush(self.scripted, (t, self._n, what, arg))

    def _do_ev(self, actions: list) -> None:
        for a in actions:
            self.log.append((self.now, a))
            if isinstance(a, SetLoad):
                reading = {"not_connected": "A", "B": "B", "C": "C"}[a.load.value]
                self._do_pilot(self.pilot.pilot(reading, self.now))
            elif isinstance(a, SetDraw):
                self.draws.append((self.now, a.current_a))
            elif isinstance(a, SendMessage):
                self._do_secc(self.secc.receive(iso.decode(a.message), self.now))

    def _do_secc(self, actions: list) -> None:
        for a in actions:
            self.log.append((self.now, a))
            if isinstance(a, ssm.Send):
                self._do_ev(self.ev.on_message(a.message.to_dict(), self.now))
            elif isinstance(a, ssm.Energize):
                self._do_pilot(self.pilot.set_ready(a.on, self.now))
            elif isinstance(a, ssm.UseMode):
                self._do_pilot(self.pilot.set_mode(a.mode, self.now))

    def _do_pilot(self, actions: list) -> None:
        for a in actions:
            if isinstance(a, psm.SetContactor):
                self.contactor.append((self.now, a.closed))
            elif isinstance(a, psm.SetPwm):
                self._do_ev(self.ev.on_duty(DUTY_STEADY if a.duty_pct is None else a.duty_pct, self.now))
            elif isinstance(a, psm.SetPilotError):
                self._do_ev(self.ev.on_duty(DUTY_OFF, self.now))
            elif isinstance(a, psm.PilotChanged):
                if a.previous is psm.PilotState.A:
                    self._do_secc(self.secc.plugged_in(self.now))
                elif a.state is psm.PilotState.A:
                    self._do_secc(self.secc.unplugged(self.now))

    def run(self, until: float) -> None:
        while True:
            moments = [t for t in (self.ev.next_deadline(), self.secc.next_deadline(), self.pilot.next_deadline(),
                                   self.scripted[0][0] if self.scripted else None) if t is not None]
            if not moments or min(moments) > until:
                self.now = until
                return
            self.now = max(self.now, min(moments))
            while self.scripted and self.scripted[0][0] <= self.now:
                _, _, what, arg = heapq.heappop(self.scripted)
                if what == "authorize":
                    self._do_secc(self.secc.authorize(arg, self.now))
                elif what == "current":
                    self._do_pilot(self.pilot.set_current(arg, self.now))
                    self._do_secc(self.secc.set_current(arg, self.now))
            self._do_secc(self.secc.tick(self.now))
            self._do_pilot(self.pilot.tick(self.now))
            self._do_ev(self.ev.tick(self.now))

    def of(self, kind: type) -> list:
        return [a for _, a in self.log if isinstance(a, kind)]


def test_hlc_ev_charges_renegotiates_and_stops_with_the_real_secc() -> None:
    ev = EvEmulator(EvParams(max_current_a=32, capacity_kwh=80, soc_pct=20, status_period_s=2, reask_s=2),
                    parse_plan("hlc on; plug; charge 32; wait 600; stop; wait 5; unplug"))
    bench = Bench(ev, allowed_a=16)
    bench.at(3.0, "authorize", "driver-7")
    bench.at(100.0, "current", 10.0)
    bench.run(50)
    assert ev.state is EvState.CHARGING_WITH_PROFILE and bench.secc.state is ssm.SessionState.CHARGING
    # Authorized at 3 s; the EV asks again every 2 s, so the 4 s Authorization goes through.
    assert bench.contactor == [(4.0, True)] and bench.draws == [(4.0, 16.0)]
    started = bench.of(ssm.SessionStarted)
    assert started == [ssm.SessionStarted(bench.secc.session_id, "driver-7", True, "EV0001")]
    bench.run(2000)
    assert [d for _, d in bench.draws] == [16.0, 10.0, 0.0]
    assert 100 <= bench.draws[1][0] <= 102  # the next ChargingStatus carries the renegotiation
    assert bench.contactor == [(4.0, True), (600.0, False)]
    assert bench.of(ssm.SessionEnded) == [ssm.SessionEnded(started[0].session_id, "ev_stopped")]
    assert ev.state is EvState.NOT_CONNECTED and ev.finished
    assert bench.secc.failure is None and bench.secc.state is ssm.SessionState.WAITING_EV
    t_reneg = bench.draws[1][0]
    assert ev.delivered_kwh == pytest.approx((16 * (t_reneg - 4) + 10 * (600 - t_reneg)) * 230 * 3 / 3.6e6)


def test_pwm_only_ev_is_charged_without_profile_after_the_hlc_wait() -> None:
    ev = EvEmulator(EvParams(max_current_a=32, capacity_kwh=80, soc_pct=20),
                    parse_plan("plug; charge; wait 60; stop; unplug"))
    bench = Bench(ev, allowed_a=20)
    bench.at(1.0, "authorize", "driver-9")
    bench.run(100)
    # Nothing before the charge point gives up waiting for HLC at 5 s; then the duty offers 20 A.
    assert bench.draws == [(5.0, pytest.approx(20.0)), (60.0, 0.0)]
    assert bench.contactor == [(5.0, True), (60.0, False)]
    assert bench.of(ssm.SessionStarted)[0].hlc is False
    assert ev.delivered_kwh == pytest.approx(20 * 55 * 690 / 3.6e6)


def test_the_charge_point_stops_an_hlc_ev_that_is_full_by_its_own_account() -> None:
    ev = EvEmulator(EvParams(max_current_a=16, capacity_kwh=1, soc_pct=90), parse_plan("hlc on; plug; charge"))
    bench = Bench(ev, allowed_a=32)
    bench.at(0.0, "authorize", "driver-1")
    bench.run(3600)
    full_after = 0.1 * 3.6e6 / (16 * 690)
    assert bench.contactor == [(pytest.approx(0.1), True), (pytest.approx(0.1 + full_after), False)]  # re-asked
    assert ev.p.soc_pct == 100 and ev.state is EvState.CONNECTED_NOT_CHARGING
    assert bench.of(ssm.SessionEnded)[0].reason == "ev_stopped"


def test_an_ev_that_ignores_the_pwm_stop_is_cut_off_after_6_s() -> None:
    ev = EvEmulator(EvParams(max_current_a=16), parse_plan("ignore_stop on; plug; charge; wait 600"))
    bench = Bench(ev, allowed_a=16)
    bench.at(0.0, "authorize", "driver-1")
    bench.at(100.0, "current", 0.0)  # the lease drops below 6 A: the charge point withdraws the PWM
    bench.run(200)
    assert bench.contactor == [(5.0, True), (106.0, False)]
    assert ev.load.value == "C" and ev.draw_a == 16  # still asking, but the contactor is open


def test_stop_then_unplug_finishes_the_hlc_session_before_unplugging() -> None:
    ev = EvEmulator(EvParams(max_current_a=16), parse_plan("hlc on; plug; charge; wait 60; stop; unplug"))
    bench = Bench(ev, allowed_a=16)
    bench.at(0.0, "authorize", "driver-1")
    bench.run(200)
    assert [e.reason for e in bench.of(ssm.SessionEnded)] == ["ev_stopped"]  # not "unplugged"
    assert "session stopped" in ev.events
    assert ev.events.index("session stopped") < ev.events.index("plan: unplug")
    assert ev.state is EvState.NOT_CONNECTED and ev.finished
