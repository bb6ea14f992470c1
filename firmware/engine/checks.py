"""What a real charger checks in its meter's readings, sans-I/O: the engine core feeds every good reading
and every contactor command, and raises the fault a check returns. docs/engine-checks.md has the why.

- `over_current`: a phase draws more than (offer + noise) x (1 + tolerance) for `overcurrent_delay_s`
  (`evnet.config.schema.SafetyConfig`, EVerest's defaults), where the offer is the highest of the last
  REACTION_S: IEC 61851-1 gives an EV 5 s to follow each lower offer, so under successive lowerings a
  compliant EV stays above the latest one for longer than the delay. Retried like a pilot fault.
- `relay_welded`: current flows while the contactor has been commanded open: WELD_READINGS readings
  in a row, each taken WELD_GRACE_S or more after the command (a contactor takes tens of ms to open,
  a meter's registers lag its measurement), each with a phase at FLOW_A or more. Latched: the
  contactor cannot stop the energy, so the engine asks the monitor to cut the safety line.
- `meter_stuck`: the import register does not move while current flows. The energy that must have
  flowed is counted conservatively (each interval at the lower of its two readings' V x I, phases
  under FLOW_A ignored, intervals capped at MAX_INTERVAL_S) and the fault comes only when it reaches
  STUCK_STEPS steps of the register's resolution (0.01 kWh, or the float32's own step when the
  register is so large that it is coarser), none of which the register showed. A working meter
  moves at least STUCK_STEPS - 1 steps by then whatever the current, so low currents only make the
  check slower, never wrong. Latched: the readings can no longer be billed.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

from evnet.config.schema import SafetyConfig
from evnet.logs import EventLogger, event_logger

FLOW_A = 1.0  # a phase "carries current" from here: above any meter's no-load reading, below any EV's 6 A
WELD_GRACE_S = 2.0  # after the open command, before a reading may show a weld
WELD_READINGS = 2  # readings in a row that must show it
RESOLUTION_KWH = 0.01  # the import register's resolution as an SDM630 shows it
STUCK_STEPS = 5  # steps of resolution that must have flowed, unseen, before the register is called stuck
MAX_INTERVAL_S = 10.0  # a longer gap between readings counts as this long (current may have stopped)
REACTION_S = 5.0  # IEC 61851-1: an EV follows a lower offer within this; until then it may draw the old one

OVER_CURRENT = "over_current"
RELAY_WELDED = "relay_welded"
METER_STUCK = "meter_stuck"


class Reading(Protocol):
    @property
    def import_kwh(self) -> float: ...
    @property
    def voltage_v(self) -> tuple[float, float, float]: ...
    @property
    def current_a(self) -> tuple[float, float, float]: ...


def _flow_w(reading: Reading) -> float:
    """V x I over the phases that carry current (apparent power: at least the active power)."""
    return sum(max(v, 0.0) * a for v, a in zip(reading.voltage_v, reading.current_a, strict=True) if a >= FLOW_A)


def register_step_kwh(kwh: float) -> float:
    """The smallest move the import register can show at `kwh`: its resolution, or float32's step there."""
    return max(RESOLUTION_KWH, math.ulp(abs(kwh)) * 2.0 ** 29)  # float32 has 29 fewer mantissa bits


class MeterChecks:
    """The three checks, over one charge point's readings; `now` is the engine's domain clock."""

    def __init__(self, limits: SafetyConfig | None = None, log: EventLogger | None = None) -> None:
        self.limits = limits or SafetyConfig()
        self.log = log or event_logger("engine")
        self._over_since: float | None = None
        self._offers: deque[tuple[float, float]] = deque([(-math.inf, 0.0)])  # (from, amps), oldest first
        self._open_since: float | None = None  # when the contactor was commanded open (None: closed/unknown)
        self._closed = False
        self._weld_seen = 0
        self._previous: tuple[float, Reading] | None = None
        self._unseen_kwh = 0.0  # energy that flowed since the register last moved
        self._register_kwh: float | None = None

    def over_limit_a(self, offered_a: float) -> float:
        """The current a phase may draw on an offer of `offered_a` before the over-current timer starts."""
        lim = self.limits
        return (offered_a + lim.overcurrent_noise_a) * (1.0 + lim.overcurrent_tolerance_pct / 100.0)

    def offer(self, amps: float, now: float) -> None:
        """The current offered to the EV changed (its pilot's duty or its ISO 15118 limit)."""
        self._offers.append((now, amps))
        self.owed_a(now)

    def owed_a(self, now: float) -> float:
        """What a compliant EV may still draw at `now`: the highest offer of the last REACTION_S."""
        offers = self._offers
        while len(offers) > 1 and offers[1][0] <= now - REACTION_S:
            offers.popleft()  # superseded before the window began
        return max(amps for _, amps in offers)

    def contactor(self, closed: bool, now: float) -> None:
        """The engine commanded the contactor."""
        self._closed = closed
        self._open_since = None if closed else now
        self._weld_seen = 0
        self._over_since = None

    def reading(self, reading: Reading, now: float) -> str | None:
        """Take a good reading; the code of a fault it shows, if any."""
        return self._weld(reading, now) or self._stuck(reading, now) or self._over_current(reading, now)

    def _over_current(self, reading: Reading, now: float) -> str | None:
        offered_a = self.owed_a(now)
        if not self._closed or max(reading.current_a) <= self.over_limit_a(offered_a):
            self._over_since = None
            return None
        if self._over_since is None:
            self._over_since = now
            self.log.warning("engine.over_current", drawn_a=max(reading.current_a), offered_a=offered_a,
                             limit_a=round(self.over_limit_a(offered_a), 3), trips_in_s=self.limits.overcurrent_delay_s)
        if now - self._over_since < self.limits.overcurrent_delay_s:
            return None
        self._over_since = None
        return OVER_CURRENT

    def _weld(self, reading: Reading, now: float) -> str | None:
        if self._closed:
            return None
        if self._open_since is None:  # the first reading since start: the contactor was opened at start
            self._open_since = now
        if now - self._open_since < WELD_GRACE_S or max(reading.current_a) < FLOW_A:
            self._weld_seen = 0
            return None
        self._weld_seen += 1
        if self._weld_seen < WELD_READINGS:
            return None
        self.log.error("engine.relay_welded", current_a=max(reading.current_a),
                       open_for_s=round(now - self._open_since, 3))
        return RELAY_WELDED

    def _stuck(self, reading: Reading, now: float) -> str | None:
        previous, self._previous = self._previous, (now, reading)
        if self._register_kwh is None or reading.import_kwh > self._register_kwh:
            self._register_kwh, self._unseen_kwh = reading.import_kwh, 0.0
            return None
        if previous is None:
            return None
        seconds = min(max(now - previous[0], 0.0), MAX_INTERVAL_S)
        self._unseen_kwh += min(_flow_w(previous[1]), _flow_w(reading)) * seconds / 3_600_000.0
        if self._unseen_kwh < STUCK_STEPS * register_step_kwh(reading.import_kwh):
            return None
        self.log.error("engine.meter_stuck", import_kwh=reading.import_kwh, unseen_kwh=round(self._unseen_kwh, 4))
        self._unseen_kwh = 0.0
        return METER_STUCK
