"""Deterministic simulation of whole sites: 3-7 charge points, each its replica of the site, its bridge, its
engine, its EV and its meter, over the Paxos simulator's network, disks and clocks. One seed fixes
everything; `python -m firmware.chargepoint.sim --seed N --verbose` replays a run (docs/chargepoint.md).
"""

from firmware.chargepoint.sim.checks import RunResult
from firmware.chargepoint.sim.faults import BUGS, SiteFaults, Visit
from firmware.chargepoint.sim.world import SiteWorld, run_seed

__all__ = ["BUGS", "RunResult", "SiteFaults", "SiteWorld", "Visit", "run_seed"]
