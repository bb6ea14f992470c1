"""The checks of a simulated site: watched at every event (`Watch`) and made at the end (`check_end`).

1. The fuse (`Watch.after_event`): the currents drawn only change at events, so checking the sum after
   every event checks it at every instant (every simulated millisecond, and between). An EV that
   follows its duties counts as it draws (the site's rule owes it its old grant for its reaction
   window); a stubborn one counts as a compliant EV would draw, and must be cut off by the engine's
   over-current check in time (once it draws more than the highest duty of the last 5 s allows). An
   engine offers more than its fallback only within a lease it asked
   for: `LEASE_S` on its own clock from when it *sent* a renewal the site committed.
2. Tickets (`tickets`): every session whose contactor closed ends in exactly one ticket at the site,
   equal (to the Wh) to the energy the meter integrated while it was closed, for the driver whose EV
   drew it; the engine closed each session once; every local ticket was settled.
3. Requests (`requests`): every request of a driver or the operator was answered, and none was applied twice.
4. Shares (`Watch.shares`, at heal + settle): every EV plugged in is charging, at its share at least.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from firmware.chargepoint.sim.faults import LEASE_S
from firmware.paxos.core.ready import Applied
from firmware.paxos.sim.world import RunResult as PaxosRunResult

Station = SiteWorld = Any  # world.py and station.py use this module: named by role, not imported (no cycle)

EPS_A = 1e-6
OVERCURRENT_CUT_S = 7.0 + 2.5  # SafetyConfig.overcurrent_delay_s, plus the poll and the reading that trips it
SHARE_TOLERANCE_A = 0.3        # the site's 0.1 A steps and the duty's resolution
MAX_VIOLATIONS = 5


class RunResult(PaxosRunResult):
    """The Paxos simulator's result of one seed, replayed by this simulator's command."""

    def replay(self) -> str:
        s = self.stats
        cps = f" --cps {s['cps_arg']}" if s.get("cps_arg") else ""
        quiet = " --quiet" if s.get("quiet") else ""
        short = " --short" if s.get("short") else ""
        bugs = f" --bug {','.join(s['bugs'])}" if s.get("bugs") else ""
        return f"python -m firmware.chargepoint.sim --seed {self.seed}{cps}{quiet}{short}{bugs} --verbose"


class Watch:
    def __init__(self, world: SiteWorld) -> None:
        self.world = world
        self.violations: list[str] = []
        self.peak_a = 0.0
        self.lease_end: dict[str, float] = {}        # cp -> the end of the latest lease it may hold (simulated time)
        self.over_since: dict[str, float] = {}       # cp -> when its stubborn EV started drawing above its duty
        self.high_since: dict[str, float] = {}       # cp -> since when it offers more than its fallback
        self.cables = [st.cable for st in world.stations.values()]
        stubborn = {v.cp for v in world.faults.visits if v.stubborn}
        self.stubborn = [st for st in world.stations.values() if st.id in stubborn]  # only they draw above lawful
        self.fresh: Counter[tuple[str, int, str, int]] = Counter()  # (station, client, req) applied fresh

    def fail(self, text: str) -> None:
        if len(self.violations) < MAX_VIOLATIONS:
            self.violations.append(f"{text} (at {self.world.now:.4f} s)")

    # -- every event -------------------------------------------------------------------------------------------

    def after_event(self) -> None:
        changed = False
        for c in self.cables:  # the sum changes only when a draw did
            if c.changed:
                c.changed, changed = False, True
        if changed:
            self._fuse()
        for st in self.stubborn:
            self._stubborn(st)

    def _fuse(self) -> None:
        w = self.world
        limit = w.faults.limit_a
        lawful = sum(c.lawful_a for c in self.cables)
        self.peak_a = max(self.peak_a, lawful)
        if lawful > limit + EPS_A:
            draws = {st.id: round(st.cable.lawful_a, 2) for st in w.stations.values() if st.cable.lawful_a}
            self.fail(f"fuse: the EVs draw {lawful:.2f} A together, above the site limit {limit:g} A: {draws}")

    def _stubborn(self, st: Station) -> None:
        """An EV drawing more than any compliant EV could (the highest duty of the last 5 s, with the check's
        own margins) is cut off within the over-current delay."""
        c = st.cable
        if c.draw_a <= c.lawful_a:
            self.over_since.pop(st.id, None)
            return
        owed = c.owed(self.world.now)
        if c.draw_a <= (owed + 0.5) * 1.1:  # SafetyConfig's margins
            self.over_since.pop(st.id, None)
            return
        since = self.over_since.setdefault(st.id, self.world.now)
        if self.world.now - since > OVERCURRENT_CUT_S:
            self.fail(f"fuse: {st.id}'s EV has drawn {c.draw_a:g} A, owed {owed:g} A, for "
                      f"{self.world.now - since:.1f} s: the engine's over-current check did not stop it")
            self.over_since[st.id] = self.world.now

    # -- the lease: an offer above the fallback, from its start to its end, lies within a lease -----------------

    def offered(self, st: Station, amps: float) -> None:
        """`st`'s duty changed (amps 0: none, or the station died)."""
        high = amps > st.settings.fallback_a + 0.05
        if st.id in self.high_since and not high:
            self._lease_held(st, f"lowered to {amps:g} A")
            del self.high_since[st.id]
        elif high and st.id not in self.high_since:
            self.high_since[st.id] = self.world.now
            self._lease_held(st, f"raised to {amps:g} A")

    def _lease_held(self, st: Station, what: str) -> None:
        end = self.lease_end.get(st.id)
        if end is None or self.world.now > end + 1e-5:
            self.fail(f"lease: {st.id} offers more than its fallback {st.settings.fallback_a:g} A (since "
                      f"{self.high_since[st.id]:.4f} s, {what} now) after its lease ended at "
                      f"{end if end is None else round(end, 4)} s")

    def renewed(self, st: Station, sent: float) -> None:
        """A renewal `st` sent at `sent` was committed: its lease runs LEASE_S on its own clock from then."""
        if st.id in self.high_since:
            self._lease_held(st, "renewed")  # the lease it held up to now did not run out first
        end = sent + LEASE_S / st.node.rate
        self.lease_end[st.id] = max(self.lease_end.get(st.id, end), end)

    def finish(self) -> None:
        for st in self.world.stations.values():
            if st.id in self.high_since:
                self._lease_held(st, "still")

    def applied(self, st: Station, applied: list[Applied]) -> None:
        for a in applied:
            if a.fresh:
                key = (st.id, st.node.incarnation, a.client, a.req)  # a restart applies its log again
                self.fresh[key] += 1
                if self.fresh[key] > 1:
                    self.fail(f"requests: {st.id} applied request {a.req} of {a.client} twice")

    # -- after the heal ------------------------------------------------------------------------------------------

    def shares(self) -> None:
        """Every EV plugged in (and not stopped for drawing too much) charges, at its share of the limit at least."""
        w, f = self.world, self.world.faults
        charging, idle_fallbacks = [], 0.0
        for st in w.stations.values():
            ev, c = st.cable.ev, st.cable
            if ev is None or ev.stubborn and not c.contactor:
                idle_fallbacks += st.settings.fallback_a
                continue
            charging.append(st)
        level = share_level([(f.max_a[st.id], st.settings.fallback_a) for st in charging],
                            f.limit_a - idle_fallbacks)
        for st in charging:
            c = st.cable
            assert c.ev is not None
            want = min(c.ev.wants_a, f.max_a[st.id], max(level, st.settings.fallback_a))
            if not c.contactor:
                self.fail(f"shares: {c.ev.driver}'s EV at {st.id} is not charging {f.settle:g} s after the heal")
            elif c.draw_a < want - SHARE_TOLERANCE_A:
                self.fail(f"shares: {c.ev.driver}'s EV at {st.id} draws {c.draw_a:g} A, below its share {want:.1f} A "
                          f"({f.settle:g} s after the heal)")


def share_level(cps: list[tuple[float, float]], budget_a: float) -> float:
    """The equal-share level x of the charging charge points (max, fallback): sum of min(max, max(x, fallback))
    within `budget_a`, to 0.1 A (docs/site.md, the policy; an EV's own lower maximum only gives more to others)."""
    lo, hi = 0.0, 80.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if sum(min(mx, max(mid, fb)) for mx, fb in cps) <= budget_a:
            lo = mid
        else:
            hi = mid
    return lo - 0.1


# -- at the end ---------------------------------------------------------------------------------------------

def check_end(w: SiteWorld) -> list[str]:
    out: list[str] = []
    ups = [st for st in w.stations.values() if st.replica is not None]
    if not ups:
        return ["end: no charge point is running"]
    best = max(ups, key=lambda st: st.replica.learner.applied if st.replica else -1)
    assert best.machine is not None
    out += tickets(w, best.machine.state.tickets, dict(best.machine.state.sessions))
    out += requests(w)
    return out[:MAX_VIOLATIONS]


def tickets(w: SiteWorld, site_tickets: dict[str, Any], open_sessions: dict[str, Any]) -> list[str]:
    out = []
    closures: dict[str, list[Any]] = {}
    for st in w.stations.values():
        for c in st.cable.closures:
            closures.setdefault(c.session or "?", []).append(c)
    for session, cs in sorted(closures.items()):
        wh = sum(c.wh for c in cs)
        t = site_tickets.get(session)
        if t is None:
            where = "still open at the site" if session in open_sessions else "no ticket at the site"
            out.append(f"tickets: session {session} at {cs[0].cp} drew {wh:.1f} Wh and has {where}")
            continue
        if t.reason != "cp_lost" and abs(t.energy_wh - wh) > 1.0:
            out.append(f"tickets: session {session}'s ticket says {t.energy_wh} Wh, the meter integrated {wh:.1f} Wh")
        drivers = {c.driver for c in cs}
        if drivers != {t.driver} or t.cp != cs[0].cp:
            out.append(f"tickets: session {session} billed to {t.driver} at {t.cp}, energy drawn by "
                       f"{sorted(drivers)}'s EV at {cs[0].cp}")
    for session, t in site_tickets.items():
        if session not in closures and t.energy_wh:
            out.append(f"tickets: the site billed {t.energy_wh} Wh to {t.driver} for session {session}, which never "
                       "closed a contactor")
    for session, ts in w.engine_tickets.items():
        if len({(t.start_kwh, t.end_kwh) for t in ts}) > 1:
            out.append(f"tickets: the engine closed session {session} more than once: {[t.kwh for t in ts]}")
    for st in w.stations.values():
        if st.up and st.journal.untaken:
            out.append(f"tickets: {st.id}'s journal still holds tickets the site never took: "
                       f"{sorted(st.journal.untaken)}")
    return out


def requests(w: SiteWorld) -> list[str]:
    out = []
    for app in w.apps.values():
        for sent in app.history:
            if not sent.answers:
                out.append(f"requests: {app.client}'s request {sent.req} ({sent.op}) was never answered")
    return out
