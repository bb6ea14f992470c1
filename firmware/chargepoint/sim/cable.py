"""The physical side of one charge point: the EV on its cable, the contactor and the meter.

The EV reads the duty (`offer`), and draws `min(its own maximum, the duty's current)` once its
reaction time has passed after each change (a lower duty within 5 s, IEC 61851-1); a stubborn EV
never follows a lower one. Current flows only through a closed contactor of a running charge point.
The meter integrates what flows into its import register, and into the energy of the contactor
closure it flowed in (the ground truth a ticket is checked against).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware.chargepoint.sim.faults import Visit
from firmware.engine.checks import REACTION_S
from hal.meter.reading import MeterReading

VOLTS = 230.0
W_PER_A = 3 * VOLTS  # three phases


@dataclass
class Closure:
    """The contactor closed once: for which session, for which EV, and what flowed until it opened."""

    session: str | None
    driver: str | None
    cp: str
    start: float
    end: float | None = None
    wh: float = 0.0


@dataclass
class Cable:
    cp: str
    fallback_a: float
    kwh: float = 1000.0
    t: float = 0.0                     # the moment the register was brought up to
    ev: Visit | None = None
    pilot: str = "A"
    contactor: bool = False
    offers: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 0.0)])  # (from, amps) on the duty
    draw_a: float = 0.0
    lawful_a: float = 0.0              # what the EV would draw if it followed every duty (the rule counts this)
    changed: bool = True               # draw_a or lawful_a changed since the checks last looked
    closures: list[Closure] = field(default_factory=list)
    visit_wh: dict[str, float] = field(default_factory=dict)  # driver -> energy drawn in the visit

    def advance(self, t: float) -> None:
        """Integrate the current drawn up to `t`."""
        dt = t - self.t
        if dt > 0 and self.draw_a > 0:
            wh = self.draw_a * W_PER_A * dt / 3600.0
            self.kwh += wh / 1000.0
            if self.closures and self.closures[-1].end is None:
                self.closures[-1].wh += wh
            if self.ev is not None:
                self.visit_wh[self.ev.driver] = self.visit_wh.get(self.ev.driver, 0.0) + wh
        self.t = max(self.t, t)

    def offer(self, amps: float, t: float) -> None:
        self.offers.append((t, amps))
        del self.offers[:-64]

    def seen(self, t: float) -> float:
        """The duty's current as the EV has taken it in by `t` (each change after its reaction time)."""
        lag = self.ev.reaction_s if self.ev is not None else 0.0
        seen = [a for at, a in self.offers if at <= t - lag]
        return seen[-1] if seen else 0.0

    def owed(self, t: float) -> float:
        """The most a compliant EV may draw at `t`: the highest duty of the last REACTION_S (IEC 61851-1)."""
        ev = self.ev
        if ev is None or not self.contactor or self.pilot != "C":
            return 0.0
        start = 0
        for i, (at, _) in enumerate(self.offers):
            if at <= t - REACTION_S:
                start = i  # the duty in force when the window began
        return min(ev.wants_a, max(a for _, a in self.offers[start:]))

    def update(self, t: float, running: bool) -> None:
        """The current drawn from `t` on (call after every change and at each reaction time)."""
        self.advance(t)
        draw, lawful, ev = self.draw_a, self.lawful_a, self.ev
        if ev is None or not self.contactor or not running or self.pilot != "C":
            self.draw_a = self.lawful_a = 0.0
        else:
            self.lawful_a = min(ev.wants_a, self.seen(t))
            # a stubborn EV follows a higher duty, never a lower one
            self.draw_a = max(self.draw_a, self.lawful_a) if ev.stubborn else self.lawful_a
        if (draw, lawful) != (self.draw_a, self.lawful_a):
            self.changed = True

    def close(self, closed: bool, session: str | None, t: float) -> None:
        self.advance(t)
        if closed and not self.contactor:
            self.closures.append(Closure(session, self.ev.driver if self.ev else None, self.cp, t))
        elif not closed and self.contactor and self.closures:
            self.closures[-1].end = t
        self.contactor = closed

    def reading(self, local: float) -> MeterReading:
        a = self.draw_a
        return MeterReading((VOLTS,) * 3, (a,) * 3, a * W_PER_A, self.kwh, local)
