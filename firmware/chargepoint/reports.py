"""What this charge point tells the site about itself (`report`, `clear_fault`): on change, not per reading.

Plug, the EV's own maximum, health and fault go at once when they change; the drawn current when it
moved `report_band_a` from what was last reported (at most every `report_min_s`), or any change of it
every `report_every_s`: the split needs the draw (an EV that draws less gives the rest back), not its
noise. One report in flight at a time; the latest facts go when it is answered or overdue. A fault
at the site stays until `clear_fault`, sent when the engine's fault has cleared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from firmware.chargepoint.settings import BridgeSettings
from firmware.site.params import CP_ID_RE

MAX_A = 80.0  # what the site takes (decode.py's AMPS)


def amps(value: float) -> float:
    """A current as the site takes it: 0 to 80 A, 0.1 A resolution."""
    return round(min(max(value, 0.0), MAX_A), 1)


def fault_code(fault: str | None) -> str | None:
    """The engine's fault (codes joined by commas) as one code of the site's form (an id)."""
    if not fault:
        return None
    code = re.sub(r"[^a-z0-9_-]", "_", fault.split(",")[0].lower())[:32].strip("_-") or "fault"
    return code if CP_ID_RE.match(code) else "fault"


@dataclass(frozen=True)
class Facts:
    plugged: bool = False
    drawn_a: float = 0.0
    ev_max_a: float | None = None
    health: str = "ok"        # the engine has no degraded state of its own yet
    fault: str | None = None

    def args(self, cp: str) -> dict[str, Any]:
        return {"cp": cp, "plugged": self.plugged, "drawn_a": self.drawn_a, "ev_max_a": self.ev_max_a,
                "health": self.health, "fault": self.fault}


class Reporter:
    def __init__(self, settings: BridgeSettings) -> None:
        self.settings = settings
        self.band = settings.report_band_a
        self.min_gap = settings.on_engine_clock(settings.report_min_s)
        self.every = settings.on_engine_clock(settings.report_every_s)
        self.facts = Facts()
        self.sent: Facts | None = None
        self.sent_at = 0.0
        self.in_flight = False
        self.clearing = False  # a clear_fault in flight

    def update(self, **changes: Any) -> None:
        for name in ("drawn_a", "ev_max_a"):
            if changes.get(name) is not None:
                changes[name] = amps(changes[name])
        if "fault" in changes:
            changes["fault"] = fault_code(changes["fault"])
        self.facts = replace(self.facts, **changes)

    def due(self, now: float) -> bool:
        return not self.in_flight and self._due_at() <= now

    def sending(self, now: float) -> dict[str, Any]:
        self.sent, self.sent_at, self.in_flight = self.facts, now, True
        return self.facts.args(self.settings.cp)

    def done(self, answered: bool) -> None:
        """The report was answered (or is overdue: then what it said is sent again with the next one)."""
        self.in_flight = False
        if not answered:
            self.sent = None

    def next_deadline(self) -> float | None:
        if self.in_flight:
            return None
        moment = self._due_at()
        return None if moment == float("inf") else moment

    def _due_at(self) -> float:
        sent, now = self.sent, self.facts
        if sent is None or (sent.plugged, sent.ev_max_a, sent.health, sent.fault) != (
                now.plugged, now.ev_max_a, now.health, now.fault):
            return float("-inf")
        moved = abs(now.drawn_a - sent.drawn_a)
        if moved >= self.band:
            return self.sent_at + self.min_gap
        if moved >= 0.1 - 1e-9:
            return self.sent_at + self.every
        return float("inf")

    # -- faults the site keeps ----------------------------------------------------------------

    def clear_due(self, site_fault: str | None) -> bool:
        """True if the site still keeps a fault the engine no longer has."""
        return site_fault is not None and self.facts.fault is None and not self.clearing
