"""Property: whatever happens to the pilot machine, the contactor is only ever closed when it may be."""

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.engine.pilot_sm import Mode, PilotMachine, PilotState

READINGS = [s.value for s in PilotState]
OPS = st.one_of(  # (a PilotMachine method, its argument), or ("wait", seconds)
    st.tuples(st.just("pilot"), st.sampled_from(READINGS)),
    st.tuples(st.just("set_ready"), st.booleans()),
    st.tuples(st.just("set_mode"), st.sampled_from([Mode.HLC, Mode.PWM])),
    st.tuples(st.just("set_current"), st.sampled_from([0.0, 5.0, 6.0, 16.0, 32.0, 80.0])),
    st.tuples(st.just("fault"), st.sampled_from(["meter", "emergency_stop", "diode_fault"])),
    st.tuples(st.just("clear_fault"), st.sampled_from(["meter", "emergency_stop", "diode_fault"])),
    st.tuples(st.just("wait"), st.floats(min_value=0.0, max_value=12.0)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, max_size=60))
def test_the_contactor_is_closed_only_in_c_ready_and_unfaulted(ops):
    sm, now = PilotMachine(), 0.0
    stop_started = None
    for op, arg in ops:
        was_closed = sm.contactor
        if op == "wait":
            now += arg
            sm.tick(now)
        else:
            getattr(sm, op)(arg, now)
        if sm.contactor:
            assert sm.reading is PilotState.C and not sm.faults  # never closed outside C or with a fault
            if not sm.can_energize():  # a PWM stop in progress: at most 6 s of it
                stop_started = stop_started if was_closed and stop_started is not None else now
                assert sm.stop_deadline is not None and now < sm.stop_deadline <= stop_started + 6.0
            else:
                stop_started = None
        else:
            stop_started = None
        if op == "wait":  # right after a tick nothing due is left undone
            deadline = sm.next_deadline()
            assert deadline is None or deadline > now
