"""What must hold after every simulated run, whatever the faults.

Safety: the acceptor's promise (what it writes never goes below a promise it made durable, so
never below one it announced), agreement (one value per slot, at every replica, across restarts), validity (only
commands a client issued), exactly-once (a request is applied fresh in one slot only),
durability (every slot ever applied is applied again by the surviving replicas, which end with
the same state), linearizability of the clients' history. Liveness: once the network healed
with a majority up, every request returned within the bounded time the run allowed.
"""

from __future__ import annotations

import math
from typing import Any

from firmware.paxos.core.batch import BatchError, decode_batch
from firmware.paxos.core.types import ZERO_BALLOT, Accepted, Ballot

try:  # the storage engineer's WGL checker; until it lands, runs say it was not checked
    from firmware.paxos.sim.linearizability import check_kv_history
except ImportError:  # pragma: no cover
    check_kv_history = None


class Observer:
    """Collects what every replica applies, checking agreement, validity and exactly-once as it goes."""

    def __init__(self, issued: set[tuple[str, int, bytes]]) -> None:
        self.issued = issued
        self.values: dict[int, bytes] = {}
        self.fresh_slot: dict[tuple[str, int], int] = {}
        self.violations: list[str] = []
        self.max_applied = 0
        self.promised: dict[str, Ballot] = {}  # per replica, the highest promise its disk ever synced

    def on_synced(self, node: str, promised: Ballot) -> None:
        self.promised[node] = max(self.promised.get(node, ZERO_BALLOT), promised)

    def on_write(self, node: str, promised: Ballot | None, accepted: list[Accepted]) -> None:
        """A replica writes acceptor state: it must keep every promise it made durable."""
        floor = self.promised.get(node, ZERO_BALLOT)
        if promised is not None and promised < floor:
            self.violations.append(f"promise: {node} wrote promise {tuple(promised)} after promising {tuple(floor)}")
        for a in accepted:
            if a.ballot < floor:
                self.violations.append(f"promise: {node} accepted slot {a.slot} under {tuple(a.ballot)} after "
                                       f"promising {tuple(floor)}")
                break

    def on_apply(self, node: str, slot: int, value: bytes) -> None:
        self.max_applied = max(self.max_applied, slot + 1)
        known = self.values.get(slot)
        if known is None:
            self.values[slot] = value
            self._check_valid(node, slot, value)
        elif known != value:
            self.violations.append(f"agreement: {node} applied {_show(value)} in slot {slot}, "
                                   f"another replica applied {_show(known)}")

    def _check_valid(self, node: str, slot: int, value: bytes) -> None:
        try:
            commands = decode_batch(value)[1]
        except BatchError as e:
            self.violations.append(f"validity: slot {slot} at {node} holds a malformed batch: {e}")
            return
        for c in commands:
            if (c.client, c.req, c.command) not in self.issued:
                self.violations.append(f"validity: slot {slot} holds a command nobody issued: {c}")

    def on_fresh(self, node: str, slot: int, client: str, req: int) -> None:
        first = self.fresh_slot.setdefault((client, req), slot)
        if first != slot:
            self.violations.append(f"exactly-once: {client} request {req} applied in slot {first} and "
                                   f"again in slot {slot} (at {node})")


def _show(value: bytes) -> str:
    try:
        return str([(c.client, c.req, c.command.decode()) for c in decode_batch(value)[1]] or "no-op")
    except (BatchError, UnicodeDecodeError):
        return repr(value[:60])


def check_end(obs: Observer, finals: dict[str, tuple[int, Any]], history: list[dict[str, Any]],
              check_liveness: bool) -> list[str]:
    """The checks made once the run is over. `finals`: up replica -> (applied, state machine data)."""
    out = obs.violations[:10] + ([f"... and {len(obs.violations) - 10} more"] if len(obs.violations) > 10 else [])
    applied = {n: a for n, (a, _) in finals.items()}
    if finals and min(applied.values()) < obs.max_applied:
        out.append(f"durability: slots up to {obs.max_applied} were applied, but at the end the replicas "
                   f"have applied {applied}")
    states = {repr(sorted(d.items())) for _, d in finals.values()}
    if len(states) > 1:
        out.append(f"convergence: the replicas ended with {len(states)} different states (applied {applied})")
    if check_kv_history is None:
        return out
    result = check_kv_history([{k: v for k, v in op.items() if k != "req"} for op in history])
    if not result.ok:
        out.append(f"linearizability: key {result.key}: {result.explanation}")
    if check_liveness:
        pending = [op for op in history if math.isinf(op["ret"])]
        if pending:
            op = pending[0]
            out.append(f"liveness: {len(pending)} request(s) never answered after the heal, first: {op['client']} "
                       f"req {op['req']} {op['op']} {op['key']} called at {op['call']:.3f}")
    return out
