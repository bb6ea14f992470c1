"""The site's outside clients in the simulation: drivers' phone apps and the operator's tool.

Each is a Paxos client of its own (`app-<id>`), signs its requests (firmware/site/credentials.py),
sends them through the broker to any replica, has one request outstanding at a time and sends it
again, with the same request number, until it is answered (the Paxos client rules).
"""

from __future__ import annotations

import json
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.site import public_key_b64, signed_request

RETRY_S = 1.0


def key_from(rng: random.Random) -> Ed25519PrivateKey:
    """A key drawn from the seed: a replay signs the same bytes."""
    return Ed25519PrivateKey.from_private_bytes(bytes(rng.getrandbits(8) for _ in range(32)))


@dataclass
class Sent:
    req: int
    op: str
    args: dict[str, Any]
    command: bytes
    at: float
    answers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class App:
    principal: str
    site: str
    key: Ed25519PrivateKey
    queue: deque[tuple[str, dict[str, Any]]] = field(default_factory=deque)
    history: list[Sent] = field(default_factory=list)
    seq: int = 0

    @property
    def client(self) -> str:
        return f"app-{self.principal}"

    @property
    def pubkey(self) -> str:
        return public_key_b64(self.key)

    @property
    def current(self) -> Sent | None:
        last = self.history[-1] if self.history else None
        return last if last is not None and not last.answers else None

    def next(self, now: float) -> Sent | None:
        """The next request to send, if none is outstanding."""
        if self.current is not None or not self.queue:
            return None
        op, args = self.queue.popleft()
        self.seq += 1
        command = signed_request(self.key, site=self.site, by=self.principal, seq=self.seq, op=op, args=args)
        sent = Sent(len(self.history) + 1, op, args, command, now)
        self.history.append(sent)
        return sent

    def answered(self, req: int, result: bytes) -> bool:
        """A reply came; True if it answers the outstanding request (a duplicate or late one does not)."""
        if not self.history or self.history[-1].req != req or self.history[-1].answers:
            return False
        self.history[-1].answers.append(json.loads(result) if result else {"error": "stale"})
        return True
