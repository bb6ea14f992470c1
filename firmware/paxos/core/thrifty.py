"""Thrifty phase 2: a leader sends each Accept only to as many followers as a quorum needs.

With three replicas a slot is chosen by the leader and ONE follower; sending every Accept to
both followers makes the second one wake, fsync and answer for nothing, on the same CPUs the
first one needs (measured on a 2-core machine: 0.82 ms per sequential commit with two replicas,
1.06 ms with three). So the leader sends new Accepts to the "fast" followers only — the first
ones in member order that answered within two heartbeat intervals — and every `lazy_delay`
pushes to the others, in one message each:
- the slots chosen since the last push, as a `CatchUpReply` (learned, not accepted: the value
  is already on a quorum's disks, so the lazy follower needs no fsync and sends no answer);
- Accepts for slots still unchosen after `lazy_delay` (a fast follower that died or stalls):
  the lazy followers' votes then choose them, and the next proposals go to whoever answers.
Lazy followers are pushed to before every heartbeat, so a heartbeat's commit hint never sends
them to catch up on what the push carries anyway.

Safety is untouched (who is sent an Accept, and when, is the proposer's choice); liveness with
a dead fast follower costs at most `lazy_delay` per slot until the fast set changes.
"""

from __future__ import annotations

from firmware.paxos.core import messages as m
from firmware.paxos.core.replica_state import ReplicaState
from firmware.paxos.core.sizes import entry_size, value_groups


class Thrifty(ReplicaState):
    def _fast_followers(self) -> tuple[str, ...]:
        """The followers new Accepts go to: all of them unless thrifty, else a quorum's worth, live ones first."""
        if self.opts.lazy_delay <= 0 or self.lead is None:
            return self.peers
        fresh_since = self.now - 2 * self.opts.heartbeat_interval
        acked = self.lead.acked_at
        ranked = sorted(self.peers, key=lambda p: acked.get(p, -1e18) < fresh_since)  # stable: member order
        return tuple(ranked[:self.quorum - 1])

    def _lazy_followers(self) -> tuple[str, ...]:
        fast = self.lead.fast if self.lead is not None else ()
        return tuple(p for p in self.peers if p not in fast) if fast else ()

    def _want_push(self) -> None:
        """Something lazy followers have not heard of yet: push it within `lazy_delay`."""
        if self.lead is not None and self.lead.lazy_due is None and self._lazy_followers():
            self.lead.lazy_due = self.now + self.opts.lazy_delay

    def _push_lazy(self) -> None:
        """Tell the lazy followers what was chosen since the last push, and ask their vote on stale slots."""
        lead = self.lead
        if lead is None:
            return
        lead.lazy_due = None
        lazy = self._lazy_followers()
        if not lazy:
            return
        chosen_upto = self.learner.chosen_upto
        learned = self.learner.entries(lead.lazy_learned, self.opts.catchup_batch, self.opts.message_budget)
        upto = learned[-1].slot + 1 if learned else chosen_upto
        stale = [m.Entry(s, lead.proposals[s]) for s, sent in lead.sent_at.items()
                 if self.now - sent >= self.opts.lazy_delay]
        lead.lazy_learned = max(lead.lazy_learned, upto)
        for peer in lazy:
            if learned:
                self._send(peer, m.CatchUpReply(self.site, self.id, learned, upto))
            for group in value_groups(stale, self.opts.message_budget, entry_size):
                self._send(peer, m.Accept(self.site, self.id, lead.ballot, tuple(group), upto))
        if lead.proposals or lead.lazy_learned < chosen_upto:
            self._want_push()  # their outcome, or the rest, for the next push
