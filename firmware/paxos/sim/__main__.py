"""`python -m firmware.paxos.sim --seeds 0-1999` runs seeds and prints a summary; each failing seed
prints the one command that replays it (`--seed N --verbose` traces every event of that run)."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time

from firmware.paxos.sim.world import BUGS, RunResult, run_seed


def parse_seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _run(args: tuple[int, frozenset[str], bool]) -> RunResult:
    result = run_seed(args[0], args[1], heavy=args[2])
    result.stats.pop("faults", None)  # keep what crosses the process boundary small
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m firmware.paxos.sim", description=__doc__)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seeds", default="0-199", help="seeds to run, e.g. 0-1999 or 1,5,9-12 (default 0-199)")
    g.add_argument("--seed", type=int, help="run this one seed")
    p.add_argument("--bug", default="", help=f"switch on deliberate bugs (comma-separated: {', '.join(BUGS)})")
    p.add_argument("--heavy", action="store_true", help="partitions and crashes all the time (hunts bugs)")
    p.add_argument("--verbose", action="store_true", help="trace every event (with --seed)")
    p.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    a = p.parse_args(argv)
    bugs = frozenset(b for b in a.bug.split(",") if b)
    if bugs - set(BUGS):
        p.error(f"unknown bug {sorted(bugs - set(BUGS))}: choose from {', '.join(BUGS)}")
    if a.seed is not None:
        r = run_seed(a.seed, bugs, verbose=a.verbose, heavy=a.heavy)
        print(f"seed {r.seed}: {'ok' if r.ok else 'VIOLATION'} {r.stats}")
        for v in r.violations:
            print(f"  {v}")
        return 0 if r.ok else 1
    seeds = parse_seeds(a.seeds)
    started = time.perf_counter()
    jobs = [(s, bugs, a.heavy) for s in seeds]
    if a.jobs > 1:
        with multiprocessing.get_context("fork").Pool(a.jobs) as pool:
            results = pool.map(_run, jobs, chunksize=8)
    else:
        results = [_run(j) for j in jobs]
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"seed {r.seed}: {r.violations[0]}")
        print(f"  replay: {r.replay()}")
    ops = sum(r.stats["ops"] for r in results)
    slots = sum(r.stats["slots"] for r in results)
    wall = time.perf_counter() - started
    recovery = max(r.stats["recovery"] for r in results)
    print(f"{len(results)} seeds, {len(failed)} failed; {ops} client operations, {slots} slots; "
          f"{wall:.1f} s wall with {a.jobs} process(es); requests pending at the heal all answered "
          f"within {recovery:.3f} simulated s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
