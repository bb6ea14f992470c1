"""Client requests: queued at the leader, forwarded to it by a follower, answered once applied.

An open request (`keyed` false: a driver's or an operator's, vouched for only by the signature in
its command) must pass the caller's admission check (`Admit`) before it may take a place in the
log: a forged or replayed one then costs the site one signature check, not a slot. The leader
checks (once its state holds every slot before its term). A refusal is
answered at once with the check's error (not through the log); without a check, open requests are
not taken at all (a key-value site has no signatures to check).
"""

from __future__ import annotations

from collections.abc import Callable

from firmware.paxos.core import messages as m
from firmware.paxos.core.batch import Command
from firmware.paxos.core.leadership import FOLLOWER, LEADER
from firmware.paxos.core.replica_state import ReplicaState
from firmware.paxos.core.sizes import MAX_CLIENT_ID, MAX_COMMAND

Admit = Callable[[str, bytes], "str | None"]
"""`admit(client, command)`: None to let an open request in, else the refusal (the machine's error JSON)."""


class ClientRouting(ReplicaState):
    def _client_command(self, c: Command) -> None:
        if len(c.command) > MAX_COMMAND or len(c.client) > MAX_CLIENT_ID:  # a slot's value must fit a message
            self.dropped += 1
            self.folded.warning("paxos.command_refused", client=c.client[:MAX_CLIENT_ID], req=c.req,
                                size=len(c.command), why=f"a command over {MAX_COMMAND} bytes or a client id over "
                                                         f"{MAX_CLIENT_ID} characters")
            return
        cached = self.learner.machine.cached(c.client, c.req)
        if cached is not None:  # a retry of a request already applied: the first answer, straight away
            self._out.replies.append(m.ClientReply(self.site, self.id, c.client, c.req, cached))
            return
        if self.learner.machine.is_stale(c.client, c.req):
            self.log.info("paxos.stale_request", client=c.client, req=c.req)
            return
        if not c.keyed and not self._admitted(c):
            return
        key = (c.client, c.req)
        if self.role == FOLLOWER and self.leader_id is not None:
            self._send(self.leader_id, m.Forward(self.site, self.id, c.client, c.req, c.command, c.keyed))
            return
        # the leader, a candidate, or a follower that knows no leader yet: queue it (forwarded or
        # proposed once there is a leader), and answer it when applied
        if key in self.queued or len(self.queue) >= self.opts.max_pending:
            return
        self.waiting[c.client] = c.req  # one request outstanding per client
        self.queued.add(key)
        self.queue.append(c)

    def _admitted(self, c: Command) -> bool:
        """Whether an open request may go on (its retries of an applied request were answered above).

        Only a leader whose machine has applied every slot before its term judges one: what a client
        was answered is then in its state (a principal just added, a seq just used). A follower
        passes it on, and a leader still applying its predecessors' slots lets it in: the machine
        checks it again when it applies it."""
        if self.admit is None:
            refusal: str | None = "open requests are not taken here"
        elif self.role == LEADER and self.lead is not None and self.learner.applied >= self.lead.term_start:
            refusal = self.admit(c.client, c.command)
        else:
            return True
        if refusal is None:
            return True
        self.refused += 1
        if self.admit is None:
            self.folded.warning("paxos.open_request_dropped", client=c.client, req=c.req, why=refusal)
            return False
        self.folded.warning("paxos.open_request_refused", client=c.client, req=c.req,
                            refusal=refusal[:200])
        self._out.replies.append(m.ClientReply(self.site, self.id, c.client, c.req, refusal.encode()))
        return False

    def _forward_queue(self) -> None:
        if self.leader_id is None or self.leader_id == self.id:
            return
        while self.queue:
            c = self.queue.popleft()
            self.queued.discard((c.client, c.req))
            if self.waiting.get(c.client) == c.req:
                del self.waiting[c.client]  # the leader answers it
            self._send(self.leader_id, m.Forward(self.site, self.id, c.client, c.req, c.command, c.keyed))

    def _on_Forward(self, f: m.Forward) -> None:  # noqa: N802
        if self.role == FOLLOWER:
            return  # never pass a request on twice (no forwarding loops): the client retries
        self._client_command(Command(f.client, f.req, f.command, f.keyed))

    def _on_ClientRequest(self, r: m.ClientRequest) -> None:  # noqa: N802
        self._client_command(Command(r.sender, r.req, r.command, r.keyed))

