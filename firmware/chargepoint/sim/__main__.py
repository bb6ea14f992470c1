"""`python -m firmware.chargepoint.sim --seeds 0-999` runs whole simulated sites and prints a summary; each
failing seed prints the one command that replays it (`--seed N --verbose` traces that run's events)."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from firmware.chargepoint.sim.faults import BUGS
from firmware.chargepoint.sim.runs import run_seeds
from firmware.chargepoint.sim.world import run_seed
from firmware.paxos.sim.__main__ import parse_seeds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m firmware.chargepoint.sim", description=__doc__)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seeds", default="0-99", help="seeds to run, e.g. 0-999 or 1,5,9-12 (default 0-99)")
    g.add_argument("--seed", type=int, help="run this one seed")
    p.add_argument("--cps", type=int, choices=range(3, 8), metavar="3..7",
                   help="charge points per site (default: 3 to 7, drawn from the seed)")
    p.add_argument("--bug", default="", help=f"switch on deliberate bugs (comma-separated: {', '.join(BUGS)})")
    p.add_argument("--quiet", action="store_true", help="no faults: EVs come and go on a clean network")
    p.add_argument("--short", action="store_true", help="40 s of faults, not 90; the same checks (CI's bulk)")
    p.add_argument("--verbose", action="store_true", help="trace the run's events and log lines (with --seed)")
    p.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    a = p.parse_args(argv)
    bugs = frozenset(b for b in a.bug.split(",") if b)
    if bugs - set(BUGS):
        p.error(f"unknown bug {sorted(bugs - set(BUGS))}: choose from {', '.join(BUGS)}")
    if a.seed is not None:
        if a.verbose:  # the firmware's own log lines, in order with the trace
            logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
        else:
            logging.getLogger("evnet").setLevel(logging.CRITICAL)
        r = run_seed(a.seed, bugs, a.cps, verbose=a.verbose, quiet=a.quiet, short=a.short)
        print(f"seed {r.seed}: {'ok' if r.ok else 'VIOLATION'} {r.stats}")
        for v in r.violations:
            print(f"  {v}")
        return 0 if r.ok else 1
    started = time.perf_counter()
    results, failed = [], []
    for r in run_seeds(parse_seeds(a.seeds), bugs, a.cps, a.quiet, a.short, a.jobs):
        results.append(r)
        if not r.ok:
            failed.append(r)
            print(f"seed {r.seed}: {r.violations[0]}")
            print(f"  replay: {r.replay()}", flush=True)
    wall = time.perf_counter() - started
    print(f"{len(results)} seeds, {len(failed)} failed; {sum(r.stats['visits'] for r in results)} EV visits, "
          f"{sum(r.stats['tickets'] for r in results)} tickets, {sum(r.stats['events'] for r in results)} events, "
          f"{sum(r.stats['sim_time'] for r in results) / 60:.0f} simulated minutes; highest sum of currents "
          f"{max(r.stats['peak_a'] / r.stats['limit_a'] for r in results):.1%} of its limit; "
          f"{wall:.1f} s wall with {a.jobs} process(es)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
