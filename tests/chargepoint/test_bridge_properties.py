"""The bridge under any sequence of what can happen around it (Hypothesis): the site falling silent and coming
back, slow answers, an EV plugged and unplugged, drivers' requests and stops, operator stops, the button,
another charge point taking its share, the site closing a session it thinks lost.

At every step: neither the engine's offer nor its EV's draw (following the offer with a lag) is above what
the site counts for this charge point (the fuse); a contactor is closed only for a session whose start the
site committed or the local list allowed while the site did not answer; a stop reaches the engine only from a
site decision. In the end, with the site back and the EV gone: every ticket of the engine was settled exactly
once, the site holds no session of this charge point, and a ticket the site made from ours has our energy."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from firmware.chargepoint import BILLED, RefuseStart, StopSession, TicketSettled

from .conftest import Rig, draw_rule, fuse_rule, start_gate

SITE_DECISIONS = {"operator", "driver", "site_closed", "refused"}

STEPS = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([0.1, 1.0, 3.0, 7.0, 15.0, 60.0])),
    st.tuples(st.just("site"), st.booleans()),
    st.tuples(st.just("latency"), st.sampled_from([0.01, 0.5, 3.0, 12.0])),
    st.tuples(st.just("arrive"), st.sampled_from(["request", "button", "nobody"])),
    st.tuples(st.sampled_from(["plug", "unplug", "ev_asks", "ev_stops", "request", "stop_charge", "operator_stop",
                               "operator_resume", "button", "other_starts", "other_stops", "close_lost", "leave",
                               "cut_off_and_closed"]),
              st.just(None)),
)


def step(r: Rig, op: str, arg: object, other: dict[str, str]) -> None:
    match op:
        case "advance":
            r.advance(arg)
        case "site":
            r.site_up = arg
        case "latency":
            r.latency = arg
        case "arrive":  # an EV plugs in, asks for energy, and someone asks the site (or nobody)
            if r.engine.pilot.reading.value == "A":
                r.plug_in()
                r.ask_for_energy()
                step(r, str(arg), None, other)
        case "leave":
            if r.engine.pilot.reading.value != "A":
                r.stop_asking()
                r.advance(1.0)
                r.unplug()
        case "plug":
            if r.engine.pilot.reading.value == "A":
                r.plug_in(pwm_after=0.0)
        case "unplug":
            r.unplug()
        case "ev_asks":
            if r.engine.pilot.reading.value != "A":
                r.ask_for_energy()
        case "ev_stops":
            if r.engine.pilot.reading.value != "A":
                r.stop_asking()
        case "request":
            r.signed("D1", "request_charge", at="cp1")
        case "stop_charge":
            r.signed("D1", "stop_charge")
        case "operator_stop":
            r.signed("op1", "stop_cp", cp="cp1")
        case "operator_resume":
            r.signed("op1", "resume_cp", cp="cp1")
        case "button":
            r.do(r.bridge.button(r.now))
        case "nobody":
            pass
        case "other_starts":
            if "session" not in other:
                r.signed("D2", "request_charge", at="cp2")
                session = f"cp2-{len(r.applied)}-{r.now}".replace(".", "_")
                if r.member("cp2", "start_session", cp="cp2", session=session, meter_wh=0).get("ok"):
                    other["session"] = session
                    r.member("cp2", "report", cp="cp2", plugged=True, drawn_a=32, ev_max_a=None)
        case "other_stops":
            if "session" in other:
                r.member("cp2", "stop_session", cp="cp2", session=other.pop("session"), meter_wh=1000, reason="ev")
        case "close_lost":
            r.member("cp2", "close_lost", cp="cp1")
        case "cut_off_and_closed":  # cut off longer than cp_lost_ms: the site closes its session
            r.site_up = False
            r.advance(40.0)
            r.member("cp2", "renew", cp="cp2")
            r.advance(40.0)
            r.member("cp2", "renew", cp="cp2")
            r.member("cp2", "close_lost", cp="cp1")
    r.member("cp2", "renew", cp="cp2")  # the rest of the site goes on (and site time with it)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEPS, min_size=1, max_size=30), st.booleans(), st.booleans(), st.sampled_from([0.0, 0.5, 3.0]),
       st.sampled_from([0.0, 2.0, 4.5]))
def test_the_bridge_keeps_the_fuse_the_start_gate_and_one_ticket_per_session(steps, owner_is_a_driver, charging_first,
                                                                            back, ev_lag) -> None:
    r = Rig(site_params={"cp_lost_ms": 60_000}, settings={"checkpoint_s": 20.0}, back=back, ev_lag=ev_lag)
    r.checks += [fuse_rule, draw_rule, start_gate]
    r.add_driver("D1")
    r.add_driver("D2")
    if owner_is_a_driver:
        r.add_driver("owner")
    r.other_online("cp2")
    other: dict[str, str] = {}
    if charging_first:  # most interesting runs start with a session: let most runs have one
        steps = [("arrive", "request"), ("advance", 3.0), *steps]
    for op, arg in steps:
        step(r, op, arg, other)
        assert {s.reason for s in r.of(StopSession)} <= SITE_DECISIONS
    # the end: the site back and quick, the EV gone, time for everything to settle
    r.site_up, r.latency, r.back = True, 0.05, 0.0
    r.stop_asking()
    r.unplug()
    for _ in range(12):
        r.advance(30.0)
        r.member("cp2", "renew", cp="cp2")
    tickets = {t.session_id: t for t in r.engine_tickets()}
    settled = Counter(s.session_id for s in r.of(TicketSettled))
    assert set(settled) == set(tickets) and all(n == 1 for n in settled.values()), (tickets, settled)
    assert r.site.view("cp1").session is None
    for s in r.of(TicketSettled):
        if s.outcome == BILLED:
            t = tickets[s.session_id]
            assert s.site_ticket["energy_wh"] == round(t.end_kwh * 1000) - round(t.start_kwh * 1000)
    assert not r.bridge.sessions.by_id and r.bridge.sessions.live is None
    for s in r.of(TicketSettled):  # what the runs went through (--hypothesis-show-statistics)
        event(f"settled {s.outcome}")
    event(f"energy {'flowed' if r.ever_closed() else 'never flowed'}")
    for what in [o.why for o in r.of(RefuseStart)] + [o.reason for o in r.of(StopSession)]:
        event(f"refused or stopped: {what}")
