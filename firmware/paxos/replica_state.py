"""The state a Replica's parts share (declared once here, set in Replica.__init__).

`Replica` is assembled from parts that each do one thing (phase 1 and 2 in replica.py, learning
and catch-up in catchup.py, client routing in routing.py); they all read this state.
"""

from __future__ import annotations

import random
from collections import deque

from evnet.logs import EventLogger
from firmware.paxos import messages as m
from firmware.paxos.acceptor import Acceptor
from firmware.paxos.batch import Command
from firmware.paxos.leadership import Leadership
from firmware.paxos.learner import Learner
from firmware.paxos.options import Options
from firmware.paxos.ready import Ready


class ReplicaState:
    id: str
    site: str
    members: tuple[str, ...]
    peers: tuple[str, ...]
    quorum: int
    opts: Options
    rng: random.Random
    log: EventLogger
    acceptor: Acceptor
    learner: Learner
    role: str
    leader_id: str | None
    last_heard: float
    lead: Leadership | None
    queue: deque[Command]  # client commands waiting for a leader's slot
    queued: set[tuple[str, int]]  # (client, req) queued or in flight here
    waiting: dict[str, int]  # client -> the request this replica answers when applied
    peer_commit: dict[str, int]  # how far each peer last said its log is chosen
    catchup_next: float
    now: float
    _out: Ready

    def _send(self, to: str, msg: m.Message) -> None:
        raise NotImplementedError

    def _become_follower(self, leader: str | None, now: float) -> None:
        raise NotImplementedError
