"""The bridge's numbers, and the one place where a real-time duration becomes one on the engine's clock.

Every `now` the bridge is given is the engine's clock (`Clock.monotonic()`, the same value the
engine core gets), so that what it hands the engine (a grant `until`) needs no conversion. That
clock is domain time, which may run `speed` times faster than real time. Protocol timings (the
lease, the wait for a result, the pace of reports) are real time: they are configured in real
seconds and `on_engine_clock` scales them by `speed`, here and nowhere else. Session timings (the
checkpoint interval) are domain time, like the session itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from evnet.config import Config
from firmware.paxos import Options

# The site's Paxos timings: a heartbeat every 100 ms and elections after 300-600 ms of silence, half
# the pace of the Paxos defaults (tuned for sub-second key-value failover). Nothing of the site waits
# on a hung leader's replacement for less than a lease (seconds), a killed leader is replaced at once
# on its Last Will whatever the pace, and each beat costs every charge point CPU: the leader's idle
# share of a core was 2.75 % at 50 ms (bench/site.py).
SITE_OPTIONS = Options(heartbeat_interval=0.100, election_min=0.300, election_max=0.600)


@dataclass(frozen=True)
class BridgeSettings:
    cp: str
    price_eur_kwh: float
    max_current_a: float
    fallback_a: float
    lease_s: float                      # real: the lease until the site's results say theirs
    location: str = ""
    phases: int = 3
    local_drivers: tuple[str, ...] = ()  # who may start here when the site cannot be reached (the button)
    standing_driver: str | None = None   # a private point: every EV plugged in charges for this driver
    speed: float = 1.0                   # the engine clock's domain seconds per real second
    checkpoint_s: float = 60.0           # domain: a running session's reading goes to the site this often
    result_timeout_s: float = 2.0        # real: no result this long after a proposal -> the site is unreachable
    retry_max_s: float = 30.0            # real: a command that must reach the site is sent again, backing off to this
    report_band_a: float = 1.0           # the drawn current is reported when it moved this much ...
    report_min_s: float = 1.0            # real: ... but not more often than this
    report_every_s: float = 10.0         # real: a smaller change is reported this often
    ack_tolerance_a: float = 0.5         # a lowered grant is followed when the EV draws at most grant + this
    reaction_s: float = 5.0              # real: an EV's time to follow a lower duty (IEC 61851-1)

    def __post_init__(self) -> None:
        if not (self.speed > 0 and math.isfinite(self.speed)):
            raise ValueError(f"speed must be > 0, got {self.speed!r}")
        for name in ("lease_s", "checkpoint_s", "result_timeout_s", "retry_max_s", "report_min_s", "report_every_s",
                     "reaction_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    def on_engine_clock(self, real_s: float) -> float:
        """A real-time duration as a duration of the engine's clock."""
        return real_s * self.speed

    @classmethod
    def of(cls, cfg: Config, *, speed: float = 1.0, standing_driver: str | None = None,
           **more: float) -> BridgeSettings:
        """From a charge point's configuration (the same numbers its engine and the site's genesis use)."""
        cp = cfg.charge_point
        return cls(cp=cp.id, price_eur_kwh=cp.price_eur_kwh, max_current_a=cp.max_current_a,
                   fallback_a=min(cfg.site.fallback_a, cp.max_current_a), lease_s=cfg.site.lease_s,
                   location=cp.location, phases=cp.phases, local_drivers=tuple(cp.local_drivers),
                   standing_driver=standing_driver, speed=speed, **more)
