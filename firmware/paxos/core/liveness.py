"""Who is alive, in a way a replay cannot fake: stamps and echoes, pre-votes, the Last Will.

Anyone on the broker can record authentic frames and publish them again later; heartbeats of a
paused leader replayed every 40 ms froze failover for as long as the replay went on (issue 9,
A4). So a replica believes a peer alive only on proof that the peer answered something this
replica sent recently:
- Heartbeat, HeartbeatReply, Promise and PreVote carry the sender's stamp `(epoch, seq)`: the
  epoch names the adapter's broker connection (a new one for each connection, rising across
  restarts: datadir.py), seq counts up. A Heartbeat echoes the newest stamp its sender heard
  from the receiver, a HeartbeatReply or PreVoteReply the stamp of what it answers.
- A replica keeps the time it sent each of its stamps for `election_max`. An echo of one proves
  the peer alive after that time, and that time, never the arrival time, is what counts: a
  follower's `last_heard` and election timer, a leader's `acked_at`. A replayed frame echoes an
  old stamp and proves nothing new.
- The Last Will names the epoch of the connection that died. A Will of an older connection than
  the newest heard from that replica, or one already taken, changes nothing.
Accepts and Commits are not liveness messages: they are safe to replay (ballots see to that)
and carry no stamp, so they may make a candidate step down (once: that needs a higher ballot)
but never reset an election timer. The leader sends heartbeats every interval whatever else it
sends, so nothing is lost by it.

Pre-vote (Raft thesis §9.6, etcd's PreVote): a replica whose election timer runs out first asks
the others whether they would promise a higher ballot; only with a quorum of yes does it take
one and write a promise. A replica that hears a live leader says no (unless the asker is that
leader), so a replica cut off from the others, or every replica while the broker is down,
neither inflates ballots nor fsyncs promises, and a live leader is not disturbed by one that
comes back. Nothing is written or noted for a PreVote: granting one binds to nothing.
"""

from __future__ import annotations

from firmware.paxos.core import messages as m
from firmware.paxos.core.leadership import FOLLOWER, LEADER
from firmware.paxos.core.replica_state import NO_STAMP, PreVoting, ReplicaState, Stamp
from firmware.paxos.core.types import Ballot


class Liveness(ReplicaState):
    def set_epoch(self, epoch: int) -> None:
        """The adapter's broker connection changed: stamp what follows with `epoch` (its new Will names it)."""
        if epoch <= self.epoch:
            raise ValueError(f"epoch {epoch} is not above the current one, {self.epoch}")
        self.epoch = epoch

    def leader_gone(self, node: str, epoch: int, now: float) -> bool:
        """A hint (the broker's Last Will) that `node`'s connection `epoch` died; True if it was our leader's.

        Only a hint: we stop sticking to that leader and hold a pre-vote within half a heartbeat
        interval (a random time, so that the followers that all got the Will rarely run at once;
        a pre-vote and phase 1 take a few ms, and when two run at once the higher ballot wins).
        A Will of an older connection than the newest we heard `node` on, or one taken already,
        is stale (a replay, or a reconnect overtook it) and changes nothing. Proofs of life from
        before it no longer count: the leader must answer something we send after it.
        """
        self.now = max(self.now, now)
        if epoch < self.peer_stamp.get(node, NO_STAMP)[0] or epoch <= self.gone_epoch.get(node, 0):
            return False
        self.gone_epoch[node] = epoch
        if self.leader_id != node or self.role == LEADER:
            return False
        self.last_heard = -1e18
        self.proof_floor = self.now
        soon = self.now + self.rng.uniform(0, self.opts.heartbeat_interval / 2)
        self.election_deadline = min(self.election_deadline, soon)
        self.log.info("paxos.leader_gone_hint", leader=node, epoch=epoch)
        return True

    # ----------------------------------------------------------------- stamps and proofs

    def _stamp(self) -> Stamp:
        """A new stamp of ours; its send time is kept for `election_max` (older proofs are worth nothing)."""
        self.seq += 1
        stamp = (self.epoch, self.seq)
        sent = self.sent_stamps
        sent[stamp] = self.now
        horizon = self.now - self.opts.election_max
        while True:  # insertion order is time order
            oldest = next(iter(sent))
            if sent[oldest] >= horizon:
                break
            del sent[oldest]
        return stamp

    def _proof(self, epoch: int, seq: int) -> float | None:
        """When we sent the stamp a peer echoes (it was alive after that), or None if it is not a recent one of ours."""
        sent = self.sent_stamps.get((epoch, seq))
        return sent if sent is not None and sent >= self.now - self.opts.election_max else None

    def _heard(self, peer: str, epoch: int, seq: int) -> None:
        """The newest stamp `peer` sent us: what we echo to it, and its newest connection (a replay is older)."""
        if (epoch, seq) > self.peer_stamp.get(peer, NO_STAMP):
            self.peer_stamp[peer] = (epoch, seq)

    def _leader_alive(self) -> bool:
        if self.role == LEADER and self.lead is not None:
            return self.lead.in_contact(self.now, self.opts.election_min) + 1 >= self.quorum
        return self.leader_id is not None and self.now - self.last_heard < self.opts.election_min

    def _follow(self, sender: str, ballot: Ballot, proof: float | None) -> None:
        """A message from the leader of `ballot` (>= our promise): obey it. Only a `proof` (the send time of
        a stamp of ours it echoed) makes it our leader if it was not, and resets the election timer."""
        if sender == self.id:
            return
        if self.role != FOLLOWER:
            self._become_follower(sender, self.now)  # our own ballot is beaten: once, it takes a higher ballot
        if proof is None or proof <= self.proof_floor:
            return
        self.proof_floor = self.last_heard = proof
        self.prevote = None
        self.election_deadline = proof + self._election_timeout()
        if self.leader_id != sender:
            self.leader_id = sender
            self._quorum_regained()
            self._forward_queue()

    def _quorum_regained(self) -> None:
        """A leader again: the next election or pre-vote line is logged at once, not folded into the last ones."""
        for key in ("paxos.prevote", "paxos.election", "paxos.step_down"):
            self.folded.reset(key)

    # ----------------------------------------------------------------- heartbeats

    def _heartbeat(self, to: tuple[str, ...] | None = None) -> None:
        """To every peer (and the next one in a heartbeat interval), or only to `to`."""
        assert self.lead is not None
        if to is None:
            self.next_heartbeat = self.now + self.opts.heartbeat_interval
        epoch, seq = self._stamp()
        for peer in self.peers if to is None else to:
            echo = self.peer_stamp.get(peer, NO_STAMP)
            self._send(peer, m.Heartbeat(self.site, self.id, self.lead.ballot, self.learner.chosen_upto, epoch, seq,
                                         *echo))

    def _on_Heartbeat(self, h: m.Heartbeat) -> None:  # noqa: N802
        self._note_ballot(h.ballot)
        self._heard(h.sender, h.epoch, h.seq)
        if h.ballot < self.acceptor.promised:
            self._send(h.sender, m.Nack(self.site, self.id, h.ballot, self.acceptor.promised))
            return
        self._follow(h.sender, h.ballot, self._proof(h.echo_epoch, h.echo_seq))
        self._send(h.sender, m.HeartbeatReply(self.site, self.id, h.ballot, self.learner.chosen_upto, *self._stamp(),
                                              h.epoch, h.seq))
        self._hint(h.sender, h.commit)

    def _on_HeartbeatReply(self, r: m.HeartbeatReply) -> None:  # noqa: N802
        self._heard(r.sender, r.epoch, r.seq)
        self._hint(r.sender, r.chosen_upto)
        if self.role == LEADER and self.lead is not None and r.ballot == self.lead.ballot:
            proof = self._proof(r.echo_epoch, r.echo_seq)
            if proof is not None and proof > self.lead.acked_at.get(r.sender, -1e18):
                self.lead.acked_at[r.sender] = proof

    # ----------------------------------------------------------------- pre-vote

    def _start_prevote(self, now: float) -> None:
        """Our leader is silent (or we lost our election): ask whether a quorum would promise a higher ballot."""
        if self.role != FOLLOWER:
            self._become_follower(None, now)
        self.leader_id = None
        ballot = Ballot(max(self.max_round, self.acceptor.promised.round) + 1, self.id)
        self.prevote = PreVoting(ballot, self._stamp(), {self.id})
        self.election_deadline = now + self._election_timeout()
        self.folded.info("paxos.prevote", ballot=ballot)
        if len(self.prevote.grants) >= self.quorum:
            self._start_election(now)
        else:
            self._send_prevotes(now)

    def _send_prevotes(self, now: float) -> None:
        """(Again) to the peers that have not said yes, every heartbeat interval until the timer runs out."""
        pv = self.prevote
        assert pv is not None
        self.next_heartbeat = now + self.opts.heartbeat_interval
        for peer in self.peers:
            if peer not in pv.grants:
                self._send(peer, m.PreVote(self.site, self.id, pv.ballot, *pv.stamp))

    def _on_PreVote(self, p: m.PreVote) -> None:  # noqa: N802
        self._heard(p.sender, p.epoch, p.seq)
        granted = p.ballot > self.acceptor.promised and (p.sender == self.leader_id or not self._leader_alive())
        self._send(p.sender, m.PreVoteReply(self.site, self.id, int(granted), self.acceptor.promised, p.epoch, p.seq))

    def _on_PreVoteReply(self, r: m.PreVoteReply) -> None:  # noqa: N802
        self._note_ballot(r.promised)
        pv = self.prevote
        if pv is None or not r.granted or (r.echo_epoch, r.echo_seq) != pv.stamp:
            return
        pv.grants.add(r.sender)
        if len(pv.grants) >= self.quorum:
            self._start_election(self.now)
