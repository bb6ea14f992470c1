"""Property: whatever the EV, the meter and the people do, energy flows only for an authorized session
(or in the 6 s an EV has to obey a stop), and every session gets at most one ticket, never negative."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.engine.core import EngineCore, ReadMeter, TicketClosed
from firmware.engine.pilot_sm import SetContactor
from hal.meter.reading import MeterReading

OPS = st.one_of(
    st.tuples(st.just("pilot"), st.sampled_from(["A", "B", "C", "D", "E", "INVALID"])),
    st.tuples(st.just("authorize"), st.sampled_from(["ann", "ben"])),
    st.tuples(st.just("button"), st.none()),
    st.tuples(st.just("stop"), st.none()),
    st.tuples(st.just("estop"), st.booleans()),
    st.tuples(st.just("read"), st.floats(min_value=0.0, max_value=0.5)),
    st.tuples(st.just("meter_dies"), st.none()),
    st.tuples(st.just("grant"), st.sampled_from([0.0, 6.0, 16.0, 32.0])),
    st.tuples(st.just("wait"), st.floats(min_value=0.0, max_value=20.0)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(OPS, max_size=50))
def test_energy_only_for_an_authorized_session_and_one_sane_ticket_each(ops):
    core = EngineCore("cp1", price_eur_kwh=0.3, max_current_a=32, fallback_a=6, local_drivers=("own",))
    now, kwh, reads, closed = 0.0, 100.0, [], False
    tickets = []

    def run(actions):
        nonlocal closed
        for a in actions:
            if isinstance(a, SetContactor):
                closed = a.closed
            elif isinstance(a, ReadMeter):
                reads.append(a.token)
            elif isinstance(a, TicketClosed):
                tickets.append(a.ticket)

    run(core.start(now))
    run(core.grant(16, math.inf, now))
    for op, arg in ops:
        if op == "pilot":
            run(core.pilot_reading(arg, now))
        elif op == "authorize":
            run(core.authorize(arg, now))
        elif op == "button":
            run(core.manual_start(now))
        elif op == "stop":
            run(core.stop("driver_stop", now))
        elif op == "estop":
            run(core.emergency_stop(arg, now))
        elif op == "read":
            kwh += arg if closed else 0.0
            token = reads.pop(0) if reads else 0
            run(core.meter_reading(MeterReading((230.0,) * 3, (16.0,) * 3, 11000.0, kwh, now), now, token=token))
        elif op == "meter_dies":
            run(core.meter_failed("meter timeout", True, now))
        elif op == "grant":
            run(core.grant(arg, now + 30.0, now))
        else:
            now += arg
            run(core.tick(now))
        assert closed == core.pilot.contactor
        if closed:
            assert not core.pilot.faults
            if core.session.started:
                assert core.session.driver is not None
            else:
                # The session was stopped: the PWM is withdrawn and the EV has until the stop deadline
                # (6 s) to go back to B; the contactor is never opened under load before that.
                assert core.pilot.stopping and core.pilot.duty is None
                assert now < core.pilot.stop_deadline <= now + core.pilot.stop_timeout_s
    ids = [t.session_id for t in tickets]
    assert len(ids) == len(set(ids))
    assert all(t.kwh >= 0 and t.cost_eur >= 0 and t.end_ts >= t.start_ts for t in tickets)
    assert set(ids) <= {s.session_id for s in core.sessions}
