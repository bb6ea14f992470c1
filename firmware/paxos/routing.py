"""Client requests: queued at the leader, forwarded to it by a follower, answered once applied."""

from __future__ import annotations

from firmware.paxos import messages as m
from firmware.paxos.batch import Command
from firmware.paxos.leadership import FOLLOWER
from firmware.paxos.replica_state import ReplicaState
from firmware.paxos.sizes import MAX_CLIENT_ID, MAX_COMMAND


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

