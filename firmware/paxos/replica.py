"""The Multi-Paxos replica: a pure, deterministic state machine (etcd raft's `Node`, sans I/O).

Inputs: `step(message, now)`, `propose(client, req, command, now)`, `tick(now)`; the durable
state found at start-up is given to the constructor. Outputs: `ready()` returns a `Ready` the
adapter carries out (persist, then send, then reply; see ready.py). No clock, socket, thread or
global random source is read here: time comes in as `now`, randomness from the injected `rng`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from firmware.paxos.dedup import StateMachine
from firmware.paxos.messages import Message
from firmware.paxos.options import Options
from firmware.paxos.ready import Ready
from firmware.paxos.types import Ballot, DurableState


class Replica:
    """One member of a site's Paxos group: acceptor, learner, and leader when elected."""

    def __init__(self, node_id: str, members: Sequence[str], site: str, machine: StateMachine, *,
                 durable: DurableState | None = None, options: Options | None = None,
                 rng: random.Random | None = None, now: float = 0.0) -> None:
        raise NotImplementedError

    def step(self, message: Message, now: float) -> None:
        """Handle a message from a peer (or a ClientRequest from a client)."""
        raise NotImplementedError

    def propose(self, client: str, req: int, command: bytes, now: float) -> None:
        """A client's command: batched into the log by the leader, forwarded to it by a follower."""
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """Time passed: heartbeats, retransmissions, election timeout, catch-up retries."""
        raise NotImplementedError

    def ready(self) -> Ready:
        """Everything to do since the last call; the adapter must carry it out in order."""
        raise NotImplementedError

    @property
    def leader(self) -> str | None:
        """The replica believed to lead (None while unknown)."""
        raise NotImplementedError

    @property
    def ballot(self) -> Ballot:
        raise NotImplementedError
