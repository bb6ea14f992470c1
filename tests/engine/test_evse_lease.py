"""The current lease is a protocol timing: it runs in real time whatever the speed of domain time."""

from __future__ import annotations

import logging
import threading

import pytest

from .conftest import wait_for

SPEED = 60.0


def test_at_speed_60_a_late_loop_does_not_lose_its_lease(evse_factory, caplog):
    """A 5 s lease is 5 s of real time at --speed 60 (not 83 ms), so a control loop that is 200 ms late
    (a slow step, a pause) is still within its lease when it renews it."""
    caplog.set_level(logging.INFO, logger="evnet.engine")
    evse = evse_factory(speed=SPEED)
    caplog.clear()  # before its first grant the engine allows the fallback: that is no expiry
    lease_s = evse.cfg.site.lease_s
    left = evse.core.lease.expires_at - evse.clock.monotonic()
    assert lease_s * SPEED / 2 < left <= lease_s * SPEED  # in domain seconds: lease_s of real time

    stalled, release = threading.Event(), threading.Event()
    real_authorize = evse.core.authorize

    def slow(driver, now):  # one step of the control loop takes 200 ms of real time (12 domain seconds)
        stalled.set()
        release.wait(0.2)
        return real_authorize(driver, now)

    evse.core.authorize = slow
    evse.authorize("x")
    assert stalled.wait(5)
    iterations = evse.loop_iterations
    wait_for(lambda: evse.loop_iterations > iterations + 2, what="the loop to run on after the slow step")
    expired = [r.getMessage() for r in caplog.records if "lease_expired=True" in r.getMessage()]
    assert expired == [], expired
    assert evse.core.allowed_a == pytest.approx(16.0)
