"""What a leader keeps for one ballot: the client commands waiting for a slot and the slots in flight.

Phase 1's outcome (`recover`) decides what the new leader must re-propose: in every open slot
from `lower` up, the value accepted under the highest ballot among the promises, or a no-op
where nobody in the quorum accepted anything (Paxos's rule, run once for all open slots).

A promise whose accepted entries do not fit one message comes in parts (`Promise.more`); the
candidate asks for each next part and counts the promise only once it has them all (`gather`):
Paxos's rule needs, from each acceptor of the quorum, everything it accepted from the commit
point up, and a value missing from a partial promise could be one that was chosen.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import replace

from firmware.paxos.core.batch import NOOP, Command, Stamp, encode_batch
from firmware.paxos.core.messages import Entry, Promise
from firmware.paxos.core.types import Accepted, Ballot

FOLLOWER, CANDIDATE, LEADER = "follower", "candidate", "leader"


def recover(promises: Iterable[Promise], lower: int, known_chosen: dict[int, bytes]) -> tuple[list[Entry], int]:
    """The entries to re-propose in slots >= `lower`, and the next free slot."""
    best: dict[int, Accepted] = {}
    for p in promises:
        for a in p.accepted:
            if a.slot >= lower and (a.slot not in best or a.ballot > best[a.slot].ballot):
                best[a.slot] = a
    top = max([*best, *(s for s in known_chosen if s >= lower)], default=lower - 1)
    entries = []
    for slot in range(lower, top + 1):
        if slot in known_chosen:
            entries.append(Entry(slot, known_chosen[slot]))
        else:
            entries.append(Entry(slot, best[slot].value if slot in best else NOOP))
    return entries, top + 1


def gather(got: Promise | None, part: Promise) -> Promise | None:
    """The promise gathered from one acceptor with `part` added (`got`: the parts so far, None if none);
    None if `part` is not the one that comes next (a duplicate, a late or a replayed one)."""
    if got is None:
        return part if not part.more or part.accepted else None
    if part.from_slot != next_part(got):
        return None
    if part.more and not part.accepted:
        return None
    return replace(got, accepted=got.accepted + part.accepted, chosen_upto=max(got.chosen_upto, part.chosen_upto),
                   log_start=max(got.log_start, part.log_start), more=part.more)


def next_part(p: Promise) -> int:
    """Where the rest of a promise in parts begins (the slot after the last it holds)."""
    return p.accepted[-1].slot + 1


class Leadership:
    """The proposer side of a leader under `ballot`."""

    def __init__(self, ballot: Ballot, next_slot: int) -> None:
        self.ballot = ballot
        self.next_slot = next_slot
        self.proposals: dict[int, bytes] = {}  # slot -> value, proposed under ballot, not yet chosen
        self.acks: dict[int, set[str]] = {}
        self.sent_at: dict[int, float] = {}
        self.acked_at: dict[str, float] = {}  # peer -> proven alive after this (liveness.py)
        self.started = 0.0
        self.fast: tuple[str, ...] = ()  # the followers new Accepts go to (thrifty.py); the others are lazy
        self.lazy_learned = next_slot  # lazy followers were pushed the chosen values below this
        self.term_start = next_slot  # its first fresh slot: every earlier one was chosen or recovered (phase 1)
        self.lazy_due: float | None = None  # when to push to them next
        self.partial: dict[str, Promise] = {}  # the parts gathered of promises that came in parts (phase 1)

    def propose(self, entries: Iterable[Entry], now: float) -> list[Entry]:
        out = []
        for e in entries:
            self.proposals[e.slot] = e.value
            self.acks[e.slot] = set()
            self.sent_at[e.slot] = now
            self.next_slot = max(self.next_slot, e.slot + 1)
            out.append(e)
        return out

    def next_batches(self, queue: deque[Command], max_batch: int, max_inflight: int, now: float) -> list[Entry]:
        """Take queued commands into new slots while the pipelining window has room, stamped with our
        office and `now` (the state machine's only clock: context.py)."""
        out = []
        stamp = Stamp(self.ballot.round, self.ballot.node, int(now * 1000))
        while queue and len(self.proposals) + len(out) < max_inflight:
            batch = [queue.popleft() for _ in range(min(max_batch, len(queue)))]
            out.append(Entry(self.next_slot + len(out), encode_batch(stamp, batch)))
        return out

    def ack(self, node: str, slots: Iterable[int], quorum: int) -> list[Entry]:
        """Record `node`'s acceptance; the entries that thereby reached a majority (now chosen).

        Not a sign of life (an AcceptReply carries no stamp: a replayed one would look fresh);
        `acked_at` comes from heartbeat replies only (liveness.py)."""
        chosen = []
        for slot in slots:
            acks = self.acks.get(slot)
            if acks is None:
                continue
            acks.add(node)
            if len(acks) >= quorum:
                chosen.append(Entry(slot, self.proposals.pop(slot)))
                del self.acks[slot], self.sent_at[slot]
        return chosen

    def forget(self, slot: int) -> bytes | None:
        """Stop proposing `slot` (learned chosen some other way); our value there, if any."""
        self.acks.pop(slot, None)
        self.sent_at.pop(slot, None)
        return self.proposals.pop(slot, None)

    def stale(self, now: float, after: float) -> list[Entry]:
        """In-flight entries sent more than `after` ago (to retransmit), their send time reset."""
        out = []
        for slot, sent in self.sent_at.items():
            if now - sent >= after:
                out.append(Entry(slot, self.proposals[slot]))
                self.sent_at[slot] = now
        return out

    def in_contact(self, now: float, within: float) -> int:
        """How many peers were proven alive in the last `within` seconds."""
        return sum(1 for t in self.acked_at.values() if now - t < within)
