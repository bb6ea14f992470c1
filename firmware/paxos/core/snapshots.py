"""Snapshots travel in chunks, pulled one at a time: the snapshot side of a Replica.

A state machine's snapshot can be far bigger than one message (1 MiB), so a replica that asks
for slots its peer has folded into its snapshot gets the first chunk of it (`Snapshot`: slot,
total size, offset, SHA-256 of the whole, at most `snapshot_chunk` bytes), and pulls each next
one with a `SnapshotRequest(slot, offset, digest)`. One chunk per request, so a transfer goes as
fast as the receiver takes it and never floods the broker; a lost chunk or request is asked
again (from where the transfer is) every heartbeat interval.

The sender keeps the snapshot it serves each peer until that peer stops asking for it
(`snapshot_stall`), so a transfer ends even while newer snapshots are taken meanwhile; a request
for one it no longer has gets the first chunk of the one it has now.

The receiver assembles one transfer at a time, from one (sender, slot, digest), and takes only the
chunk that comes next. It refuses a snapshot bigger than `max_snapshot` (with a log line), drops
a transfer that made no progress for `snapshot_stall` (it then asks anew, maybe another peer),
and installs only a complete snapshot whose digest matches: never a mix of two snapshots, a
half or a damaged one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from firmware.paxos.core import messages as m
from firmware.paxos.core.replica_state import ReplicaState

DIGEST_SIZE = 32  # SHA-256


def digest_of(blob: bytes) -> bytes:
    return hashlib.sha256(blob).digest()


class Offer:
    """A snapshot a replica serves: its slot, its bytes and their digest (computed once)."""

    def __init__(self, slot: int, blob: bytes) -> None:
        self.slot, self.blob = slot, blob
        self.digest = digest_of(blob)
        self.used = 0.0  # when a peer last asked for it

    def chunk(self, site: str, sender: str, offset: int, size: int) -> m.Snapshot:
        return m.Snapshot(site, sender, self.slot, len(self.blob), offset, self.digest,
                          self.blob[offset:offset + size])


@dataclass
class Incoming:
    """A snapshot being received from `sender`: the chunks so far, in order."""

    sender: str
    slot: int
    total: int
    digest: bytes
    progressed: float  # when the last chunk was taken
    parts: list[bytes] = field(default_factory=list)
    have: int = 0

    def is_of(self, s: m.Snapshot) -> bool:
        return (s.sender, s.slot, s.digest) == (self.sender, self.slot, self.digest)

    def add(self, s: m.Snapshot, now: float) -> bool:
        """Take `s` if it is the chunk that comes next (a duplicate, a late or a replayed one is not)."""
        if s.offset != self.have or not s.data or s.offset + len(s.data) > self.total:
            return False
        self.parts.append(s.data)
        self.have += len(s.data)
        self.progressed = now
        return True

    @property
    def complete(self) -> bool:
        return self.have >= self.total


class Snapshots(ReplicaState):
    incoming: Incoming | None  # the one transfer this replica receives
    offers: dict[str, Offer]  # peer -> the snapshot we serve it
    current_offer: Offer | None  # our newest snapshot, once a peer asked for it

    # ------------------------------------------------------------- sending

    def _offer_snapshot(self, peer: str) -> None:
        """`peer` needs slots folded into our snapshot: the first chunk of it (it pulls the rest)."""
        offer = self._newest_offer()
        if offer is not None:
            self.offers[peer] = offer
            self._send_chunk(peer, offer, 0)

    def _newest_offer(self) -> Offer | None:
        blob = self.learner.snapshot
        if blob is None:
            return None
        if self.current_offer is None or self.current_offer.blob is not blob:
            self.current_offer = Offer(self.learner.log_start, blob)
        return self.current_offer

    def _offer_for(self, peer: str, slot: int, digest: bytes) -> Offer | None:
        """The snapshot of `slot` with `digest` that we serve `peer`, if we still have it."""
        offer = self.offers.get(peer)
        if offer is not None and (offer.slot, offer.digest) == (slot, digest):
            return offer
        return None

    def _send_chunk(self, peer: str, offer: Offer, offset: int) -> None:
        offer.used = self.now
        self._send(peer, offer.chunk(self.site, self.id, offset, self.opts.snapshot_chunk))

    def _on_SnapshotRequest(self, r: m.SnapshotRequest) -> None:  # noqa: N802
        offer = self._offer_for(r.sender, r.slot, r.digest)
        if offer is None:
            self._offer_snapshot(r.sender)  # gone (replaced, or we restarted): start again from ours
        elif 0 <= r.offset < len(offer.blob):
            self._send_chunk(r.sender, offer, r.offset)

    def _expire_offers(self) -> None:
        """Forget what no peer asked for within `snapshot_stall`: it holds a snapshot's bytes in memory."""
        for peer in [p for p, o in self.offers.items() if self.now - o.used > self.opts.snapshot_stall]:
            del self.offers[peer]

    # ------------------------------------------------------------- receiving

    def _on_Snapshot(self, s: m.Snapshot) -> None:  # noqa: N802
        t = self.incoming
        if t is None or not t.is_of(s):
            if s.offset != 0 or s.slot <= self.learner.applied:
                return  # a chunk of a transfer we do not run, or a snapshot we are past
            if t is not None and s.slot <= t.slot and self.now - t.progressed <= self.opts.snapshot_stall:
                return  # ours goes on: an answer to an earlier request, or to one we sent another peer
            if len(s.digest) != DIGEST_SIZE or s.total > self.opts.max_snapshot:
                self.dropped += 1
                self.folded.warning("paxos.snapshot_refused", peer=s.sender, slot=s.slot, size=s.total,
                                    max_snapshot=self.opts.max_snapshot, digest_bytes=len(s.digest))
                return
            t = self.incoming = Incoming(s.sender, s.slot, s.total, s.digest, self.now)
        if not self._take_chunk(t, s):
            return
        if not t.complete:
            self._pull_next(t)
            return
        self.incoming = None
        blob = b"".join(t.parts)
        if not self._intact(t, blob):
            self.dropped += 1
            self.folded.warning("paxos.snapshot_corrupt", peer=t.sender, slot=t.slot, size=len(blob),
                                why="its digest does not match: asked again")
            self.catchup_next = self.now
            return
        self._install_snapshot(t.sender, t.slot, blob)

    def _take_chunk(self, t: Incoming, s: m.Snapshot) -> bool:
        return t.add(s, self.now)

    def _intact(self, t: Incoming, blob: bytes) -> bool:
        return len(blob) == t.total and digest_of(blob) == t.digest

    def _pull_next(self, t: Incoming) -> None:
        self.catchup_next = self.now + self.opts.heartbeat_interval  # asked again then if lost
        self._send(t.sender, m.SnapshotRequest(self.site, self.id, t.slot, t.have, t.digest))

    def _pull_snapshot(self) -> bool:
        """Retry the transfer in progress, if one is; False if none is (any stalled or needless one dropped)."""
        self._expire_offers()
        t = self.incoming
        if t is None:
            return False
        if t.slot <= self.learner.applied or self.now - t.progressed > self.opts.snapshot_stall:
            if t.slot > self.learner.applied:  # its sender is gone or cut off: the next hint names who to ask
                self.folded.warning("paxos.snapshot_stalled", peer=t.sender, slot=t.slot, have=t.have, size=t.total)
                self.peer_commit.pop(t.sender, None)
            self.incoming = None
            return False
        if self.now >= self.catchup_next:
            self._pull_next(t)
        return True
