"""Simulated clients: one request at a time, retried with the same request id until answered.

Each records its operations for the linearizability checker: `call` when first sent, `ret` when
the first answer arrives (math.inf if none ever does: it may or may not have taken effect).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from firmware.paxos.core import kv


class SimClient:
    def __init__(self, client_id: str, rng: random.Random, keys: list[str], replicas: list[str],
                 issued: set[tuple[str, int, bytes]]) -> None:
        self.id = client_id
        self.rng = rng
        self.keys = keys
        self.replicas = replicas
        self.req = 0
        self.current: dict[str, Any] | None = None
        self.command = b""
        self.history: list[dict[str, Any]] = []
        self.issued = issued  # every command any client ever sent: the validity check
        self.counter = 0

    def next_op(self, now: float) -> bytes:
        """Start a new operation; returns its command."""
        self.req += 1
        key = self.rng.choice(self.keys)
        r = self.rng.random()
        if r < 0.4:
            self.counter += 1
            value = f"{self.id}.{self.counter}"
            op = {"op": "put", "key": key, "value": value}
            command = kv.put(key, value)
        elif r < 0.7:
            op = {"op": "get", "key": key}
            command = kv.get(key)
        else:
            self.counter += 1
            expect = self.rng.choice([None, *[f"{c}.{n}" for c, n in self._seen(key)]])
            value = f"{self.id}.{self.counter}"
            op = {"op": "cas", "key": key, "expect": expect, "value": value}
            command = kv.cas(key, expect, value)
        self.current = {"client": self.id, **op, "call": now, "ret": math.inf, "result": None, "req": self.req}
        self.history.append(self.current)
        self.command = command
        self.issued.add((self.id, self.req, command))
        return command

    def _seen(self, key: str) -> list[tuple[str, int]]:
        """Values this client saw or wrote for `key`, so a cas sometimes succeeds."""
        out = []
        for op in self.history[-8:]:
            if op["key"] != key:
                continue
            v = op.get("result") if op["op"] == "get" else op.get("value")
            if isinstance(v, str) and "." in v:
                c, n = v.rsplit(".", 1)
                out.append((c, int(n)))
        return out

    def answered(self, req: int, result: bytes, now: float) -> bool:
        """A reply arrived; True if it completes the current operation."""
        if self.current is None or req != self.req:
            return False
        self.current["ret"] = now
        self.current["result"] = json.loads(result) if result else None
        self.current = None
        return True

    def target(self) -> str:
        return self.rng.choice(self.replicas)
