"""The simulation of whole sites (firmware/chargepoint/sim): seeds pass every check, each deliberate bug is
caught by the check it breaks, and a seed replays to the same run."""

from __future__ import annotations

import logging

import pytest

from firmware.chargepoint.sim import BUGS, run_seed
from firmware.chargepoint.sim.__main__ import main

QUIET_SEEDS = range(10)       # 3 charge points, EVs coming and going, no faults
FAULT_SEEDS = (0, 1, 2, 3, 5)  # 3 to 7 charge points with the seed's faults
CAUGHT = {"raise_before_lower": (4, 3, True, "fuse:"), "lease_from_receipt": (0, None, False, "lease:")}


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    logging.getLogger("evnet").setLevel(logging.CRITICAL)


@pytest.mark.parametrize("seed", QUIET_SEEDS)
def test_quiet_sites_pass_every_check(seed: int) -> None:
    r = run_seed(seed, cps=3, quiet=True)
    assert r.ok, (r.violations, r.replay())
    assert r.stats["tickets"] >= r.stats["visits"] - 1  # sessions did happen and were billed


@pytest.mark.parametrize("seed", FAULT_SEEDS)
def test_sites_with_faults_pass_every_check(seed: int) -> None:
    r = run_seed(seed)
    assert r.ok, (r.violations, r.replay())


@pytest.mark.parametrize("bug", BUGS)
def test_each_bug_switch_is_caught(bug: str) -> None:
    seed, cps, quiet, check = CAUGHT[bug]
    assert run_seed(seed, cps=cps, quiet=quiet).ok  # the same run without the bug passes
    r = run_seed(seed, frozenset({bug}), cps=cps, quiet=quiet)
    assert not r.ok and r.violations[0].startswith(check), r.violations
    assert f"--bug {bug}" in r.replay() and f"--seed {seed}" in r.replay()


def test_a_seed_replays_to_the_same_run() -> None:
    a, b = run_seed(3), run_seed(3)
    a.stats.pop("wall"), b.stats.pop("wall")
    assert (a.violations, a.stats) == (b.violations, b.stats)


def test_the_cli_prints_the_replay_command_of_a_failing_seed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "4", "--cps", "3", "--quiet", "--bug", "raise_before_lower", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "replay: python -m firmware.chargepoint.sim --seed 4 --cps 3 --quiet --bug raise_before_lower" in out
    assert "1 seeds, 1 failed" in out
