"""Learning chosen values, catching up from peers, snapshots, and applying: the learner side of a Replica.

A replica learns a slot is chosen from a Commit (if it accepted that slot under the Commit's
ballot), from its own quorum of AcceptReplies when it leads, or from a peer's CatchUpReply.
Every message that says how far a peer's log goes is a hint: a replica that lags asks that peer
for the chosen values from its commit point, or gets its snapshot if they were compacted away.
"""

from __future__ import annotations

from firmware.paxos import messages as m
from firmware.paxos.leadership import LEADER
from firmware.paxos.ready import Applied
from firmware.paxos.replica_state import ReplicaState


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
        if chosen_upto > self.known_commit:
            self.known_commit = chosen_upto
            self.catchup_peer = peer
        self._maybe_catch_up()

    def _maybe_catch_up(self) -> None:
        behind = self.known_commit > self.learner.chosen_upto
        if behind and self.catchup_peer not in (None, self.id) and self.now >= self.catchup_next:
            self.catchup_next = self.now + self.opts.heartbeat_interval
            self._send(self.catchup_peer, m.CatchUpRequest(self.site, self.id, self.learner.chosen_upto))

    def _on_CatchUpRequest(self, r: m.CatchUpRequest) -> None:  # noqa: N802
        if r.from_slot < self.learner.log_start and self.learner.snapshot is not None:
            self._send(r.sender, m.Snapshot(self.site, self.id, self.learner.log_start, self.learner.snapshot))
            return
        entries = self.learner.entries(r.from_slot, self.opts.catchup_batch)
        self._send(r.sender, m.CatchUpReply(self.site, self.id, entries, self.learner.chosen_upto))

    def _on_CatchUpReply(self, r: m.CatchUpReply) -> None:  # noqa: N802
        for e in r.entries:
            self._learned(e.slot, e.value)
        if r.entries:
            self.catchup_next = self.now  # more to fetch: ask again at once
        self._hint(r.sender, r.chosen_upto)

    def _on_Snapshot(self, s: m.Snapshot) -> None:  # noqa: N802
        if not self.learner.install(s.slot, s.blob):
            return
        self.acceptor.compact(s.slot)
        if self.lead is not None:
            for slot in [x for x in self.lead.proposals if x < s.slot]:
                self.lead.forget(slot)
            self.lead.next_slot = max(self.lead.next_slot, s.slot)
        self._out.snapshot = (s.slot, s.blob)
        self.log.info("paxos.snapshot_installed", slot=s.slot, peer=s.sender, size=len(s.blob))
        self.catchup_next = self.now
        self._maybe_catch_up()

    def _apply(self) -> None:
        applied = self.learner.apply_chosen()
        if not applied:
            return
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
        if key in self.waiting:
            self.waiting.discard(key)
            self._out.replies.append(m.ClientReply(self.site, self.id, a.client, a.req, a.result))

