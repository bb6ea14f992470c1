"""The bridge's proposals waiting for their results, and whether the site answers at all.

A proposal is named by a `Tag`; the plumbing hands the result back with it. One that gets no
result within the timeout is *overdue*: the site counts as unreachable until some result comes.
An overdue proposal is still waited for (a result that comes late is still the truth about it)
until `keep` has passed; then it is forgotten and a result for it is dropped. Times are the engine
clock's (settings.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evnet.logs import EventLogger
from firmware.chargepoint.outputs import Propose, Tag
from firmware.site import member_command


@dataclass
class Pending:
    tag: Tag
    sent: float            # when it was proposed (a renewal's lease counts from here)
    overdue: bool = False


class Outbox:
    def __init__(self, timeout: float, keep: float, log: EventLogger) -> None:
        self.timeout = timeout
        self.keep = max(keep, timeout)
        self.log = log
        self.pending: dict[Tag, Pending] = {}
        self.reachable = False   # nothing heard yet: as good as unreachable (no quorum known)
        self._n = 0

    def propose(self, op: str, args: dict[str, Any], now: float) -> Propose:
        self._n += 1
        tag = Tag(op, self._n)
        self.pending[tag] = Pending(tag, now)
        return Propose(tag, member_command(op, args))

    def answer(self, tag: Tag, now: float) -> Pending | None:
        """The proposal `tag` has its result; None if it is not one this bridge still waits for."""
        pending = self.pending.pop(tag, None)
        if pending is not None and not self.reachable:
            self.reachable = True
            self.log.info("bridge.site_reachable", after=str(tag))
        return pending

    def overdue(self, now: float) -> list[Pending]:
        """Proposals whose result is overdue since this call last asked (each once); forgets the oldest."""
        late = [p for p in self.pending.values() if not p.overdue and now >= p.sent + self.timeout]
        for p in late:
            p.overdue = True
        if late and self.reachable:
            self.reachable = False
            self.log.warning("bridge.site_unreachable", waiting=str(late[0].tag), timeout=self.timeout)
        for tag in [t for t, p in self.pending.items() if now >= p.sent + self.keep]:
            del self.pending[tag]
        return late

    def next_deadline(self) -> float | None:
        moments = [p.sent + (self.keep if p.overdue else self.timeout) for p in self.pending.values()]
        return min(moments, default=None)
