"""The EV emulator core in simulated time: states, the draw min(allowed, own max), full, plans, the EVCC flow."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.ev.emulator import EvEmulator, EvParams, EvState, SendMessage, SetDraw, SetLoad
from firmware.ev.plan import parse_plan
from firmware.protocols import iso15118 as iso
from hal.pilot.conversions import DUTY_HLC, DUTY_OFF, DUTY_STEADY, duty_for_current
from hal.pilot.physics import EvLoad


def sent(actions: list) -> list[iso.Message]:
    return [iso.decode(a.message) for a in actions if isinstance(a, SendMessage)]


def draws(actions: list) -> list[float]:
    return [a.current_a for a in actions if isinstance(a, SetDraw)]


def loads(actions: list) -> list[EvLoad]:
    return [a.load for a in actions if isinstance(a, SetLoad)]


def test_plug_charge_pwm_draws_min_of_allowed_and_own_max() -> None:
    ev = EvEmulator(EvParams(max_current_a=32))
    assert ev.state is EvState.NOT_CONNECTED
    assert loads(ev.plug(0)) == [EvLoad.B] and ev.state is EvState.CONNECTED_NOT_CHARGING
    assert ev.on_duty(DUTY_STEADY, 0) == []
    out = ev.charge(1)
    assert loads(out) == [EvLoad.C] and draws(out) == [] and ev.state is EvState.CHARGING_WITHOUT_PROFILE
    assert draws(ev.on_duty(duty_for_current(16), 2)) == [pytest.approx(16)]
    assert draws(ev.on_duty(duty_for_current(40), 3)) == [32]  # its own maximum
    assert draws(ev.on_duty(DUTY_HLC, 4)) == [0]  # 5 %: HLC required, and this EV has none
    assert draws(ev.on_duty(duty_for_current(10), 5)) == [pytest.approx(10)]
    out = ev.stop(6)
    assert draws(out) == [0] and loads(out) == [EvLoad.B] and ev.state is EvState.CONNECTED_NOT_CHARGING
    out = ev.unplug(7)
    assert loads(out) == [EvLoad.NOT_CONNECTED] and ev.state is EvState.NOT_CONNECTED


def test_energy_integrates_and_the_ev_stops_when_full() -> None:
    ev = EvEmulator(EvParams(capacity_kwh=40, soc_pct=50, max_current_a=16, phases=3))
    ev.plug(0)
    ev.on_duty(duty_for_current(16), 0)
    ev.charge(0)
    assert ev.draw_a == pytest.approx(16)
    ev.tick(3600)
    assert ev.delivered_kwh == pytest.approx(16 * 230 * 3 / 1000)  # 11.04 kWh in an hour
    full_at = ev.next_deadline()
    assert full_at == pytest.approx(3600 * 20 / 11.04)  # 20 kWh of room at 11.04 kW
    out = ev.tick(full_at)
    assert draws(out) == [0] and loads(out) == [EvLoad.B]
    assert ev.p.soc_pct == 100 and ev.delivered_kwh == pytest.approx(20)
    assert ev.state is EvState.CONNECTED_NOT_CHARGING and "battery full" in ev.events
    assert ev.charge(full_at + 1) == [] and "charge asked with a full battery: ignored" in ev.events


def test_pwm_stop_sends_the_ev_back_to_b_and_pwm_back_resumes() -> None:
    ev = EvEmulator(EvParams(max_current_a=32))
    ev.plug(0)
    ev.charge(0)
    ev.on_duty(duty_for_current(20), 1)
    out = ev.on_duty(DUTY_STEADY, 2)
    assert draws(out) == [0] and loads(out) == [EvLoad.B] and ev.want_charge
    out = ev.on_duty(duty_for_current(20), 3)
    assert loads(out) == [EvLoad.C] and draws(out) == [pytest.approx(20)]
    out = ev.on_duty(DUTY_OFF, 4)  # state F from the charge point
    assert draws(out) == [0] and loads(out) == [EvLoad.B]


def test_an_ev_that_ignores_the_pwm_stop_keeps_drawing() -> None:
    ev = EvEmulator(EvParams(max_current_a=32), parse_plan("ignore_stop on; plug; charge"))
    ev.start(0)
    ev.on_duty(duty_for_current(20), 1)
    assert ev.on_duty(DUTY_STEADY, 2) == [] and ev.load is EvLoad.C and ev.draw_a == pytest.approx(20)
    out = ev.stop(3)  # its own stop still works
    assert draws(out) == [0] and loads(out) == [EvLoad.B]


def test_charge_while_unplugged_is_ignored() -> None:
    ev = EvEmulator()
    assert ev.charge(0, 16) == [] and not ev.want_charge
    assert "charge asked while not plugged in: ignored" in ev.events


def run(ev: EvEmulator, until: float, duty: float | None = None, secc=None) -> list[tuple[float, object]]:
    """Drive `ev` in simulated time from its plan; `secc(msg, now)` answers requests at once."""
    log: list[tuple[float, object]] = []
    inbox: list = []

    def handle(actions: list, now: float) -> None:
        for a in actions:
            log.append((now, a))
            if isinstance(a, SendMessage) and secc is not None:
                reply = secc(iso.decode(a.message), now)
                if reply is not None:
                    inbox.append(reply)

    handle(ev.start(0.0), 0.0)
    if duty is not None:
        handle(ev.on_duty(duty, 0.0), 0.0)
    now = 0.0
    while True:
        while inbox:
            handle(ev.on_message(inbox.pop(0).to_dict(), now), now)
        nxt = ev.next_deadline()
        if nxt is None or nxt > until:
            return log
        now = max(now, nxt)
        handle(ev.tick(now), now)


def test_the_reference_plan_in_simulated_time() -> None:
    ev = EvEmulator(EvParams(max_current_a=32, capacity_kwh=100, soc_pct=10),
                    parse_plan("plug; wait 60; charge 32; wait 420; stop; unplug"))
    log = run(ev, 10_000, duty=duty_for_current(16))
    assert [(t, a) for t, a in log] == [
        (0.0, SetLoad(EvLoad.B)), (60.0, SetLoad(EvLoad.C)), (60.0, SetDraw(pytest.approx(16), 3)),
        (480.0, SetDraw(0.0, 3)), (480.0, SetLoad(EvLoad.B)), (480.0, SetLoad(EvLoad.NOT_CONNECTED))]
    assert ev.finished and ev.delivered_kwh == pytest.approx(16 * 230 * 3 * 420 / 3.6e6)


def test_wait_full_waits_for_the_end_of_the_charge() -> None:
    ev = EvEmulator(EvParams(capacity_kwh=1, soc_pct=50), parse_plan("plug; charge 16; wait full; unplug"))
    log = run(ev, 10_000, duty=duty_for_current(16))
    t_unplug = [t for t, a in log if a == SetLoad(EvLoad.NOT_CONNECTED)]
    assert t_unplug == [pytest.approx(0.5 * 3.6e6 / (16 * 230 * 3))] and ev.finished


class Secc:
    """A scripted SECC for the EV's unit tests: answers every request OK (knobs for the bad cases)."""

    def __init__(self, evse_max: float = 20.0, schedule=(), auth_ongoing: int = 0) -> None:
        self.evse_max, self.schedule, self.auth_ongoing = evse_max, tuple(schedule), auth_ongoing
        self.seen: list[tuple[float, iso.Message]] = []
        self.notification = "None"
        self.silent = False

    def __call__(self, msg: iso.Message, now: float) -> iso.Message | None:
        self.seen.append((now, msg))
        if self.silent:
            return None
        sid = "ab12"
        match msg:
            case iso.SessionSetupReq():
                return iso.SessionSetupRes(session_id=sid, response_code=iso.OK_NEW_SESSION, evse_id="cp1")
            case iso.AuthorizationReq():
                self.auth_ongoing -= 1
                return iso.AuthorizationRes(session_id=sid, evse_processing="Ongoing" if self.auth_ongoing >= 0
                                            else "Finished")
            case iso.ChargeParameterDiscoveryReq():
                return iso.ChargeParameterDiscoveryRes(session_id=sid, evse_max_current_a=self.evse_max,
                                                       schedule=self.schedule)
            case iso.ChargingStatusReq():
                return iso.ChargingStatusRes(session_id=sid, evse_max_current_a=self.evse_max,
                                             evse_notification=self.notification)
        return iso.response_to(msg)(session_id=sid)

    def types(self) -> list[str]:
        return [type(m).__name__.removesuffix("Req") for _, m in self.seen]


def test_hlc_flow_states_and_draw_follow_the_schedule() -> None:
    secc = Secc(evse_max=20, schedule=[iso.ScheduleEntry(0, 16), iso.ScheduleEntry(30, 8)], auth_ongoing=2)
    ev = EvEmulator(EvParams(max_current_a=32, capacity_kwh=100, soc_pct=40, need_kwh=10, status_period_s=5,
                             reask_s=3), parse_plan("hlc on; plug; charge; wait 100; stop"))
    log = run(ev, 1000, duty=DUTY_HLC, secc=secc)
    assert secc.types() == ["SessionSetup", "ServiceDiscovery", "PaymentServiceSelection", "Authorization",
                            "Authorization", "Authorization", "ChargeParameterDiscovery", "PowerDelivery"] + \
        ["ChargingStatus"] * 18 + ["PowerDelivery", "SessionStop"]
    auth_times = [t for t, m in secc.seen if isinstance(m, iso.AuthorizationReq)]
    assert auth_times == [0, 3, 6]  # re-asked at its own pace (not the status pace) while the SECC says Ongoing
    cpd = next(m for _, m in secc.seen if isinstance(m, iso.ChargeParameterDiscoveryReq))
    assert (cpd.energy_request_kwh, cpd.max_current_a, cpd.energy_mode) == (10, 32, "AC_three_phase_core")
    assert all(m.session_id == "ab12" for _, m in secc.seen[1:])
    states = [e for e in ev.events if e.startswith("state")]
    assert states == ["state not_connected -> connected_not_charging", "state connected_not_charging -> send_needs",
                      "state send_needs -> receive_scheduling", "state receive_scheduling -> charging_with_profile",
                      "state charging_with_profile -> connected_not_charging"]
    assert [(t, a.current_a) for t, a in log if isinstance(a, SetDraw)] == [(6, 16), (36, 8), (100, 0)]
    stops = [m for _, m in secc.seen if isinstance(m, iso.PowerDeliveryReq)]
    assert [m.charge_progress for m in stops] == ["Start", "Stop"]
    assert [(t, a.load) for t, a in log if isinstance(a, SetLoad)] == [(0, EvLoad.B), (6, EvLoad.C), (100, EvLoad.B)]


def test_hlc_draw_is_capped_by_own_max_and_zero_without_pwm() -> None:
    secc = Secc(evse_max=63)
    ev = EvEmulator(EvParams(max_current_a=32), parse_plan("hlc on; plug; wait 10; charge"))
    run(ev, 5, duty=DUTY_HLC, secc=secc)
    assert secc.types() == ["SessionSetup", "ServiceDiscovery", "PaymentServiceSelection", "Authorization",
                            "SessionStop"]  # opened at once on plug; paused, since no charge was asked yet
    assert secc.seen[-1][1].charging_session == "Pause" and ev.allowed_a == 0  # 5 % alone grants nothing
    assert ev.state is EvState.CONNECTED_NOT_CHARGING and ev.load is EvLoad.B
    run_more(ev, secc, 10.5)
    assert secc.seen[5][1] == iso.SessionSetupReq(session_id="ab12", evcc_id="EV0001")  # resumes the session
    assert ev.draw_a == 32 and ev.state is EvState.CHARGING_WITH_PROFILE
    assert draws(ev.on_duty(DUTY_STEADY, 11)) == [0]  # the charge point took the PWM away


def test_hlc_charge_point_asks_to_stop_and_to_renegotiate() -> None:
    secc = Secc(evse_max=20)
    ev = EvEmulator(EvParams(hlc=True, status_period_s=1), parse_plan("plug; charge; wait 1000"))
    run(ev, 3.5, duty=DUTY_HLC, secc=secc)
    assert ev.state is EvState.CHARGING_WITH_PROFILE and ev.draw_a == 20
    secc.notification, secc.evse_max = "ReNegotiation", 10
    run_more(ev, secc, 4.5)
    secc.notification = "None"
    run_more(ev, secc, 6.5)
    assert secc.types()[-6:] == ["ChargingStatus", "PowerDelivery", "ChargeParameterDiscovery", "PowerDelivery",
                                 "ChargingStatus", "ChargingStatus"]
    assert [m.charge_progress for _, m in secc.seen if isinstance(m, iso.PowerDeliveryReq)] == [
        "Start", "Renegotiate", "Start"]
    assert ev.draw_a == 10 and ev.state is EvState.CHARGING_WITH_PROFILE
    secc.notification = "StopCharging"
    run_more(ev, secc, 8)
    assert secc.types()[-2:] == ["PowerDelivery", "SessionStop"] and ev.draw_a == 0
    assert ev.state is EvState.CONNECTED_NOT_CHARGING and ev.load is EvLoad.B and not ev.want_charge


def run_more(ev: EvEmulator, secc: Secc, until: float) -> None:
    """Go on driving an EV already started by `run`."""
    while True:
        nxt = ev.next_deadline()
        if nxt is None or nxt > until:
            return
        out = ev.tick(nxt)
        while out:
            replies = [secc(m, nxt) for m in sent(out)]
            out = [a for r in replies if r is not None for a in ev.on_message(r.to_dict(), nxt)]


@pytest.mark.parametrize("bad", ["timeout", "code", "unexpected", "garbage"])
def test_hlc_failures_end_the_session_safely(bad: str) -> None:
    secc = Secc()
    ev = EvEmulator(EvParams(hlc=True, response_timeout_s=3), parse_plan("plug; charge"))
    run(ev, 2.5, duty=DUTY_HLC, secc=secc)
    assert ev.state is EvState.CHARGING_WITH_PROFILE and ev.draw_a > 0
    if bad == "timeout":
        secc.silent = True
        run_more(ev, secc, 10)
        assert "HLC session aborted: no ChargingStatusRes within 3 s" in ev.events
    else:
        ev.tick(ev.next_deadline())  # a ChargingStatusReq goes out; answer it badly
        reply = {"code": iso.ChargingStatusRes(session_id="ab12", response_code=iso.FAILED).to_dict(),
                 "unexpected": iso.SessionSetupRes(session_id="ab12").to_dict(),
                 "garbage": {"type": "ChargingStatusRes", "evse_max_current_a": "lots"}}[bad]
        ev.on_message(reply, 4)
        assert any(e.startswith("HLC session aborted") for e in ev.events)
    assert ev.draw_a == 0 and ev.load is EvLoad.B and ev.state is EvState.CONNECTED_NOT_CHARGING
    assert ev.next_deadline() is None


def test_stop_while_a_response_is_awaited_waits_for_it() -> None:
    secc = Secc()
    ev = EvEmulator(EvParams(hlc=True))
    (req,) = sent(ev.plug(0))
    assert ev.charge(0.05) == [] and ev.stop(0.1) == []  # SessionSetupRes still awaited
    out = ev.on_message(secc(req, 0.2).to_dict(), 0.2)
    assert sent(out) == [iso.SessionStopReq(session_id="ab12")]  # terminate: no PowerDelivery(Start) went out
    ev.on_message(iso.SessionStopRes(session_id="ab12").to_dict(), 0.3)
    assert ev.state is EvState.CONNECTED_NOT_CHARGING and ev.next_deadline() is None


def test_unplug_mid_session_drops_everything() -> None:
    secc = Secc()
    ev = EvEmulator(EvParams(hlc=True), parse_plan("plug; charge; wait 5; unplug"))
    log = run(ev, 100, duty=DUTY_HLC, secc=secc)
    assert log[-2:] == [(5, SetDraw(0.0, 3)), (5, SetLoad(EvLoad.NOT_CONNECTED))]
    assert ev.state is EvState.NOT_CONNECTED and ev.next_deadline() is None
    assert ev.on_message(iso.ChargingStatusRes(session_id="ab12").to_dict(), 6) == []  # a straggler


def test_ventilation_asks_in_d_and_a_broken_diode_shows_on_every_load() -> None:
    ev = EvEmulator(EvParams(max_current_a=16), parse_plan("ventilation on; diode off; plug; charge"))
    out = ev.start(0)
    assert loads(out) == [EvLoad.NOT_CONNECTED, EvLoad.B, EvLoad.D]  # the diode changed before the plug
    assert all(not a.diode for a in out if isinstance(a, SetLoad))
    assert draws(ev.on_duty(duty_for_current(10), 1)) == [pytest.approx(10)]
    out = ev.stop(2)
    assert draws(out) == [0] and loads(out) == [EvLoad.B]


def test_hlc_limit_dropping_to_zero_stops_the_draw() -> None:
    secc = Secc(evse_max=16)
    ev = EvEmulator(EvParams(hlc=True, status_period_s=1), parse_plan("plug; charge; wait 1000"))
    run(ev, 2.5, duty=DUTY_HLC, secc=secc)
    assert ev.draw_a == 16
    secc.evse_max = 0
    run_more(ev, secc, 3.5)
    assert ev.draw_a == 0 and ev.state is EvState.CHARGING_WITH_PROFILE
    secc.evse_max = 8
    run_more(ev, secc, 4.5)
    assert ev.draw_a == 8


DUTIES = st.sampled_from([DUTY_OFF, DUTY_HLC, DUTY_STEADY, 8.5, 10.0, 26.7, 50.0, 85.0, 90.0, 96.0])
OPS = st.lists(st.one_of(
    st.tuples(st.just("plug")), st.tuples(st.just("unplug")), st.tuples(st.just("stop")),
    st.tuples(st.just("charge"), st.one_of(st.none(), st.floats(1, 80))),
    st.tuples(st.just("duty"), DUTIES), st.tuples(st.just("wait"), st.floats(0, 7200)),
), max_size=40)


@settings(max_examples=200, deadline=None)
@given(ops=OPS, hlc=st.booleans(), capacity=st.floats(1, 100), soc=st.floats(0, 100))
def test_the_draw_never_exceeds_what_is_allowed_or_the_evs_own_maximum(ops, hlc, capacity, soc) -> None:
    secc = Secc(evse_max=20)
    ev = EvEmulator(EvParams(hlc=hlc, capacity_kwh=capacity, soc_pct=soc, status_period_s=1))
    now = 0.0
    for op in ops:
        if op[0] == "wait":
            end = now + op[1]
            while (nxt := ev.next_deadline()) is not None and nxt <= end:
                now = max(now, nxt)
                out = ev.tick(now)
                while out:  # the SECC answers at once
                    replies = [secc(m, now) for m in sent(out)]
                    out = [a for r in replies if r is not None for a in ev.on_message(r.to_dict(), now)]
            now = end
        elif op[0] == "duty":
            ev.on_duty(op[1], now)
        elif op[0] == "charge":
            ev.charge(now, op[1])
        else:
            getattr(ev, op[0])(now)
        assert 0 <= ev.draw_a <= ev.p.max_current_a + 1e-9
        assert ev.draw_a <= ev.allowed_a + 1e-9
        assert ev.draw_a == 0 or ev.load in (EvLoad.C, EvLoad.D)
        assert (ev.load is EvLoad.NOT_CONNECTED) == (ev.state is EvState.NOT_CONNECTED)
        assert 0 <= ev.p.soc_pct <= 100 and ev.delivered_kwh >= 0


def test_hlc_session_dropped_when_the_pilot_goes_off_and_reopened_at_5_percent() -> None:
    secc = Secc(evse_max=16)
    ev = EvEmulator(EvParams(hlc=True, status_period_s=1), parse_plan("plug; charge; wait 1000"))
    run(ev, 2.5, duty=DUTY_HLC, secc=secc)
    assert ev.state is EvState.CHARGING_WITH_PROFILE and ev.draw_a == 16
    out = ev.on_duty(DUTY_OFF, 3)  # the charge point died (its end of the cable reads -12 V / nothing)
    assert draws(out) == [0] and loads(out) == [EvLoad.B] and ev.state is EvState.CONNECTED_NOT_CHARGING
    assert ev.want_charge and "pilot off: HLC session dropped" in ev.events
    out = ev.on_duty(DUTY_HLC, 4)  # a restarted charge point offers HLC again
    assert sent(out) == [iso.SessionSetupReq(evcc_id="EV0001")]  # a new session, no old id
    run_more_with(ev, secc, out, 4)
    assert ev.state is EvState.CHARGING_WITH_PROFILE and ev.draw_a == 16


def run_more_with(ev: EvEmulator, secc: Secc, out: list, now: float) -> None:
    while out:
        replies = [secc(m, now) for m in sent(out)]
        out = [a for r in replies if r is not None for a in ev.on_message(r.to_dict(), now)]
