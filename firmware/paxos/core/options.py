"""The protocol's tunables, in seconds of the replica's (real-time) clock, and in bytes.

Defaults aim at failover well under 0.5 s on a LAN/loopback broker: a follower that hears
nothing from the leader for a random 150-300 ms starts phase 1 (one round trip, ~1 ms on
loopback); the leader sends a heartbeat every 50 ms, so up to two lost heartbeats are tolerated.
Raise all three together (keep election_min >= 3 x heartbeat) on a slow or lossy network.

Sizes (sizes.py): a slot's value of `max_batch` commands must fit one message, so `max_batch` is
checked here; `message_budget` is how many bytes of values the core packs into one message (at
least one value always goes); snapshots travel in chunks of `snapshot_chunk`, and a replica takes
none bigger than `max_snapshot` from a peer, nor one whose transfer made no progress for
`snapshot_stall` seconds (it asks again from the start).
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.paxos.core.sizes import MAX_SLOT_VALUE, MAX_SNAPSHOT, MAX_VALUE, SNAPSHOT_CHUNK, batch_bytes


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
    message_budget: int = MAX_VALUE  # bytes of values (entries, accepted entries) per message
    snapshot_chunk: int = SNAPSHOT_CHUNK  # bytes of a snapshot per message
    max_snapshot: int = MAX_SNAPSHOT  # the largest snapshot taken from a peer
    snapshot_stall: float = 1.0  # a snapshot transfer without progress this long starts again

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_interval < self.election_min <= self.election_max:
            raise ValueError(f"need 0 < heartbeat_interval < election_min <= election_max, got {self}")
        if not 0 <= self.lazy_delay < self.heartbeat_interval:
            raise ValueError(f"need 0 <= lazy_delay < heartbeat_interval, got {self}")
        if self.max_batch < 1 or self.max_inflight < 1 or self.catchup_batch < 1 or self.snapshot_every < 0:
            raise ValueError(f"batch, inflight and catch-up sizes must be >= 1, got {self}")
        if batch_bytes(self.max_batch) > MAX_SLOT_VALUE:
            raise ValueError(f"max_batch {self.max_batch}: a slot of that many commands could be "
                             f"{batch_bytes(self.max_batch)} bytes, more than one message carries ({MAX_SLOT_VALUE})")
        if not (0 < self.message_budget <= MAX_VALUE and 0 < self.snapshot_chunk <= MAX_VALUE
                and self.max_snapshot > 0):
            raise ValueError(f"need 0 < message_budget, snapshot_chunk <= {MAX_VALUE} and max_snapshot > 0, got {self}")
        if self.snapshot_stall <= self.heartbeat_interval:
            raise ValueError(f"need snapshot_stall > heartbeat_interval, got {self}")
