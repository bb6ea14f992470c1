"""The deterministic simulation over thousands of seeds, as CI runs it (the issue asks for thousands).

It runs the simulator's own command line, so a failure here prints exactly the command that
replays the failing seed.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

SWEEPS = [
    ("normal", ["--seeds", "0-1999"], 2000),
    ("heavy", ["--seeds", "0-999", "--heavy"], 1000),
]


@pytest.mark.slow
@pytest.mark.parametrize("args, seeds", [s[1:] for s in SWEEPS], ids=[s[0] for s in SWEEPS])
def test_thousands_of_seeds_show_no_violation(args: list[str], seeds: int) -> None:
    proc = subprocess.run([sys.executable, "-m", "firmware.paxos.sim", *args, "--jobs", "2"],
                          capture_output=True, text=True, timeout=600)
    summary = re.search(r"(\d+) seeds, (\d+) failed", proc.stdout)
    assert summary, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (int(summary.group(1)), int(summary.group(2))) == (seeds, 0), proc.stdout[-5000:]
    assert proc.returncode == 0
