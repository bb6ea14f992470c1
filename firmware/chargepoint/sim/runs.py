"""Many seeds at once, over processes (the CLI's `--seeds` and CI's shards): results in the seeds' order."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterable, Iterator

from firmware.chargepoint.sim.checks import RunResult
from firmware.chargepoint.sim.world import run_seed

Job = tuple[int, frozenset[str], int | None, bool, bool]  # seed, bugs, cps, quiet, short


def _run(job: Job) -> RunResult:
    logging.getLogger("evnet").setLevel(logging.CRITICAL)  # not formatted, not written: a seed's lines are many
    seed, bugs, cps, quiet, short = job
    return run_seed(seed, bugs, cps, quiet=quiet, short=short)


def run_seeds(seeds: Iterable[int], bugs: frozenset[str] = frozenset(), cps: int | None = None, quiet: bool = False,
              short: bool = False, jobs: int = 2) -> Iterator[RunResult]:
    """Each seed's run, `jobs` at a time (forked processes; 1: in this one), yielded in the seeds' order as
    each is done (a long batch shows its failures as it goes)."""
    work = [(seed, bugs, cps, quiet, short) for seed in seeds]
    if jobs <= 1 or len(work) <= 1:
        yield from map(_run, work)
        return
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        yield from pool.imap(_run, work, chunksize=2)
