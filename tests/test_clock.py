"""Clocks: manual time moves only when told; real time scales by its speed."""

from __future__ import annotations

import threading
import time

import pytest

from evnet.clock import ManualClock, RealClock


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(start=10.0)
    assert clock.monotonic() == 10.0
    clock.advance(2.5)
    assert clock.monotonic() == 12.5
    clock.sleep(1.0)
    assert clock.monotonic() == 13.5
    assert clock.time() == pytest.approx(1_800_000_013.5)


def test_manual_clock_never_goes_back() -> None:
    clock = ManualClock(start=5.0)
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="does not go back"):
        clock.set(4.0)


def test_wait_until_wakes_when_another_thread_advances() -> None:
    clock = ManualClock()
    reached = threading.Event()

    def waiter() -> None:
        if clock.wait_until(3.0, timeout=10):
            reached.set()

    t = threading.Thread(target=waiter)
    t.start()
    clock.advance(1.0)
    assert not reached.wait(0.05)
    clock.advance(2.0)
    assert reached.wait(10)
    t.join()


def test_real_clock_runs_at_its_speed() -> None:
    clock = RealClock(speed=60)
    t0, r0 = clock.monotonic(), time.monotonic()
    clock.sleep(6.0)  # 0.1 s of real time
    domain, real = clock.monotonic() - t0, time.monotonic() - r0
    assert domain == pytest.approx(real * 60, rel=0.05)
    assert real >= 0.1 and clock.real_seconds(60) == 1.0


def test_real_clock_rejects_a_stopped_speed() -> None:
    with pytest.raises(ValueError, match="speed must be > 0"):
        RealClock(speed=0)


def test_every_clock_declares_its_speed_and_real_seconds() -> None:
    """Protocol timings in domain time scale by `speed`; waiters convert with `real_seconds`."""
    fast, manual = RealClock(speed=60), ManualClock()
    assert fast.speed == 60.0 and fast.real_seconds(30) == 0.5
    assert manual.speed == 1.0
    # A manual clock moves when a test says so, which a waiter cannot foresee: it is told to look again soon.
    assert manual.real_seconds(10.0) == ManualClock.POLL_S and manual.real_seconds(0.001) == 0.001
    assert manual.real_seconds(-1.0) == 0.0


def test_real_clock_rejects_an_infinite_speed() -> None:
    with pytest.raises(ValueError, match="speed must be > 0"):
        RealClock(speed=float("inf"))


def test_fast_clocks_sharing_an_origin_agree_on_wall_time_whenever_they_started() -> None:
    """A demo's charge point restarted at 60x: the ticket's end is after its start, as in the first process."""
    origin = time.time() - 100.0  # the demo began 100 real seconds ago
    before = RealClock(speed=60, origin=origin).time()
    time.sleep(0.01)
    after = RealClock(speed=60, origin=origin).time()  # a new process, later
    assert origin + 100 * 60 <= before < after < origin + 102 * 60
    assert abs(RealClock(speed=60).time() - time.time()) < 1  # without one: domain time starts at the wall
