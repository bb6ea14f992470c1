"""The allowed current as a lease: a grant holds until a moment, then the engine falls back.

Safety rule of the site (docs/architecture.md, "Sharing the fuse"): a charge point that
cannot renew its grant must be down at the fallback current by the time the lease ends, so the
site may hand its share to others after that. Here the grant comes from the configuration and
is renewed forever; a later issue lets the site's replicated state call `set_limit`.
Sans-I/O: every call takes `now`; `expires_at` is the timer the driver must honour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Grant:
    current_a: float
    until: float


class CurrentLease:
    """What current this charge point may offer at a moment, capped by its own maximum."""

    def __init__(self, max_current_a: float, fallback_a: float) -> None:
        if not 0 <= fallback_a <= max_current_a:
            raise ValueError(f"fallback {fallback_a} A must be between 0 and the maximum {max_current_a} A")
        self.max_current_a = float(max_current_a)
        self.fallback_a = float(fallback_a)
        self.grant_: Grant | None = None

    def grant(self, current_a: float, until: float) -> None:
        """Allow `current_a` until the moment `until` (domain time, the clock's monotonic)."""
        if not (current_a >= 0 and math.isfinite(current_a)) or until != until:
            raise ValueError(f"a grant needs a current >= 0 and a moment, got {current_a!r} until {until!r}")
        self.grant_ = Grant(float(current_a), float(until))

    def set_limit(self, amps: float, lease_until: float) -> None:
        """The site's form of `grant` (same meaning)."""
        self.grant(amps, lease_until)

    def current(self, now: float) -> float:
        """The allowed current at `now`: the grant while it holds, else the fallback; never above the maximum."""
        if self.grant_ is not None and now < self.grant_.until:
            return min(self.grant_.current_a, self.max_current_a)
        return min(self.fallback_a, self.max_current_a)

    def lapse(self, now: float) -> None:
        """A grant whose moment has passed is gone: its timer is not due again (a site that stopped renewing)."""
        if self.grant_ is not None and now >= self.grant_.until:
            self.grant_ = None

    def expired(self, now: float) -> bool:
        return self.grant_ is None or now >= self.grant_.until

    @property
    def expires_at(self) -> float | None:
        """When the current grant runs out (a timer for the driver), or None with no grant."""
        return None if self.grant_ is None or math.isinf(self.grant_.until) else self.grant_.until
