"""The simulation of whole sites (firmware/chargepoint/sim): seeds pass every check, each deliberate bug is
caught by the check it breaks, and a seed replays to the same run.

CI runs thousands of seeds: BULK short ones (35 s of faults on sites of 3 to 5, then the same checks) in
SHARDS tests of a process per core each, LONG_SEEDS long ones (90 s of faults on sites of 3 to 7) and QUIET_SEEDS
without faults. A failing shard names each failing seed with the command that replays it."""

from __future__ import annotations

import logging
import os

import pytest

from firmware.chargepoint.sim import BUGS, run_seed
from firmware.chargepoint.sim.__main__ import main
from firmware.chargepoint.sim.runs import run_seeds

BULK, SHARDS = 2000, 40        # short seeds 0..BULK-1 with faults, in SHARDS tests
LONG_SEEDS = range(0, 40)      # 3 to 7 charge points with the seed's faults, the long timeline
QUIET_SEEDS = range(10)        # 3 charge points, EVs coming and going, no faults
JOBS = max(2, os.cpu_count() or 2)  # a seed is one process's work: a CI machine's every core
# bug -> (seed, cps, quiet, short, the check that catches it), a long run and a short one each
CAUGHT = {"raise_before_lower": [(4, 3, True, False, "fuse:"), (3, None, False, True, "fuse:")],
          "lease_from_receipt": [(0, None, False, False, "lease:"), (4, None, False, True, "lease:")]}


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    logging.getLogger("evnet").setLevel(logging.CRITICAL)


def _failures(results: list) -> str:
    return "\n".join(f"seed {r.seed}: {'; '.join(r.violations)}\n  replay: {r.replay()}" for r in results if not r.ok)


@pytest.mark.parametrize("shard", range(SHARDS))
def test_short_sites_with_faults_pass_every_check(shard: int) -> None:
    per = BULK // SHARDS
    results = list(run_seeds(range(shard * per, (shard + 1) * per), short=True, jobs=JOBS))
    assert len(results) == per and all(r.stats["visits"] for r in results)
    assert all(r.ok for r in results), _failures(results)


@pytest.mark.parametrize("seeds", [LONG_SEEDS[i:i + 10] for i in range(0, len(LONG_SEEDS), 10)],
                         ids=lambda s: f"{s[0]}-{s[-1]}")
def test_long_sites_with_faults_pass_every_check(seeds: range) -> None:
    results = list(run_seeds(seeds, jobs=JOBS))
    assert all(r.ok for r in results), _failures(results)


def test_quiet_sites_pass_every_check() -> None:
    results = list(run_seeds(QUIET_SEEDS, cps=3, quiet=True, jobs=JOBS))
    assert all(r.ok for r in results), _failures(results)
    for r in results:
        assert r.stats["tickets"] >= r.stats["visits"] - 1, r.replay()  # sessions did happen and were billed


@pytest.mark.parametrize(("bug", "run"), [(bug, run) for bug in BUGS for run in CAUGHT[bug]])
def test_each_bug_switch_is_caught(bug: str, run: tuple) -> None:
    seed, cps, quiet, short, check = run
    assert run_seed(seed, cps=cps, quiet=quiet, short=short).ok  # the same run without the bug passes
    r = run_seed(seed, frozenset({bug}), cps=cps, quiet=quiet, short=short)
    assert not r.ok and r.violations[0].startswith(check), r.violations
    assert f"--bug {bug}" in r.replay() and f"--seed {seed}" in r.replay()


def test_a_seed_replays_to_the_same_run() -> None:
    a, b = run_seed(3, short=True), run_seed(3, short=True)
    a.stats.pop("wall"), b.stats.pop("wall")
    assert (a.violations, a.stats) == (b.violations, b.stats)


def test_a_failing_seed_names_its_replay_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "4", "--cps", "3", "--quiet", "--bug", "raise_before_lower", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "replay: python -m firmware.chargepoint.sim --seed 4 --cps 3 --quiet --bug raise_before_lower" in out
    assert "1 seeds, 1 failed" in out
    assert main(["--seeds", "3", "--short", "--bug", "raise_before_lower", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "replay: python -m firmware.chargepoint.sim --seed 3 --short --bug raise_before_lower" in out
