"""The state a Replica's parts share (declared once here, set in Replica.__init__).

`Replica` is assembled from parts that each do one thing (phase 1 and 2 in replica.py, learning
and catch-up in catchup.py, snapshots in chunks in snapshots.py, client routing in routing.py,
thrifty phase 2 in thrifty.py, who is alive and pre-votes in liveness.py); they all read this state.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from evnet.logs import EventLogger, FoldedLog
from firmware.paxos.core import messages as m
from firmware.paxos.core.acceptor import Acceptor
from firmware.paxos.core.batch import Command
from firmware.paxos.core.leadership import Leadership
from firmware.paxos.core.learner import Learner
from firmware.paxos.core.options import Options
from firmware.paxos.core.ready import Ready
from firmware.paxos.core.types import Ballot

NO_STAMP = (0, 0)  # a stamp is (epoch, seq); this one echoes nothing: epochs start at 1
Stamp = tuple[int, int]


@dataclass
class PreVoting:
    """A pre-vote in progress (liveness.py): the ballot we would take, the stamp answers must echo, who said yes."""

    ballot: Ballot
    stamp: Stamp
    grants: set[str] = field(default_factory=set)


class ReplicaState:
    id: str
    site: str
    members: tuple[str, ...]
    peers: tuple[str, ...]
    quorum: int
    opts: Options
    rng: random.Random
    log: EventLogger
    folded: FoldedLog  # for what repeats while there is no quorum (elections, pre-votes)
    acceptor: Acceptor
    learner: Learner
    role: str
    leader_id: str | None
    last_heard: float  # when our leader was last proven alive (liveness.py)
    proof_floor: float  # proofs of life from before this prove nothing new
    election_deadline: float
    next_heartbeat: float
    max_round: int
    lead: Leadership | None
    epoch: int  # our stamps' epoch: the adapter's broker connection
    seq: int
    sent_stamps: dict[Stamp, float]  # our recent stamps -> when sent
    peer_stamp: dict[str, Stamp]  # the newest stamp each peer sent us
    gone_epoch: dict[str, int]  # the newest Last Will taken from each peer
    prevote: PreVoting | None
    queue: deque[Command]  # client commands waiting for a leader's slot
    queued: set[tuple[str, int]]  # (client, req) queued or in flight here
    waiting: dict[str, int]  # client -> the request this replica answers when applied
    peer_commit: dict[str, int]  # how far each peer last said its log is chosen
    catchup_next: float
    catchup_asked: tuple[str, int] | None  # (peer, from_slot) of our last CatchUpRequest
    now: float
    dropped: int  # messages and commands refused as malformed, foreign or too big
    admit: Callable[[str, bytes], str | None] | None  # the admission check of open requests (routing.py)
    refused: int  # open requests refused by it (or dropped for want of one)
    _out: Ready

    def _send(self, to: str, msg: m.Message) -> None:
        raise NotImplementedError

    def _become_follower(self, leader: str | None, now: float) -> None:
        raise NotImplementedError

    def _election_timeout(self) -> float:
        raise NotImplementedError

    def _start_election(self, now: float) -> None:
        raise NotImplementedError

    def _note_ballot(self, b: Ballot) -> None:
        raise NotImplementedError

    def _forward_queue(self) -> None:
        raise NotImplementedError

    def _hint(self, peer: str, chosen_upto: int) -> None:
        raise NotImplementedError

    def _maybe_catch_up(self) -> None:
        raise NotImplementedError

    def _install_snapshot(self, peer: str, slot: int, blob: bytes) -> None:
        raise NotImplementedError

    def _offer_snapshot(self, peer: str) -> None:
        raise NotImplementedError

    def _pull_snapshot(self) -> bool:
        raise NotImplementedError
