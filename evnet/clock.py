"""Clocks: every component takes one, so tests and demos control time.

Domain time (EV behaviour, energy, session length) may run faster than real time
(`RealClock(speed=60)`); protocol timings (leases, heartbeats, the EV's reaction time) stay in
real time, so a component that keeps one in domain time scales it by the clock's `speed`.
`ManualClock` moves only when a test advances it, which makes runs deterministic.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What a component may ask of time."""

    def monotonic(self) -> float:
        """Seconds of domain time since an arbitrary origin; never goes back."""

    def time(self) -> float:
        """Domain wall time as a Unix timestamp, for `ts` fields and tickets."""

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of domain time."""

    @property
    def speed(self) -> float:
        """Domain seconds per real second: a protocol timing of T real seconds is T * speed of domain time."""

    def real_seconds(self, domain_seconds: float) -> float:
        """How long a thread should wait, in real time, for `domain_seconds` of domain time to pass."""


class RealClock:
    """Real time, scaled by `speed` (60 turns a minute of domain time into a second)."""

    def __init__(self, speed: float = 1.0, origin: float | None = None) -> None:
        """`origin` (Unix seconds): where domain wall time meets real wall time. By default the clock's
        creation; processes that share one (a demo's, across restarts) agree on domain wall time, so a
        ticket begun before a restart never ends before it began."""
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"clock speed must be > 0, got {speed!r}")
        self._speed = float(speed)
        self._mono0 = time.monotonic()
        wall = time.time()
        self._wall0 = wall if origin is None else origin + (wall - origin) * self._speed

    @property
    def speed(self) -> float:
        return self._speed

    def monotonic(self) -> float:
        return (time.monotonic() - self._mono0) * self._speed

    def time(self) -> float:
        return self._wall0 + self.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self._speed)

    def real_seconds(self, domain_seconds: float) -> float:
        """How long `domain_seconds` of domain time take in real time."""
        return domain_seconds / self._speed


class ManualClock:
    """A clock that moves only when told; `sleep` advances it at once.

    Threads may wait for a moment with `wait_until`, which returns when another
    thread advances the clock far enough. Its `speed` is 1: the test's time is both the
    domain's and the protocols'. A thread that waits on something else (a queue) cannot
    foresee when a test will advance the clock, so `real_seconds` answers a short slice
    (`POLL_S`) and the waiter looks again soon.
    """

    POLL_S = 0.005
    speed = 1.0

    def __init__(self, start: float = 0.0, wall_origin: float = 1_800_000_000.0) -> None:
        self._now = float(start)
        self._wall_origin = wall_origin
        self._cond = threading.Condition()

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def time(self) -> float:
        return self._wall_origin + self.monotonic()

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def real_seconds(self, domain_seconds: float) -> float:
        return min(max(0.0, domain_seconds), self.POLL_S)

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds!r} s)")
        with self._cond:
            self._now += seconds
            self._cond.notify_all()
            return self._now

    def set(self, now: float) -> None:
        with self._cond:
            if now < self._now:
                raise ValueError(f"a clock does not go back ({self._now} -> {now})")
            self._now = now
            self._cond.notify_all()

    def wait_until(self, moment: float, timeout: float | None = None) -> bool:
        """Block (in real time, at most `timeout`) until the clock reaches `moment`."""
        with self._cond:
            return self._cond.wait_for(lambda: self._now >= moment, timeout)
