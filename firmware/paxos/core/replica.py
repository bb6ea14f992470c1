"""The Multi-Paxos replica: a pure, deterministic state machine (etcd raft's `Node`, sans I/O).

Inputs: `step(message, now)`, `propose(client, req, command, now)`, `tick(now)`; the durable
state found at start-up is given to the constructor. Outputs: `ready()` returns a `Ready` the
adapter carries out (persist, then send, then reply; see ready.py). No clock, socket, thread or
global random source is read here: time comes in as `now`, randomness from the injected `rng`.

Roles: a follower that hears nothing from a leader for a random election timeout asks whether a
quorum would promise a higher ballot (a pre-vote: nothing written), and only then runs phase 1
with one, once, for every slot from its commit point up; with a majority of promises it
re-proposes what they accepted (no-ops in the gaps) and then streams batches of client commands
through phase 2, several slots in flight. A replica that heard from a live leader within
`election_min` refuses another's pre-vote and ignores its Prepare (leader stickiness), so a
replica that was cut off cannot depose a healthy leader by coming back. What counts as hearing
from a live leader is replay-proof (liveness.py).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from evnet.logs import FoldedLog, event_logger
from firmware.paxos.core import messages as m
from firmware.paxos.core.acceptor import Acceptor
from firmware.paxos.core.batch import Command
from firmware.paxos.core.catchup import CatchUp
from firmware.paxos.core.dedup import Deduplicated, StateMachine
from firmware.paxos.core.leadership import CANDIDATE, FOLLOWER, LEADER, Leadership, gather, next_part, recover
from firmware.paxos.core.learner import Learner
from firmware.paxos.core.liveness import Liveness
from firmware.paxos.core.options import Options
from firmware.paxos.core.ready import Ready
from firmware.paxos.core.routing import Admit, ClientRouting
from firmware.paxos.core.sizes import MAX_SLOT_VALUE, accepted_size, entry_size, value_groups
from firmware.paxos.core.snapshots import Offer, Snapshots
from firmware.paxos.core.thrifty import Thrifty
from firmware.paxos.core.types import ZERO_BALLOT, Ballot, DurableState

LOG_EVERY = 5.0  # seconds: repeats of an election or pre-vote line within this are folded into one


class Replica(CatchUp, Snapshots, ClientRouting, Thrifty, Liveness):
    """One member of a site's Paxos group: acceptor, learner, and leader when elected.

    `epoch` stamps its liveness messages (liveness.py): the adapter gives one that no earlier run
    of this replica used and that is above all of theirs, and a new one (`set_epoch`) whenever
    its broker connection changes.
    """

    def __init__(self, node_id: str, members: Sequence[str], site: str, machine: StateMachine, *,
                 durable: DurableState | None = None, options: Options | None = None,
                 rng: random.Random | None = None, now: float = 0.0, epoch: int = 1,
                 admit: Admit | None = None) -> None:
        if node_id not in members:
            raise ValueError(f"replica {node_id!r} is not one of the members {list(members)}")
        if epoch < 1:
            raise ValueError(f"epoch must be >= 1, got {epoch}")
        self.id, self.site = node_id, site
        self.members = tuple(sorted(set(members)))
        self.peers = tuple(n for n in self.members if n != node_id)
        self.quorum = len(self.members) // 2 + 1
        self.opts = options or Options()
        self.rng = rng or random.Random(node_id)
        self.log = event_logger("paxos", cp=node_id, site=site)
        self.folded = FoldedLog(self.log, LOG_EVERY, lambda: self.now)
        durable = durable or DurableState()
        self.acceptor = Acceptor(durable)
        self.learner = Learner(Deduplicated(machine), durable.snapshot_slot, durable.snapshot)
        self.role = FOLLOWER
        self.leader_id: str | None = None
        self.last_heard = -1e18  # when the leader was last proven alive
        self.proof_floor = -1e18
        self.epoch, self.seq = epoch, 0
        self.sent_stamps: dict[tuple[int, int], float] = {}
        self.peer_stamp: dict[str, tuple[int, int]] = {}
        self.gone_epoch: dict[str, int] = {}
        self.prevote = None
        self.max_round = self.acceptor.promised.round
        self.lead: Leadership | None = None  # set while candidate or leader
        self.promises: dict[str, m.Promise] = {}
        self.queue: deque[Command] = deque()  # client commands waiting for a leader's slot
        self.queued: set[tuple[str, int]] = set()  # (client, req) queued or in flight here
        self.waiting: dict[str, int] = {}  # client -> the request this replica answers when applied
        self.peer_commit: dict[str, int] = {}  # how far each peer last said its log is chosen
        self.catchup_next = 0.0
        self.catchup_asked: tuple[str, int] | None = None
        self.incoming = None  # the snapshot being received (snapshots.py)
        self.offers: dict[str, Offer] = {}
        self.current_offer = None
        self.next_heartbeat = 0.0
        self.now = now
        self.election_deadline = now + self._election_timeout()
        self.dropped = 0  # messages refused as malformed or foreign
        self.admit, self.refused = admit, 0  # open requests: their admission check (routing.py), refusals
        self._inbox: deque[m.Message] = deque()
        self._out = Ready()
        self._handlers: dict[type, Callable[[Any], None]] = {  # dispatch by message type, built once
            m.Prepare: self._on_Prepare, m.Promise: self._on_Promise, m.Accept: self._on_Accept,
            m.AcceptReply: self._on_AcceptReply, m.Commit: self._on_Commit, m.Heartbeat: self._on_Heartbeat,
            m.HeartbeatReply: self._on_HeartbeatReply, m.Nack: self._on_Nack, m.PreVote: self._on_PreVote,
            m.PreVoteReply: self._on_PreVoteReply, m.CatchUpRequest: self._on_CatchUpRequest,
            m.CatchUpReply: self._on_CatchUpReply, m.Snapshot: self._on_Snapshot, m.Forward: self._on_Forward,
            m.ClientRequest: self._on_ClientRequest, m.SnapshotRequest: self._on_SnapshotRequest,
        }

    # ----------------------------------------------------------------- public API

    @property
    def leader(self) -> str | None:
        return self.leader_id

    @property
    def ballot(self) -> Ballot:
        return self.lead.ballot if self.lead else self.acceptor.promised

    @property
    def is_leader(self) -> bool:
        return self.role == LEADER

    def step(self, message: m.Message, now: float) -> None:
        """Handle a message from a peer (or a ClientRequest from a client)."""
        self.now = max(self.now, now)
        if message.site != self.site or (message.sender not in self.members
                                         and not isinstance(message, m.ClientRequest)):
            self.dropped += 1
            self.log.warning("paxos.message_dropped", kind=type(message).__name__, sender=message.sender,
                             site=message.site, why="foreign site or unknown sender")
            return
        self._inbox.append(message)
        self._drain()

    def propose(self, client: str, req: int, command: bytes, now: float, keyed: bool = True) -> None:
        """A client's command: batched into the log by the leader, forwarded to it by a follower.

        `keyed`: the site key vouched for it (a member, a tool holding the key); see batch.py."""
        self.now = max(self.now, now)
        self._client_command(Command(client, req, command, keyed))
        self._drain()

    def tick(self, now: float) -> None:
        """Time passed: heartbeats, retransmissions, election timeout, catch-up retries."""
        self.now = now = max(self.now, now)
        if self.role == LEADER:
            assert self.lead is not None
            if self.lead.in_contact(now, self.opts.election_max) + 1 < self.quorum \
                    and now - self.lead.started > self.opts.election_max:
                self.folded.info("paxos.step_down", ballot=self.lead.ballot, why="no quorum in contact")
                self._become_follower(None, now)
            elif now >= self.next_heartbeat:
                self._push_lazy()  # first: the heartbeat's commit hint then sends nobody to catch up
                self._heartbeat()
                stale = self.lead.stale(now, self.opts.heartbeat_interval)
                if stale:
                    self._send_accepts(stale, to=self.peers)
            elif self.lead.lazy_due is not None and now >= self.lead.lazy_due:
                self._push_lazy()
        elif now >= self.election_deadline:
            self._start_prevote(now)
        elif self.role == CANDIDATE and now >= self.next_heartbeat:
            assert self.lead is not None
            self.next_heartbeat = now + self.opts.heartbeat_interval
            for peer in self.peers:
                if peer not in self.promises:  # asked again: for its promise, or for the rest of it
                    got = self.lead.partial.get(peer)
                    start = next_part(got) if got is not None else self.learner.chosen_upto
                    self._send(peer, m.Prepare(self.site, self.id, self.lead.ballot, start))
        elif self.prevote is not None and now >= self.next_heartbeat:
            self._send_prevotes(now)
        self._maybe_catch_up()
        self._drain()

    def ready(self) -> Ready:
        """Everything to do since the last call; the adapter must carry it out in order."""
        self._flush()
        self._drain()
        out, self._out = self._out, Ready()
        out.promised, out.accepted = self.acceptor.take_writes()
        out.deadline = self._deadline()
        out.self_chosen = self.quorum == 1
        return out

    # ----------------------------------------------------------------- dispatch

    def _drain(self) -> None:
        while self._inbox:
            msg = self._inbox.popleft()
            handler = self._handlers.get(type(msg))
            if handler is None:
                self.dropped += 1
                self.log.warning("paxos.message_dropped", kind=type(msg).__name__, why="not for a replica")
            else:
                handler(msg)
            if not self._inbox:
                self._apply()

    def _send(self, to: str, msg: m.Message) -> None:
        if to == self.id:
            self._inbox.append(msg)  # our own acceptor: handled in this same step, persisted with the rest
        else:
            self._out.messages.append((to, msg))

    def _note_ballot(self, b: Ballot) -> None:
        self.max_round = max(self.max_round, b.round)

    # ----------------------------------------------------------------- phase 1

    def _election_timeout(self) -> float:
        return self.rng.uniform(self.opts.election_min, self.opts.election_max)

    def _start_election(self, now: float) -> None:
        """Phase 1 with a new ballot: only after a quorum said yes to our pre-vote (liveness.py)."""
        ballot = Ballot(max(self.max_round, self.acceptor.promised.round) + 1, self.id)
        self.max_round = ballot.round
        self.role, self.leader_id, self.promises, self.prevote = CANDIDATE, None, {}, None
        self.queued = {(c.client, c.req) for c in self.queue}  # in-flight ones are re-proposed or retried
        self.lead = Leadership(ballot, self.learner.chosen_upto)
        self.lead.started = now
        self.election_deadline = now + self._election_timeout()
        self.next_heartbeat = now + self.opts.heartbeat_interval
        self.folded.info("paxos.election", ballot=ballot, from_slot=self.learner.chosen_upto)
        for node in self.members:
            self._send(node, m.Prepare(self.site, self.id, ballot, self.learner.chosen_upto))

    def _on_Prepare(self, p: m.Prepare) -> None:  # noqa: N802
        self._note_ballot(p.ballot)
        before = self.acceptor.promised
        if p.sender != self.id and p.ballot > before and p.sender != self.leader_id and self._leader_alive():
            return  # stickiness: our leader is alive; a Nack would only invite a higher round
        if not self.acceptor.promise(p.ballot):
            self._send(p.sender, m.Nack(self.site, self.id, p.ballot, self.acceptor.promised))
            return
        if p.sender != self.id and p.ballot > before:  # a new promise (a replayed Prepare is not one)
            if self.role != FOLLOWER and self.lead is not None and p.ballot > self.lead.ballot:
                self._become_follower(None, self.now)
            self.prevote = None
            self.election_deadline = self.now + self._election_timeout()  # let the candidate finish
        # what we accepted from there up, as much as fits one message: the candidate asks for the rest
        accepted = self.acceptor.entries_from(max(p.from_slot, self.acceptor.log_start))
        first = tuple(next(value_groups(accepted, self.opts.message_budget, accepted_size), ()))
        self._send(p.sender, m.Promise(self.site, self.id, p.ballot, first, self.learner.chosen_upto,
                                       self.acceptor.log_start, *self._stamp(), p.from_slot,
                                       int(len(first) < len(accepted))))

    def _on_Promise(self, p: m.Promise) -> None:  # noqa: N802
        self._heard(p.sender, p.epoch, p.seq)
        self._hint(p.sender, p.chosen_upto)
        if self.lead is None or p.ballot != self.lead.ballot or p.sender in self.promises:
            return
        if self.role == LEADER:  # a promise after we won: a heartbeat at once, echoing its stamp (liveness.py)
            self.promises[p.sender] = p
            self.lead.acked_at[p.sender] = self.now
            self._heartbeat(to=(p.sender,))
            return
        if p.sender not in self.lead.partial and p.from_slot > self.learner.chosen_upto:
            return  # not from our commit point: it could miss a slot we need
        got = gather(self.lead.partial.get(p.sender), p)
        if got is None:
            return  # not the part we wait for: we ask again at the next heartbeat interval
        if got.more:  # a value it accepted may be missing: never decide on a partial promise, ask for the rest
            self.lead.partial[p.sender] = got
            self._send(p.sender, m.Prepare(self.site, self.id, self.lead.ballot, next_part(got)))
            return
        self.lead.partial.pop(p.sender, None)
        self.promises[p.sender] = got
        if len(self.promises) >= self.quorum:
            self._become_leader()

    def _become_leader(self) -> None:
        assert self.lead is not None
        lower = max([self.learner.chosen_upto, *(p.log_start for p in self.promises.values())])
        entries, next_slot = recover(self.promises.values(), lower, self.learner.chosen)
        self.role, self.leader_id = LEADER, self.id
        self.lead.next_slot = self.lead.term_start = max(next_slot, lower)
        self.lead.started = self.now
        for peer in self.promises:
            if peer != self.id:
                self.lead.acked_at[peer] = self.now
        self.log.info("paxos.leader", ballot=self.lead.ballot, lower=lower, reproposed=len(entries),
                      next_slot=self.lead.next_slot)
        self._quorum_regained()
        self._heartbeat()  # announce at once
        for i in range(0, len(entries), self.opts.catchup_batch):
            self._send_accepts(self.lead.propose(entries[i:i + self.opts.catchup_batch], self.now),
                               to=self.members)

    def _become_follower(self, leader: str | None, now: float) -> None:
        """Give up leading or running for it. Not a proof that `leader` is alive (liveness.py)."""
        if self.role != FOLLOWER:
            self.queued = {(c.client, c.req) for c in self.queue}
        self.role, self.lead, self.promises, self.prevote = FOLLOWER, None, {}, None
        self.leader_id = leader
        self.election_deadline = now + self._election_timeout()
        if leader is not None:
            self._forward_queue()

    def _on_Nack(self, n: m.Nack) -> None:  # noqa: N802
        self._note_ballot(n.promised)
        if self.lead is None or n.ballot != self.lead.ballot:
            return
        if self.role == LEADER:
            self.folded.info("paxos.preempted", ballot=n.ballot, by=n.promised, peer=n.sender)
            # Our followers still answer yes to us, so a pre-vote wins at once and phase 1 follows with
            # a higher ballot; if they follow a newer leader (we were paused), they say no and we follow it.
            self._start_prevote(self.now)
        else:
            self._become_follower(None, self.now)  # back off a random time: avoids duelling candidates

    # ----------------------------------------------------------------- phase 2

    def _send_accepts(self, entries: list[m.Entry], to: Sequence[str]) -> None:
        """Accepts for `entries`, in as many messages as their size needs (sizes.py)."""
        if not entries or self.lead is None:
            return
        groups = [entries] if len(entries) == 1 else value_groups(entries, self.opts.message_budget, entry_size)
        for group in groups:
            msg = m.Accept(self.site, self.id, self.lead.ballot, tuple(group), self.learner.chosen_upto)
            for node in to:
                self._send(node, msg)

    def _flush(self) -> None:
        if self.role == LEADER and self.lead is not None and self.queue:
            batches = self.lead.next_batches(self.queue, self.opts.max_batch, self.opts.max_inflight, self.now)
            if batches:
                self.lead.fast = self._fast_followers()
                self._send_accepts(self.lead.propose(batches, self.now), to=(self.id, *self.lead.fast))
                self._want_push()

    def _on_Accept(self, a: m.Accept) -> None:  # noqa: N802
        self._note_ballot(a.ballot)
        entries = a.entries
        if any(len(e.value) > MAX_SLOT_VALUE for e in entries):  # a value no Promise could carry: never accepted
            entries = tuple(e for e in entries if len(e.value) <= MAX_SLOT_VALUE)
            self.dropped += 1
            self.folded.warning("paxos.value_refused", peer=a.sender, why=f"a slot value over {MAX_SLOT_VALUE} bytes")
        slots = self.acceptor.accept(a.ballot, entries)
        if slots is None:
            self._send(a.sender, m.Nack(self.site, self.id, a.ballot, self.acceptor.promised))
            return
        self._follow(a.sender, a.ballot, None)
        self._send(a.sender, m.AcceptReply(self.site, self.id, a.ballot, tuple(slots), self.learner.chosen_upto))
        self._hint(a.sender, a.commit)

    def _on_AcceptReply(self, r: m.AcceptReply) -> None:  # noqa: N802
        self._hint(r.sender, r.chosen_upto)
        if self.role != LEADER or self.lead is None or r.ballot != self.lead.ballot:
            return
        chosen = self.lead.ack(r.sender, r.slots, self.quorum)
        if chosen:
            for e in chosen:
                self.learner.learn(e.slot, e.value)
            commit = m.Commit(self.site, self.id, self.lead.ballot, tuple(e.slot for e in chosen))
            for peer in self.lead.fast or self.peers:  # lazy followers learn them from the next push
                self._send(peer, commit)
            self._want_push()

    def _on_Commit(self, c: m.Commit) -> None:  # noqa: N802
        # Safe whatever we promised since: the leader of c.ballot proposed one value per slot, and a
        # majority accepted it, so if we accepted that slot under c.ballot we hold the chosen value.
        for slot in c.slots:
            a = self.acceptor.accepted.get(slot)
            if a is not None and a.ballot == c.ballot:
                self._learned(slot, a.value)
            else:
                self._hint(c.sender, slot + 1)
        if c.ballot >= self.acceptor.promised:
            self._follow(c.sender, c.ballot, None)

    def _deadline(self) -> float:
        if self.role == LEADER:
            deadline = self.next_heartbeat
            if self.lead is not None and self.lead.lazy_due is not None:
                deadline = min(deadline, self.lead.lazy_due)
        elif self.role == CANDIDATE or self.prevote is not None:
            deadline = min(self.election_deadline, self.next_heartbeat)
        else:
            deadline = self.election_deadline
        if self._catchup_source() is not None or self.incoming is not None:
            deadline = min(deadline, max(self.catchup_next, self.now))
        return deadline


__all__ = ["Replica", "Ready", "ZERO_BALLOT", "FOLLOWER", "CANDIDATE", "LEADER"]
