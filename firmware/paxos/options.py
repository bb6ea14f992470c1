"""The protocol's tunables, in seconds of the replica's (real-time) clock.

Defaults aim at failover well under 0.5 s on a LAN/loopback broker: a follower that hears
nothing from the leader for a random 150-300 ms starts phase 1 (one round trip, ~1 ms on
loopback); the leader sends a heartbeat every 50 ms, so up to two lost heartbeats are tolerated.
Raise all three together (keep election_min >= 3 x heartbeat) on a slow or lossy network.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    heartbeat_interval: float = 0.050  # leader -> followers, also the retransmission period
    election_min: float = 0.150  # a follower waits a random time in [min, max) before phase 1
    election_max: float = 0.300
    max_batch: int = 64  # client commands per slot value
    max_inflight: int = 8  # slots proposed but not yet chosen (pipelining window)
    max_pending: int = 10_000  # client commands queued at the leader before new ones are refused
    catchup_batch: int = 256  # chosen entries per CatchUpReply
    snapshot_every: int = 1024  # take a snapshot after this many applied slots (0: never)
    lazy_delay: float = 0.005  # thrifty phase 2: followers beyond a quorum hear every this often (0: all at once)

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_interval < self.election_min <= self.election_max:
            raise ValueError(f"need 0 < heartbeat_interval < election_min <= election_max, got {self}")
        if not 0 <= self.lazy_delay < self.heartbeat_interval:
            raise ValueError(f"need 0 <= lazy_delay < heartbeat_interval, got {self}")
        if self.max_batch < 1 or self.max_inflight < 1 or self.catchup_batch < 1 or self.snapshot_every < 0:
            raise ValueError(f"batch, inflight and catch-up sizes must be >= 1, got {self}")
