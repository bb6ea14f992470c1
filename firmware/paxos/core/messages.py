"""Every message of the Multi-Paxos protocol, as frozen dataclasses.

Each message carries the `site` and the `sender` (a replica id, or a client id for
`ClientRequest`); the transport signs and encodes them, the core only reads them. Slot
values are opaque bytes here (an encoded batch, see `batch.py`; b"" is a no-op).

Pre-vote: PreVote -> PreVoteReply            (would you promise a higher ballot? nothing is written)
Phase 1:  Prepare -> Promise | Nack          (once per leadership, for every open slot)
Phase 2:  Accept  -> AcceptReply | Nack       (pipelined, one batch of commands per slot)
Learning: Commit (slots chosen by the leader's ballot), Heartbeat -> HeartbeatReply
Catch-up: CatchUpRequest -> CatchUpReply (chosen entries) | Snapshot (its first chunk, when compacted away)
          SnapshotRequest -> Snapshot (the chunk at an offset: the receiver pulls the rest, one at a time)
Clients:  ClientRequest (client -> any replica), Forward (follower -> leader), ClientReply

Liveness messages carry the sender's stamp (`epoch`, `seq`: its broker connection and a count
that only rises) and, where they answer one, the `echo_epoch`/`echo_seq` of the receiver's
stamp they answer: only an echo of a stamp the receiver sent recently proves the sender alive,
so a replayed frame proves nothing (liveness.py). (0, 0) echoes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from firmware.paxos.core.types import Accepted, Ballot


class Entry(NamedTuple):
    """A slot and its value (a proposal in `Accept`, a chosen value in `CatchUpReply`)."""

    slot: int
    value: bytes


@dataclass(frozen=True)
class Prepare:
    """Phase 1a: promise `ballot`, and tell me what you accepted in slots >= `from_slot`."""

    site: str
    sender: str
    ballot: Ballot
    from_slot: int


@dataclass(frozen=True)
class Promise:
    """Phase 1b: the sender promised `ballot`; `accepted` holds its entries for slots >= `from_slot` (the
    Prepare's), all of them, or if `more` (1) only those below the last one's slot + 1: they did not fit
    one message, and the candidate asks for the rest (a Prepare from there) before it counts this promise.
    Slots below `chosen_upto` are chosen and known to the sender; slots below `log_start` are folded
    into its snapshot (their accepted entries are gone)."""

    site: str
    sender: str
    ballot: Ballot
    accepted: tuple[Accepted, ...]
    chosen_upto: int
    log_start: int
    epoch: int  # the sender's stamp: the new leader's first heartbeat echoes it
    seq: int
    from_slot: int
    more: int


@dataclass(frozen=True)
class Accept:
    """Phase 2a: accept these values under `ballot`. `commit` is the leader's chosen_upto (a hint)."""

    site: str
    sender: str
    ballot: Ballot
    entries: tuple[Entry, ...]
    commit: int


@dataclass(frozen=True)
class AcceptReply:
    """Phase 2b (Paxos's "Accepted"): the sender durably accepted `slots` under `ballot`."""

    site: str
    sender: str
    ballot: Ballot
    slots: tuple[int, ...]
    chosen_upto: int


@dataclass(frozen=True)
class Commit:
    """The leader's proposals under `ballot` in `slots` were accepted by a majority: they are chosen.

    A replica that accepted a slot under the same ballot knows the value; any other catches up."""

    site: str
    sender: str
    ballot: Ballot
    slots: tuple[int, ...]


@dataclass(frozen=True)
class Heartbeat:
    """The leader of `ballot` is alive (if it echoes a recent stamp of the receiver); slots below
    `commit` are chosen (a catch-up hint)."""

    site: str
    sender: str
    ballot: Ballot
    commit: int
    epoch: int
    seq: int
    echo_epoch: int  # the newest stamp the leader heard from the receiver
    echo_seq: int


@dataclass(frozen=True)
class HeartbeatReply:
    """A follower's answer to a heartbeat (whose stamp it echoes): it counts for the leader's quorum check."""

    site: str
    sender: str
    ballot: Ballot
    chosen_upto: int
    epoch: int
    seq: int
    echo_epoch: int
    echo_seq: int


@dataclass(frozen=True)
class PreVote:
    """Would you promise `ballot` if I asked? (Nothing is promised or written: Raft's PreVote.)"""

    site: str
    sender: str
    ballot: Ballot
    epoch: int
    seq: int


@dataclass(frozen=True)
class PreVoteReply:
    """The answer to a PreVote (whose stamp it echoes): yes if `granted` (1); `promised` is the sender's promise."""

    site: str
    sender: str
    granted: int
    promised: Ballot
    echo_epoch: int
    echo_seq: int


@dataclass(frozen=True)
class Nack:
    """The sender refused `ballot`: it has promised the higher `promised`."""

    site: str
    sender: str
    ballot: Ballot
    promised: Ballot


@dataclass(frozen=True)
class CatchUpRequest:
    """Send me the chosen values of slots >= `from_slot` (or your snapshot if you compacted them)."""

    site: str
    sender: str
    from_slot: int


@dataclass(frozen=True)
class CatchUpReply:
    """Chosen values (contiguous from the request's from_slot); the sender knows slots < `chosen_upto`."""

    site: str
    sender: str
    entries: tuple[Entry, ...]
    chosen_upto: int


@dataclass(frozen=True)
class Snapshot:
    """One chunk of the sender's snapshot: the replicated state (state machine + de-duplication table)
    with slots < `slot` applied, `total` bytes whose SHA-256 is `digest`; `data` is the bytes from `offset`."""

    site: str
    sender: str
    slot: int
    total: int
    offset: int
    digest: bytes
    data: bytes


@dataclass(frozen=True)
class SnapshotRequest:
    """Send me the chunk at `offset` of your snapshot of `slot` whose SHA-256 is `digest` (or, if you no
    longer have it, the first chunk of the one you have)."""

    site: str
    sender: str
    slot: int
    offset: int
    digest: bytes


@dataclass(frozen=True)
class ClientRequest:
    """A client's command for the site; `req` increases with every new request of that client."""

    site: str
    sender: str  # the client id
    req: int
    command: bytes
    keyed: bool = True  # came under the site key's MAC; False: only its own signature vouches (batch.py)

    @property
    def client(self) -> str:
        return self.sender


@dataclass(frozen=True)
class Forward:
    """A client's request passed on by a follower to the replica it believes is the leader."""

    site: str
    sender: str
    client: str
    req: int
    command: bytes
    keyed: bool = True


@dataclass(frozen=True)
class ClientReply:
    """The result of request `req` of `client`: the state machine's answer when it was applied."""

    site: str
    sender: str
    client: str
    req: int
    result: bytes


Message = (
    Prepare | Promise | Accept | AcceptReply | Commit | Heartbeat | HeartbeatReply | Nack
    | CatchUpRequest | CatchUpReply | Snapshot | ClientRequest | Forward | ClientReply | PreVote | PreVoteReply
    | SnapshotRequest
)
PEER_MESSAGES = (Prepare, Promise, Accept, AcceptReply, Commit, Heartbeat, HeartbeatReply, Nack,
                 CatchUpRequest, CatchUpReply, Snapshot, Forward, PreVote, PreVoteReply, SnapshotRequest)
MESSAGE_TYPES: dict[str, type] = {cls.__name__: cls for cls in (*PEER_MESSAGES, ClientRequest, ClientReply)}
