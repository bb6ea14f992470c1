"""The live stream of the web dashboard: what changed in the view, batched, serialised once for every reader.

Every `interval` s (0.1 by default) the hub asks the view what changed since its last batch: each charge
point that changed appears once with its latest state, however many messages it got (coalesced per
charge point), and the batch is one server-sent event, written once as bytes and handed to every open
stream. A stream that falls behind the last `keep` batches (a slow browser) starts again from a full
snapshot instead of growing a queue. Server-sent events rather than a WebSocket: the stream goes one
way (controls are plain POSTs), the browser's EventSource reconnects by itself, and it is plain HTTP
that the standard library serves with no dependency and no build step.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any

from central_broker.view import View


def sse(event: str, data: dict[str, Any], ident: int | None = None) -> bytes:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class StreamHub:
    def __init__(self, view: View, lock: threading.Condition | threading.Lock, interval: float = 0.1,
                 keep: int = 50) -> None:
        self.view, self.lock, self.interval = view, lock, interval
        # (version it starts from, version after it, the event's bytes): contiguous, each starts where the last ended
        self.batches: deque[tuple[int, int, bytes]] = deque(maxlen=keep)
        self.cursor = 0
        self.ready = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="central-stream", daemon=True)

    def start(self) -> StreamHub:
        with self.lock:
            self.cursor = self.view.version
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self.ready:
            self.ready.notify_all()
        self._thread.join(5)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self) -> None:
        """One batch, if anything changed since the last one."""
        with self.lock:
            if self.view.version == self.cursor:
                return
            start = self.cursor
            changes = self.view.changed_since(start)
            self.cursor = changes["version"]
        frame = sse("changes", changes, changes["version"])
        with self.ready:
            self.batches.append((start, changes["version"], frame))
            self.ready.notify_all()

    def snapshot(self) -> tuple[int, bytes]:
        """The whole view as one event, and the hub's version it is as of (later batches follow it)."""
        with self.lock, self.ready:
            snap = self.view.snapshot()
            # batches up to the hub's cursor are already in the snapshot; later changes come as batches
            return self.cursor, sse("snapshot", snap, snap["version"])

    def after(self, version: int, timeout: float) -> tuple[list[bytes], int] | None:
        """The batches after `version` (waiting up to `timeout` s for one); None: the reader fell too far
        behind (or the hub stopped) and must start again from a snapshot."""
        deadline = time.monotonic() + timeout
        with self.ready:
            while not self._stop.is_set():
                if self.batches and version < self.batches[0][0]:
                    return None  # the batches it missed are gone
                new = [(end, f) for start, end, f in self.batches if end > version]
                if new:
                    return [f for _, f in new], new[-1][0]
                left = deadline - time.monotonic()
                if left <= 0:
                    return [], version
                self.ready.wait(left)
        return None
