"""Is a recorded client history of the key-value machine linearizable? (Wing & Gong, Lowe: WGL.)

The checker porcupine uses, in Python: walk the history's call/return events in time
order, linearize a pending call, and backtrack when a return is reached whose operation was
not linearized yet; a cache of (set of linearized ops, model state) cuts the search. Every
kv operation touches one key, so the history is split per key and each part checked alone
(a history is linearizable iff each key's is: linearizability is local).

An operation is a mapping with `client`, `op` ('put' | 'get' | 'cas'), `key`, `value`
(put: the value written; cas: the new value), `expect` (cas: the value it must find), `call`
and `ret` (times on one clock), and `result` (get: the value read, None for a missing key;
cas: True if it swapped; put: ignored). `ret = math.inf` means the client never heard back:
the operation may or may not have taken effect, and its result is unknown. An operation
known to have failed without effect must be left out of the history.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OPS = ("put", "get", "cas")


@dataclass(frozen=True)
class Result:
    ok: bool
    key: str | None = None  # the first key found not linearizable
    explanation: str = ""


def _freeze(value: Any) -> Hashable:
    """A hashable, comparable stand-in for a JSON value (dicts and lists are not hashable)."""
    if isinstance(value, (dict, list)):
        return ("json", json.dumps(value, sort_keys=True))
    return value


def _describe(op: Mapping[str, Any]) -> str:
    kind = op["op"]
    args = {"put": f"{op.get('value')!r}", "get": "", "cas": f"{op.get('expect')!r} -> {op.get('value')!r}"}[kind]
    out = "?" if math.isinf(op["ret"]) else repr(op.get("result"))
    return f"{op.get('client')}: {kind}({args}) -> {out} [{op['call']:.6g}, {op['ret']:.6g}]"


def _step(state: Hashable, op: Mapping[str, Any], pending: bool) -> tuple[bool, Hashable]:
    """The kv register as a model: may `op` happen in `state`, and what state follows?"""
    kind = op["op"]
    if kind == "put":
        return True, _freeze(op.get("value"))
    if kind == "get":
        return pending or _freeze(op.get("result")) == state, state
    swapped = state == _freeze(op.get("expect"))
    if not pending and bool(op.get("result")) != swapped:
        return False, state
    return True, _freeze(op.get("value")) if swapped else state


def _read_only_ok(state: Hashable, op: Mapping[str, Any]) -> bool:
    """Does answered `op` leave `state` unchanged and agree with it?"""
    if op["op"] == "get":
        return _freeze(op.get("result")) == state
    return op["op"] == "cas" and not op.get("result") and state != _freeze(op.get("expect"))


def _check_key(ops: list[Mapping[str, Any]], initial: Hashable) -> str | None:
    """None if `ops` (all on one key) linearize from `initial`, else why not."""
    n = len(ops)
    pending = [math.isinf(o["ret"]) for o in ops]
    # Events: (time, kind, op index); calls sort before returns at the same time, so ops
    # that touch in time count as concurrent (the lenient reading, as porcupine's).
    events = sorted([(o["call"], 0, i) for i, o in enumerate(ops)] + [(o["ret"], 1, i) for i, o in enumerate(ops)])
    # A doubly linked list over event positions 1..2n, with 0 as the head sentinel.
    size = 2 * n + 1
    nxt = list(range(1, size + 1))
    nxt[-1] = -1
    prv = list(range(-1, size - 1))
    is_call = [False] * size
    op_of = [0] * size
    ret_pos = [0] * n
    for pos, (_, kind, i) in enumerate(events, start=1):
        is_call[pos], op_of[pos] = kind == 0, i
        if kind == 1:
            ret_pos[i] = pos

    def lift(p: int) -> None:
        for q in (p, ret_pos[op_of[p]]):
            nxt[prv[q]] = nxt[q]
            if nxt[q] != -1:
                prv[nxt[q]] = prv[q]

    def unlift(p: int) -> None:
        for q in (ret_pos[op_of[p]], p):
            nxt[prv[q]] = q
            if nxt[q] != -1:
                prv[nxt[q]] = q

    done_needed = n - sum(pending)  # ops with a known return still to linearize
    state, linearized = initial, 0
    cache: set[tuple[int, Hashable]] = set()
    stack: list[tuple[int, Hashable, bool]] = []  # (call entry, state before it, taken greedily)
    best: tuple[int, Hashable, int] = (0, initial, 0)  # depth, state, linearized set
    fresh = True  # a configuration not yet scanned for a read-only op to take greedily
    entry = nxt[0]
    while done_needed > 0:
        if fresh:
            # Partial-order reduction: an answered op that leaves the state as it is (a get
            # that reads it, a cas that fails) and may come next can always come next: if
            # any order works from here, one that takes it now works too. So take it and
            # never try its siblings, which cuts the search from 2^w to one path per window.
            fresh = False
            e = nxt[0]
            while e != -1 and is_call[e]:
                i = op_of[e]
                if not pending[i] and _read_only_ok(state, ops[i]):
                    break
                e = nxt[e]
            if e != -1 and is_call[e]:
                new_set = linearized | (1 << i)
                if (new_set, state) in cache:
                    entry = -2  # this configuration failed before: backtrack
                else:
                    cache.add((new_set, state))
                    stack.append((e, state, True))
                    linearized = new_set
                    done_needed -= 1
                    lift(e)
                    entry, fresh = nxt[0], True
                    if len(stack) > best[0]:
                        best = (len(stack), state, linearized)
                    continue
        if entry == -1:
            return "internal error: ran off the event list"  # cannot happen: a return always ends the list
        if entry != -2 and is_call[entry]:
            i = op_of[entry]
            ok, new_state = _step(state, ops[i], pending[i])
            if ok:
                new_set = linearized | (1 << i)
                if (new_set, new_state) not in cache:
                    cache.add((new_set, new_state))
                    stack.append((entry, state, False))
                    state, linearized = new_state, new_set
                    if not pending[i]:
                        done_needed -= 1
                    if len(stack) > best[0]:
                        best = (len(stack), state, linearized)
                    lift(entry)
                    entry, fresh = nxt[0], True
                    continue
            entry = nxt[entry]
            continue
        # A return whose op is not linearized (or a dead configuration): undo the last
        # choice, and keep undoing past greedy ones, which had no alternative worth trying.
        while True:
            if not stack:
                return _explain(ops, best, pending)
            entry, state, greedy = stack.pop()
            j = op_of[entry]
            linearized &= ~(1 << j)
            if not pending[j]:
                done_needed += 1
            unlift(entry)
            if not greedy:
                break
        entry = nxt[entry]
    return None


def _explain(ops: list[Mapping[str, Any]], best: tuple[int, Hashable, int], pending: list[bool]) -> str:
    depth, state, linearized = best
    rest = [i for i in range(len(ops)) if not linearized >> i & 1]
    first_ret = min(ops[i]["ret"] for i in rest if not pending[i])
    # The ops that could have come next at the deepest point: called before the first open return.
    blocked = [i for i in rest if ops[i]["call"] <= first_ret]
    shown = "; ".join(_describe(ops[i]) for i in blocked[:6])
    return (f"no linearization: at best {depth} of {len(ops)} ops linearize, reaching value {state!r}; "
            f"none of these can come next: {shown}")


def check_kv_history(ops: Iterable[Mapping[str, Any]], initial: Mapping[str, Any] | None = None) -> Result:
    """Check a whole kv history, key by key; `initial` holds the keys' values before it (default: none)."""
    by_key: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for op in ops:
        if op.get("op") not in OPS:
            raise ValueError(f"unknown operation {op.get('op')!r} in history entry {dict(op)!r}")
        if not op["ret"] >= op["call"]:
            raise ValueError(f"operation returns before it is called: {dict(op)!r}")
        by_key[str(op["key"])].append(op)
    initial = initial or {}
    for key in sorted(by_key):
        why = _check_key(by_key[key], _freeze(initial.get(key)))
        if why is not None:
            return Result(False, key, f"key {key!r}: {why}")
    return Result(True, None, f"{sum(len(v) for v in by_key.values())} ops on {len(by_key)} keys linearizable")
