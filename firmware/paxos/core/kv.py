"""The key-value register machine the Paxos tests replicate (the WGL checker models exactly this).

Commands are JSON objects, results JSON values:
    {"op": "put", "key": k, "value": v}            -> "ok"
    {"op": "get", "key": k}                        -> the value, or null
    {"op": "cas", "key": k, "expect": e, "value": v} -> true if the value was e (null: absent) and is now v
A malformed command changes nothing and answers {"error": "..."}: the log must never stall on one.
"""

from __future__ import annotations

import json
from typing import Any

from firmware.paxos.core.canonical import dumps as _dumps
from firmware.paxos.core.context import Context

OK = _dumps("ok")


def put(key: str, value: Any) -> bytes:
    return _dumps({"op": "put", "key": key, "value": value})


def get(key: str) -> bytes:
    return _dumps({"op": "get", "key": key})


def cas(key: str, expect: Any, value: Any) -> bytes:
    return _dumps({"op": "cas", "key": key, "expect": expect, "value": value})


class KVMachine:
    """A dict of registers; deterministic, so every replica computes the same results."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def apply(self, command: bytes, ctx: Context) -> bytes:
        """`ctx` is not used: a register has no notion of time or of who writes it."""
        try:
            cmd = json.loads(command)
            op, key = cmd["op"], cmd["key"]
            if not isinstance(key, str):
                raise TypeError(f"key must be a string, got {type(key).__name__}")
            if op == "put":
                self.data[key] = cmd["value"]
                return OK
            if op == "get":
                return _dumps(self.data.get(key))
            if op == "cas":
                if self.data.get(key) != cmd["expect"]:
                    return _dumps(False)
                self.data[key] = cmd["value"]
                return _dumps(True)
            raise ValueError(f"unknown op {op!r}")
        except (ValueError, KeyError, TypeError) as e:
            return _dumps({"error": f"{type(e).__name__}: {e}"})

    def forgotten(self) -> tuple[str, ...]:
        return ()

    def snapshot(self) -> bytes:
        return _dumps(self.data)

    def restore(self, blob: bytes) -> None:
        self.data = json.loads(blob) if blob else {}
