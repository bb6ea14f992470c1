"""The heartbeat protocol in simulated time: every transition of the monitor side, the responder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.protocols.heartbeat import (
    EngineHealthy,
    EngineLost,
    EngineStopped,
    Health,
    HeartbeatError,
    HeartbeatMonitor,
    HeartbeatResponder,
    Send,
    StatusChanged,
    decode_answer,
    decode_farewell,
    decode_heartbeat,
    encode_answer,
    encode_farewell,
    encode_heartbeat,
)


class Sim:
    """A monitor and an engine's responder joined by a link with a fixed latency, in simulated time."""

    def __init__(self, interval: float = 1.0, misses: int = 2, latency: float = 0.01, alive: bool = True,
                 **kw: float) -> None:
        self.mon = HeartbeatMonitor(interval, misses, **kw)
        self.eng = HeartbeatResponder()
        self.latency = latency
        self.alive = alive
        self.status = "AVAILABLE"
        self.now = 0.0
        self.events: list[tuple[float, object]] = []
        self._in_flight: list[tuple[float, bytes]] = []  # answers on their way to the monitor
        self._handle(self.mon.start(0.0))

    def _handle(self, actions: list) -> None:
        for a in actions:
            if isinstance(a, Send):
                if self.alive:
                    reply = self.eng.answer(a.payload, self.now, self.status)
                    if reply is not None:
                        self._in_flight.append((self.now + self.latency, reply))
            else:
                self.events.append((self.now, a))

    def run_until(self, t: float) -> None:
        while True:
            nxt = min([self.mon.next_deadline()] + [at for at, _ in self._in_flight])
            if nxt > t:
                self.now = t
                return
            self.now = nxt
            due = [p for at, p in self._in_flight if at <= self.now]
            self._in_flight = [(at, p) for at, p in self._in_flight if at > self.now]
            for p in due:
                self._handle(self.mon.receive(p, self.now))
            if self.mon.next_deadline() <= self.now:
                self._handle(self.mon.tick(self.now))

    def of(self, kind: type) -> list[tuple[float, object]]:
        return [(t, e) for t, e in self.events if isinstance(e, kind)]


def test_codec_round_trip_and_errors() -> None:
    assert encode_heartbeat(17) == b"HB 17"
    assert decode_heartbeat(b"HB 17") == 17
    assert encode_answer(17, "CHARGING") == b"HBA 17 CHARGING"
    assert decode_answer(b"HBA 17 CHARGING") == (17, "CHARGING")
    for bad in (b"", b"HB", b"HB x", b"HB -1", b"HB 1 2", b"XX 1", b"HB 99999999999"):
        with pytest.raises(HeartbeatError, match="HB|sequence"):
            decode_heartbeat(bad)
    for bad in (b"HBA 1", b"HBA 1 lower", b"HBA x OK", b"HB 1 OK", b"HBA 1 OK extra"):
        with pytest.raises(HeartbeatError):
            decode_answer(bad)
    with pytest.raises(HeartbeatError, match="upper-case token"):
        encode_answer(1, "not ok")


@given(st.integers(0, 2**31 - 1), st.from_regex(r"\A[A-Z][A-Z0-9_]{0,31}\Z"))
def test_codec_round_trip_any(seq: int, status: str) -> None:
    payload = encode_answer(seq, status)
    assert b"\x02" not in payload and b"\x03" not in payload
    assert decode_answer(payload) == (seq, status)
    assert decode_heartbeat(encode_heartbeat(seq)) == seq


def test_monitor_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="interval"):
        HeartbeatMonitor(0, 2)
    with pytest.raises(ValueError, match="misses"):
        HeartbeatMonitor(1, 0)
    with pytest.raises(ValueError, match="reply timeout"):
        HeartbeatMonitor(1, 2, reply_timeout_s=1.5)
    with pytest.raises(RuntimeError, match="before start"):
        HeartbeatMonitor(1, 2).tick(0)


def test_starting_to_healthy_on_first_answer_and_cadence() -> None:
    sim = Sim()
    assert sim.mon.health is Health.STARTING
    sim.run_until(0.005)
    assert sim.events == []
    sim.run_until(0.02)
    assert sim.events == [(0.01, EngineHealthy("AVAILABLE", recovered=False))]
    assert sim.mon.health is Health.HEALTHY
    sim.run_until(10.5)
    assert sim.mon.sent == 11 and sim.mon.answered == 11 and sim.mon.misses == 0
    assert sim.eng.last_seq == 11 and sim.eng.answered == 11
    assert len(sim.events) == 1


def test_status_change_reported_once() -> None:
    sim = Sim()
    sim.run_until(1.5)
    sim.status = "CHARGING"
    sim.run_until(4.5)
    assert sim.of(StatusChanged) == [(2.01, StatusChanged("CHARGING"))]
    assert sim.mon.engine_status == "CHARGING"


def test_one_miss_is_forgiven_by_the_next_answer() -> None:
    sim = Sim(misses=2)
    sim.run_until(0.5)
    sim.alive = False  # heartbeat 2 (t=1) goes unanswered
    sim.run_until(1.6)
    assert sim.mon.misses == 1 and sim.mon.health is Health.HEALTHY
    sim.alive = True
    sim.run_until(2.1)
    assert sim.mon.misses == 0
    sim.run_until(10)
    assert sim.of(EngineLost) == []


def test_misses_fault_once_then_answer_clears() -> None:
    sim = Sim(misses=2)
    sim.run_until(0.5)
    sim.status = "CHARGING"
    sim.run_until(1.5)
    sim.alive = False  # dies at 1.5 after answering heartbeat 2 (t=1)
    sim.run_until(10.0)
    lost = sim.of(EngineLost)
    # heartbeat 3 (t=2) expires at 2.4: miss 1; heartbeat 4 (t=3) expires at 3.4: miss 2 -> lost.
    assert lost == [(3.4, EngineLost(2, "CHARGING", 1.01))]
    assert sim.mon.faulted and sim.mon.misses == 8  # heartbeats 3..10 expired
    sim.alive = True
    sim.status = "AVAILABLE"
    sim.run_until(11.5)  # heartbeat 10 (t=10) went out while it was still dead; 11 is answered
    assert sim.of(EngineHealthy)[-1] == (11.01, EngineHealthy("AVAILABLE", recovered=True))
    assert sim.mon.health is Health.HEALTHY and sim.mon.misses == 0


@pytest.mark.parametrize("misses", [1, 2, 3, 5])
def test_worst_case_detection_is_misses_intervals_plus_reply_timeout(misses: int) -> None:
    sim = Sim(interval=1.0, misses=misses)
    sim.run_until(3.011)  # heartbeat 4 (t=3) was just answered
    sim.alive = False
    sim.run_until(20)
    (t, _), = sim.of(EngineLost)
    assert t - 3.011 <= misses * 1.0 + 0.4
    assert t == pytest.approx(3 + misses + 0.4)


def test_late_and_stale_answers_do_not_count() -> None:
    mon = HeartbeatMonitor(1.0, 2)
    (send,) = mon.start(0.0)
    seq = decode_heartbeat(send.payload)
    assert mon.receive(encode_answer(seq, "AVAILABLE"), 0.6) == []  # after the 0.4 s deadline
    assert mon.stale == 1
    assert mon.tick(0.6) == [] and mon.misses == 1
    (send2,) = mon.tick(1.0)
    assert mon.receive(encode_answer(seq, "AVAILABLE"), 1.1) == []  # an older number
    assert mon.stale == 2
    assert mon.receive(b"garbage", 1.1) == [] and mon.rejected == 1 and "HBA" in mon.last_error
    assert mon.receive(encode_answer(decode_heartbeat(send2.payload), "AVAILABLE"), 1.2) == [
        EngineHealthy("AVAILABLE", recovered=False)]


def test_starting_grace_delays_the_fault() -> None:
    sim = Sim(misses=2, startup_grace_s=5.0, alive=False)
    sim.run_until(4.9)
    assert sim.of(EngineLost) == [] and sim.mon.health is Health.STARTING and sim.mon.misses == 5
    sim.run_until(5.6)
    assert sim.of(EngineLost) == [(5.4, EngineLost(6, None, None))]


def test_no_grace_faults_an_engine_that_never_answers() -> None:
    mon = HeartbeatMonitor(1.0, 2)
    mon.start(0.0)
    assert mon.tick(0.5) == []
    mon.tick(1.0)
    assert mon.tick(1.5) == [EngineLost(2, None, None)]


def test_late_monitor_does_not_burst() -> None:
    mon = HeartbeatMonitor(1.0, 3)
    mon.start(0.0)
    actions = mon.tick(7.3)  # the monitor itself was stalled for 7 s
    assert [a for a in actions if isinstance(a, Send)] == [Send(b"HB 2")]
    assert mon.next_deadline() == pytest.approx(7.7)
    assert mon.tick(7.7) == [] and mon.misses == 2
    assert mon.next_deadline() == pytest.approx(8.3)  # a new cadence from the late heartbeat
    assert mon.tick(8.3) == [Send(b"HB 3")]


def test_reply_timeout_equal_to_interval() -> None:
    mon = HeartbeatMonitor(1.0, 1, reply_timeout_s=1.0)
    mon.start(0.0)
    actions = mon.tick(1.0)
    assert actions[0] == EngineLost(1, None, None) and actions[1] == Send(b"HB 2")


def test_responder_rejects_and_tracks_silence() -> None:
    eng = HeartbeatResponder()
    assert eng.monitor_silent(0.0, 3.0)
    assert eng.answer(b"HBA 1 OK", 1.0, "AVAILABLE") is None and eng.rejected == 1
    assert eng.answer(b"HB 5", 1.0, "FAULTED") == b"HBA 5 FAULTED"
    assert eng.answer(b"HB 6", 1.0, "out of order") == b"HBA 6 UNKNOWN" and "upper-case" in eng.last_error
    assert not eng.monitor_silent(3.9, 3.0)
    assert eng.monitor_silent(4.0, 3.0)


def test_a_planned_stop_is_said_and_its_silence_is_no_fault() -> None:
    sim = Sim(misses=2)
    sim.status = "CHARGING"
    sim.run_until(1.5)
    sim.alive = False
    sim._handle(sim.mon.receive(sim.eng.farewell("SHUTDOWN"), 1.5))  # said once its contactor is open
    assert sim.of(EngineStopped) == [(1.5, EngineStopped("SHUTDOWN", "CHARGING"))]
    sim.run_until(30.0)
    assert sim.of(EngineLost) == [] and sim.mon.health is Health.STOPPED
    sim.alive, sim.status = True, "AVAILABLE"  # the service manager starts it again
    sim.run_until(31.5)
    assert sim.of(EngineHealthy)[-1][1] == EngineHealthy("AVAILABLE", recovered=False)
    sim.alive = False  # and this time it dies unannounced: a fault, as ever
    sim.run_until(40.0)
    assert len(sim.of(EngineLost)) == 1 and sim.mon.faulted


def test_farewell_codec() -> None:
    assert encode_farewell("SHUTDOWN") == b"BYE SHUTDOWN" and decode_farewell(b"BYE SHUTDOWN") == "SHUTDOWN"
    for bad in (b"BYE", b"BYE shutdown", b"BYE A B", b"BYEBYE X", b"BYE " + b"X" * 40):
        with pytest.raises(HeartbeatError):
            decode_farewell(bad)
    with pytest.raises(HeartbeatError):
        encode_farewell("not a token")
    mon = HeartbeatMonitor(1.0, 2)
    mon.start(0.0)
    assert mon.receive(b"BYE lower", 0.1) == [] and mon.rejected == 1 and mon.health is Health.STARTING
