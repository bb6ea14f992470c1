"""What one simulated run does to the site (`Faults`), and the deliberate bugs the seeds must catch."""

from __future__ import annotations

import random
from dataclasses import dataclass

# Bug switches (simulator only): each must make some seed fail a check (tests/paxos/test_simulation.py).
BUGS = ("no_promise_check", "send_before_fsync", "no_fsync", "learned_before_fsync", "stale_liveness",
        "snapshot_unchecked")


@dataclass(frozen=True)
class Faults:
    """What one run does to the site; `Faults.draw(rng)` picks a random mix per seed."""

    replicas: int = 3
    clients: int = 3
    keys: int = 2
    fault_time: float = 2.0  # faults happen in [0, fault_time); then the network heals
    settle_time: float = 3.0  # after the heal, every request must have returned within this
    loss: float = 0.05
    duplicate: float = 0.02
    partitions: int = 2
    crashes: int = 2
    crash_all: bool = False
    keep_one_down: bool = False  # at the heal, kill whoever leads and leave it down (a majority is up)
    slow_max: float = 0.04  # 5 % of messages are delayed by up to this much more (reordering, stale messages)
    drift: float = 0.01  # each replica's clock rate is 1 +- up to this
    retry: float = 0.25  # a client re-sends its request (same id) to a random replica after this
    tight: bool = False  # run the replicas with TIGHT_OPTIONS
    replay: bool = False  # someone on the broker replays recorded frames and Last Wills all along (replay.py)
    bugs: frozenset[str] = frozenset()

    @classmethod
    def draw(cls, rng: random.Random, bugs: frozenset[str] = frozenset(), heavy: bool = False) -> Faults:
        """A random mix; `heavy` keeps partitions and crashes coming all the time (to hunt bugs)."""
        return cls(replicas=rng.choice((3, 3, 5)), clients=rng.randint(3, 6), keys=rng.randint(1, 3),
                   loss=rng.choice((0.0, 0.02, 0.1, 0.25)), duplicate=rng.choice((0.0, 0.03)),
                   slow_max=rng.choice((0.01, 0.04, 0.15, 0.4)), drift=rng.choice((0.001, 0.01, 0.05)),
                   partitions=rng.randint(6, 12) if heavy else rng.randint(0, 8),
                   crashes=rng.randint(5, 10) if heavy else rng.randint(0, 6), crash_all=rng.random() < 0.1,
                   keep_one_down=rng.random() < 0.3, tight=heavy and rng.random() < 0.5,
                   replay=rng.random() < 0.3 or "stale_liveness" in bugs, bugs=bugs)
