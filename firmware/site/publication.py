"""When the leader publishes the site's state on `evnet/{site}/state` (retained), and what: pure, for `evnet cp`.

The payload is `{"v": 1, "slot": N, ...summary}` (summary.py: no keys, no sequence numbers): `slot`
is the log position the state is as of. It goes out when the summary changed (the slot alone moves
with every renewal: that is not a change), at most once every `min_interval` s, and the last change
is always published: one held back waits until `due()`, and `poll` gives it then. A new leader
(`reset`) publishes its first state at once: the retained one may be its predecessor's.

    pub = StatePublisher(min_interval=1.0)
    payload = pub.offer(machine.summary(), slot, now)   # after applying; publish if not None
    payload = pub.poll(now)                             # when `pub.due()` has come
"""

from __future__ import annotations

from typing import Any

from firmware.paxos.core.canonical import dumps

VERSION = 1


class StatePublisher:
    def __init__(self, min_interval: float = 1.0) -> None:
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0 s, got {min_interval}")
        self.min_interval = min_interval
        self._published: bytes | None = None  # the summary last published (canonical JSON)
        self._sent_at: float | None = None
        self._held: tuple[bytes, bytes] | None = None  # a change not yet published: (summary, payload)

    def offer(self, summary: dict[str, Any], slot: int, now: float) -> bytes | None:
        """The payload to publish now for the state after `slot`, or None (unchanged, or held back)."""
        body = dumps(summary)
        if body == self._published:
            self._held = None
            return None
        self._held = (body, dumps({**summary, "v": VERSION, "slot": slot}))
        return self.poll(now)

    def poll(self, now: float) -> bytes | None:
        """The change held back, once `min_interval` has passed since the last publication."""
        if self._held is None or (self._sent_at is not None and now < self._sent_at + self.min_interval):
            return None
        body, payload = self._held
        self._held, self._published, self._sent_at = None, body, now
        return payload

    def due(self) -> float | None:
        """When `poll` will give the change held back (None: nothing held)."""
        if self._held is None:
            return None
        return self._sent_at + self.min_interval if self._sent_at is not None else 0.0

    def reset(self) -> None:
        """This replica became leader: publish its state at the next offer, whatever was published before."""
        self._published, self._sent_at = None, None
