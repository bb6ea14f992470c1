"""Deterministic simulation of a whole Paxos site in one process (FoundationDB / TigerBeetle VOPR style).

One seed fixes everything: the network's loss, duplication, delays and partitions, crashes and
restarts, the disk's fsync latency, clock drift, the clients' operations. Replay a seed with
`python -m firmware.paxos.sim --seed N --verbose`.
"""

from firmware.paxos.sim.faults import Faults
from firmware.paxos.sim.world import RunResult, World, run_seed

__all__ = ["Faults", "RunResult", "World", "run_seed"]
