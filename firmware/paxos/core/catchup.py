"""Learning chosen values, catching up from peers, snapshots, and applying: the learner side of a Replica.

A replica learns a slot is chosen from a Commit (if it accepted that slot under the Commit's
ballot), from its own quorum of AcceptReplies when it leads, or from a peer's CatchUpReply.
Every message that says how far a peer's log goes is a hint: a replica that lags asks that peer
for the chosen values from its commit point (a reply holds what fits one message), or gets its
snapshot, in chunks, if they were compacted away (snapshots.py).
"""

from __future__ import annotations

from firmware.paxos.core import messages as m
from firmware.paxos.core.leadership import LEADER
from firmware.paxos.core.ready import Applied
from firmware.paxos.core.replica_state import ReplicaState


class CatchUp(ReplicaState):
    def _learned(self, slot: int, value: bytes) -> None:
        if self.lead is not None:
            ours = self.lead.forget(slot)
            if ours is not None and ours != value and self.role == LEADER:
                self.log.info("paxos.step_down", ballot=self.lead.ballot, slot=slot, why="slot chosen elsewhere")
                self._become_follower(None, self.now)
        self.learner.learn(slot, value)

    def _hint(self, peer: str, chosen_upto: int) -> None:
        """`peer` knows slots below `chosen_upto` are chosen: catch up from it if we lag."""
        if peer == self.id:
            return
        self.peer_commit[peer] = chosen_upto  # the latest word: a peer that restarted may know less now
        self._maybe_catch_up()

    def _catchup_source(self) -> str | None:
        """The peer that said it knows the most beyond our commit point (None if nobody does)."""
        best = max(self.peer_commit.items(), key=lambda kv: (kv[1], kv[0]), default=None)
        return best[0] if best is not None and best[1] > self.learner.chosen_upto else None

    def _maybe_catch_up(self) -> None:
        if self._pull_snapshot():
            return  # a snapshot comes in: the rest after it
        peer = self._catchup_source()
        if peer is None or self.now < self.catchup_next:
            return
        if self.catchup_asked == (peer, self.learner.chosen_upto):
            # We asked it the same a retry interval ago and nothing came: it may be gone for good (a
            # crashed peer never sends the hint that would replace its last one), so ask the next best;
            # its next message puts it back.
            self.folded.info("paxos.catchup_unanswered", peer=peer, from_slot=self.learner.chosen_upto)
            del self.peer_commit[peer]
            peer = self._catchup_source()
            if peer is None:
                self.catchup_asked = None
                return
        self.catchup_next = self.now + self.opts.heartbeat_interval
        self.catchup_asked = (peer, self.learner.chosen_upto)
        self._send(peer, m.CatchUpRequest(self.site, self.id, self.learner.chosen_upto))

    def _on_CatchUpRequest(self, r: m.CatchUpRequest) -> None:  # noqa: N802
        if r.from_slot < self.learner.log_start and self.learner.snapshot is not None:
            self._offer_snapshot(r.sender)
            return
        entries = self.learner.entries(r.from_slot, self.opts.catchup_batch, self.opts.message_budget)
        self._send(r.sender, m.CatchUpReply(self.site, self.id, entries, self.learner.chosen_upto))

    def _on_CatchUpReply(self, r: m.CatchUpReply) -> None:  # noqa: N802
        if self.catchup_asked is not None and self.catchup_asked[0] == r.sender:
            self.catchup_asked = None  # answered, if only to say it knows no more
        for e in r.entries:
            self._learned(e.slot, e.value)
        if r.entries:
            self.catchup_next = self.now  # more to fetch: ask again at once
        self._hint(r.sender, r.chosen_upto)

    def _install_snapshot(self, peer: str, slot: int, blob: bytes) -> None:
        """A complete, intact snapshot of `slot` from `peer` (snapshots.py): ours, if it is ahead."""
        if not self.learner.install(slot, blob):
            return
        self.acceptor.compact(slot)
        if self.lead is not None:
            for x in [x for x in self.lead.proposals if x < slot]:
                self.lead.forget(x)
            self.lead.next_slot = max(self.lead.next_slot, slot)
        self._out.snapshot = (slot, blob)
        self.log.info("paxos.snapshot_installed", slot=slot, peer=peer, size=len(blob))
        self.catchup_next = self.now
        self._maybe_catch_up()

    def _apply(self) -> None:
        applied = self.learner.apply_chosen()
        self._out.applied.extend(applied)
        for a in applied:
            self._answer(a)
        every = self.opts.snapshot_every
        if every and self.learner.applied - self.learner.log_start >= every:
            slot, blob = self.learner.take_snapshot()
            self.acceptor.compact(slot)
            self._out.snapshot = (slot, blob)

    def _answer(self, a: Applied) -> None:
        key = (a.client, a.req)
        self.queued.discard(key)
        waiting = self.waiting.get(a.client)
        if waiting is not None and waiting <= a.req:  # answered, or the client has moved on
            del self.waiting[a.client]
        if waiting == a.req:
            self._out.replies.append(m.ClientReply(self.site, self.id, a.client, a.req, a.result))

