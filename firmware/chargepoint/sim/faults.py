"""What one simulated run of a whole site does (`SiteFaults`), drawn from its seed, and the bug switches.

The Paxos-level faults (loss, duplication, slow messages, partitions, crashes) are the Paxos
simulator's `Faults`; the site adds its own: a charge point cut off from the site, a broker outage,
a leader killed while a rebalancing waits, an EV that does not follow a lower duty, a charge point
killed mid-session and restarted, an operator's stop of a charge point and its resume. Clock drift
stays within the site's bound (`SiteParams.drift_ppm`, 0.1 %): a lease is only as safe as that bound,
so a run beyond it would test the assumption, not the code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from firmware.paxos.sim.faults import Faults

# Bug switches (simulator only): each must make some seed fail a check (tests/chargepoint/test_site_simulation.py).
BUGS = ("raise_before_lower", "lease_from_receipt")
LEASE_S = 10.0  # every charge point's lease, on its own clock
DRIFTS = (0.0, 0.0002, 0.0005, 0.001)  # clock rates 1 +- up to this (the site assumes 0.001)


@dataclass(frozen=True)
class Timeline:
    """When a run's faults happen and how long it lasts (simulated seconds)."""

    heal: float        # every fault is over by then
    settle: float      # after the heal, every charging EV is at its share by heal + settle
    end: float
    arrive_by: float   # each charge point's first EV arrives before this
    min_stay: float    # an EV that leaves before the heal stays this long at least
    late_gap: float    # the others leave from heal + settle + late_gap to end - 20
    fault_from: float  # cut-offs and broker outages start from here
    cut_max: float     # a charge point is cut off this long at most
    outage_max: float  # the broker is down this long at most
    kill_from: float   # kills mid-session from here to heal - kill_before
    kill_before: float
    down_max: float    # a killed charge point is down this long at most
    sizes: tuple[int, int] = (3, 7)  # charge points of a site drawn from the seed: from, to


# The long run (the first of this simulation) and the short one that lets CI run thousands of seeds: the same
# faults and checks on sites of 3 to 5, squeezed into 35 s of faults instead of 90 (then the same 45 s to settle).
# A seed's cost is the commands its replicas apply (each charge point applies every one): it grows with the
# time simulated and faster than linearly with the size of the site.
LONG = Timeline(heal=90.0, settle=45.0, end=200.0, arrive_by=40.0, min_stay=20.0, late_gap=15.0, fault_from=10.0,
                cut_max=40.0, outage_max=25.0, kill_from=15.0, kill_before=30.0, down_max=20.0)
SHORT = Timeline(heal=30.0, settle=45.0, end=100.0, arrive_by=10.0, min_stay=10.0, late_gap=3.0, fault_from=5.0,
                 cut_max=10.0, outage_max=8.0, kill_from=8.0, kill_before=8.0, down_max=10.0, sizes=(3, 4))


@dataclass(frozen=True)
class Visit:
    """One EV at one charge point: plugs in at `arrive`, leaves at `leave` (simulated seconds)."""

    cp: str
    driver: str
    arrive: float
    leave: float
    wants_a: float       # the EV's own maximum current
    reaction_s: float    # how long it takes to follow a new duty (IEC 61851-1: at most 5 s for a lower one)
    stubborn: bool = False  # does not follow a lower duty (the engine's over-current check must stop it)


@dataclass(frozen=True)
class SiteFaults:
    cps: tuple[str, ...]
    limit_a: float
    fallback_a: float
    max_a: dict[str, float]
    visits: tuple[Visit, ...]
    net: Faults                       # loss, duplication, slow tail, partitions and crashes of replicas
    drift: float
    timeline: Timeline = LONG
    cutoffs: tuple[tuple[str, float, float], ...] = ()   # (cp, from, to): cut off from the others
    outages: tuple[tuple[float, float], ...] = ()        # (from, to): the broker is down
    kills: tuple[tuple[str, float, float], ...] = ()     # (cp, at, down for): killed mid-session, restarted
    leader_kill: float | None = None  # kill the leader this long after a rebalancing starts waiting (once)
    stops: tuple[tuple[str, float, float], ...] = ()     # (cp, from, to): the operator stops it, then resumes it
    bugs: frozenset[str] = frozenset()

    @property
    def heal(self) -> float:
        return self.timeline.heal

    @property
    def settle(self) -> float:
        return self.timeline.settle

    @property
    def end(self) -> float:
        return self.timeline.end

    @classmethod
    def draw(cls, rng: random.Random, cps: int | None = None, bugs: frozenset[str] = frozenset(),
             quiet: bool = False, timeline: Timeline = LONG) -> SiteFaults:
        """A random site and mix of faults; `quiet`: no faults at all (EVs come and go on a clean network)."""
        tl = timeline
        n = cps if cps is not None else rng.randint(*tl.sizes)
        ids = tuple(f"cp{i + 1}" for i in range(n))
        fallback = rng.choice((0.0, 6.0))
        limit = float(rng.choice([x for x in (32, 40, 50, 63, 80, 100) if x >= max(6 * n, fallback * n + 6)]))
        max_a = {cp: float(rng.choice((16, 32, 32))) for cp in ids}
        heal = tl.heal
        visits: list[Visit] = []
        for cp in ids:
            t, k = rng.uniform(2.0, tl.arrive_by), 0
            while t < heal - 15 and k < 2:
                early = k == 0 and rng.random() < 0.4
                leave = (rng.uniform(t + tl.min_stay, heal - 5) if early and t + tl.min_stay < heal - 5
                         else rng.uniform(heal + tl.settle + tl.late_gap, tl.end - 20))
                visits.append(Visit(cp, f"D{len(visits) + 1}", t, leave, float(rng.choice((10, 16, 32, 32))),
                                    rng.uniform(0.2, 5.0)))
                t, k = leave + rng.uniform(3, 20), k + 1
        if quiet:
            return cls(ids, limit, fallback, max_a, tuple(visits), Faults(replicas=n, clients=0, loss=0.0,
                       duplicate=0.0, partitions=0, crashes=0, slow_max=0.01), drift=rng.choice(DRIFTS), timeline=tl,
                       bugs=bugs)
        net = Faults(replicas=n, clients=0, loss=rng.choice((0.0, 0.0, 0.02, 0.1)), duplicate=rng.choice((0.0, 0.03)),
                     slow_max=rng.choice((0.01, 0.04, 0.15)), partitions=rng.randint(0, 4), crashes=rng.randint(0, 2),
                     fault_time=heal)
        if rng.random() < 0.15 and visits:  # an EV that does not follow a lower duty
            i = rng.randrange(len(visits))
            visits[i] = Visit(**{**visits[i].__dict__, "stubborn": True})
        cutoffs = tuple((rng.choice(ids), t, t + rng.uniform(min(5.0, tl.cut_max / 3), tl.cut_max))
                        for t in (rng.uniform(tl.fault_from, heal - tl.cut_max - 5)
                                  for _ in range(rng.choice((0, 1, 1, 2)))))
        outage_starts = [rng.uniform(tl.fault_from, heal - tl.outage_max - 5) for _ in range(rng.random() < 0.3)]
        outages = tuple((t, t + rng.uniform(2, tl.outage_max)) for t in outage_starts)
        kills = tuple((rng.choice(ids), rng.uniform(tl.kill_from, heal - tl.kill_before), rng.uniform(2, tl.down_max))
                      for _ in range(rng.choice((0, 0, 1, 2))))
        leader_kill = rng.uniform(0.0, 1.0) if rng.random() < 0.4 else None
        stop_starts = [rng.uniform(tl.fault_from, heal - tl.cut_max - 5) for _ in range(rng.random() < 0.25)]
        stops = tuple((rng.choice(ids), t, t + rng.uniform(3, tl.cut_max)) for t in stop_starts)
        return cls(ids, limit, fallback, max_a, tuple(visits), net, drift=rng.choice(DRIFTS), timeline=tl,
                   cutoffs=cutoffs, outages=outages, kills=kills, leader_kill=leader_kill, stops=stops, bugs=bugs)
