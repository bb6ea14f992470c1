"""Exactly-once application: the de-duplication table is part of the replicated state.

Each client numbers its requests 1, 2, 3, ... and has at most one outstanding (the Raft
dissertation's client sessions): the table keeps, per client, the last request applied and its
result. A retry or a duplicate delivery of that request returns the first answer without applying
it again; an older request is stale and is not applied. Because the table is replicated through
the log and saved in snapshots, this survives a leader change, a restart and a snapshot install.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

from firmware.paxos.core.batch import Command, Stamp
from firmware.paxos.core.canonical import dumps
from firmware.paxos.core.context import Context


class StateMachine(Protocol):
    """The pluggable, deterministic replicated state machine (no clock, no randomness, no I/O)."""

    def apply(self, command: bytes, ctx: Context) -> bytes:
        """The command's result; never raises (a log that stalls on one command stalls the site)."""
        ...

    def forgotten(self) -> Sequence[str]:
        """The clients the last `apply` forgot (gone quiet): their de-duplication entries go too."""
        ...

    def snapshot(self) -> bytes: ...

    def restore(self, blob: bytes) -> None: ...


STALE = b""  # the answer recorded for a request older than the client's last one


class Deduplicated:
    """A state machine behind a per-client (last request id, result) table."""

    def __init__(self, machine: StateMachine) -> None:
        self.machine = machine
        self.sessions: dict[str, tuple[int, bytes]] = {}

    def cached(self, client: str, req: int) -> bytes | None:
        """The result of (client, req) if it was already applied, else None."""
        last = self.sessions.get(client)
        if last is not None and last[0] == req:
            return last[1]
        return None

    def is_stale(self, client: str, req: int) -> bool:
        last = self.sessions.get(client)
        return last is not None and req < last[0]

    def apply(self, c: Command, stamp: Stamp) -> tuple[bytes, bool]:
        """Apply once: returns (result, fresh) where fresh is False for a duplicate or a stale request.

        `member` is whether the site key vouched for it (`keyed`): a member's own replica, or a tool
        holding the key; a request only its Ed25519 signature vouches for is checked by the machine."""
        last = self.sessions.get(c.client)
        if last is not None and c.req <= last[0]:
            return (last[1] if c.req == last[0] else STALE), False
        ctx = Context(c.client, c.keyed, (stamp.round, stamp.node), stamp.now_ms)
        result = self.machine.apply(c.command, ctx)
        self.sessions[c.client] = (c.req, result)
        for quiet in self.machine.forgotten():
            if quiet != c.client:
                self.sessions.pop(quiet, None)
        return result, True

    def snapshot(self) -> bytes:
        sessions = {c: [r, res.decode("latin-1")] for c, (r, res) in sorted(self.sessions.items())}
        head = dumps(sessions)
        return len(head).to_bytes(4, "big") + head + self.machine.snapshot()

    def restore(self, blob: bytes) -> None:
        """Replace the state with `blob`'s; the table only once the machine's own restore has not raised."""
        n = int.from_bytes(blob[:4], "big")
        sessions = {c: (int(r), res.encode("latin-1")) for c, (r, res) in json.loads(blob[4:4 + n]).items()}
        self.machine.restore(blob[4 + n:])
        self.sessions = sessions
