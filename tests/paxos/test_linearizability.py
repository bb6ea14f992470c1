"""The WGL checker: it accepts what some order explains and rejects what none does."""

from __future__ import annotations

import itertools
import math
import random
import time

import pytest

from firmware.paxos.sim.linearizability import check_kv_history

INF = math.inf


def put(client, key, value, call, ret, result="ok"):
    return {"client": client, "op": "put", "key": key, "value": value, "call": call, "ret": ret, "result": result}


def get(client, key, call, ret, result):
    return {"client": client, "op": "get", "key": key, "call": call, "ret": ret, "result": result}


def cas(client, key, expect, value, call, ret, result):
    return {"client": client, "op": "cas", "key": key, "expect": expect, "value": value, "call": call, "ret": ret,
            "result": result}


def test_an_empty_history_and_a_sequential_one_are_linearizable():
    assert check_kv_history([]).ok
    h = [put("a", "k", 1, 0, 1), get("b", "k", 2, 3, 1), cas("a", "k", 1, 2, 4, 5, True), get("b", "k", 6, 7, 2)]
    assert check_kv_history(h).ok


def test_a_read_of_a_missing_key_returns_none():
    assert check_kv_history([get("a", "k", 0, 1, None)]).ok
    assert not check_kv_history([get("a", "k", 0, 1, "x")]).ok
    assert check_kv_history([get("a", "k", 0, 1, "x")], initial={"k": "x"}).ok


def test_a_stale_read_after_a_completed_write_is_not_linearizable():
    h = [put("a", "k", 1, 0, 1), put("a", "k", 2, 2, 3), get("b", "k", 4, 5, 1)]
    r = check_kv_history(h)
    assert not r.ok and r.key == "k"
    assert "get() -> 1" in r.explanation and "3 ops" in r.explanation


def test_a_lost_write_is_not_linearizable():
    h = [put("a", "k", "x", 0, 1), get("b", "k", 2, 3, None)]
    assert not check_kv_history(h).ok


def test_reads_may_not_go_back_in_time_even_while_a_write_is_in_flight():
    # The write overlaps both reads, so each read alone is fine, but once one read saw the
    # new value a later read may not see the old one.
    h = [put("a", "k", 1, 0, 10), get("b", "k", 1, 2, 1), get("c", "k", 3, 4, None)]
    assert not check_kv_history(h).ok
    h = [put("a", "k", 1, 0, 10), get("b", "k", 1, 2, None), get("c", "k", 3, 4, 1)]
    assert check_kv_history(h).ok


def test_concurrent_writes_may_take_effect_in_either_order():
    h = [put("a", "k", 1, 0, 5), put("b", "k", 2, 1, 6), get("c", "k", 7, 8, 1)]
    assert check_kv_history(h).ok
    h[2] = get("c", "k", 7, 8, 2)
    assert check_kv_history(h).ok
    h[2] = get("c", "k", 7, 8, 3)
    assert not check_kv_history(h).ok


def test_cas_must_agree_with_the_value_it_found():
    assert check_kv_history([put("a", "k", 1, 0, 1), cas("b", "k", 1, 2, 2, 3, True)]).ok
    assert not check_kv_history([put("a", "k", 1, 0, 1), cas("b", "k", 0, 2, 2, 3, True)]).ok
    assert not check_kv_history([put("a", "k", 1, 0, 1), cas("b", "k", 1, 2, 2, 3, False)]).ok
    # Two sequential cas from the same old value cannot both succeed.
    h = [put("a", "k", 0, 0, 1), cas("b", "k", 0, 1, 2, 3, True), cas("c", "k", 0, 2, 4, 5, True)]
    assert not check_kv_history(h).ok
    # ... nor when they overlap: one of them must have found the other's value.
    h = [put("a", "k", 0, 0, 1), cas("b", "k", 0, 1, 2, 6, True), cas("c", "k", 0, 2, 3, 7, True)]
    assert not check_kv_history(h).ok
    h[2] = cas("c", "k", 0, 2, 3, 7, False)
    assert check_kv_history(h).ok


def test_an_op_that_never_returned_may_or_may_not_have_taken_effect():
    lost = put("a", "k", 1, 0, INF, None)
    assert check_kv_history([lost, get("b", "k", 5, 6, 1)]).ok  # it took effect
    assert check_kv_history([lost, get("b", "k", 5, 6, None)]).ok  # it did not (yet)
    # ... but not both, in that order: once seen, it stays.
    assert not check_kv_history([lost, get("b", "k", 5, 6, 1), get("b", "k", 7, 8, None)]).ok
    # An unanswered op cannot take effect before it was called.
    assert not check_kv_history([get("b", "k", 0, 1, 1), put("a", "k", 1, 2, INF, None)]).ok
    # An unanswered cas took effect only if its expectation held.
    h = [put("a", "k", 0, 0, 1), cas("b", "k", 5, 9, 2, INF, None), get("c", "k", 3, 4, 9)]
    assert not check_kv_history(h).ok


def test_keys_are_checked_apart_and_the_failing_key_is_named():
    h = [put("a", "x", 1, 0, 1), put("a", "y", 1, 0, 1), get("b", "x", 2, 3, 1), get("b", "y", 2, 3, 7)]
    r = check_kv_history(h)
    assert (r.ok, r.key) == (False, "y")


def test_json_values_compare_by_content():
    h = [put("a", "k", {"b": [1, 2], "a": 1}, 0, 1), get("b", "k", 2, 3, {"a": 1, "b": [1, 2]})]
    assert check_kv_history(h).ok


def test_malformed_histories_are_refused_with_the_entry():
    with pytest.raises(ValueError, match="unknown operation 'del'"):
        check_kv_history([{"op": "del", "key": "k", "call": 0, "ret": 1}])
    with pytest.raises(ValueError, match="returns before it is called"):
        check_kv_history([get("a", "k", 2, 1, None)])


def register_history(seed: int, n_ops: int, clients: int, keys: int, unanswered: int = 20) -> list[dict]:
    """A linearizable history by construction: each op takes effect at a random instant inside its interval."""
    rng = random.Random(seed)
    ops, effects = [], []
    for c in range(clients):
        t = rng.random()
        for _ in range(n_ops // clients):
            call = t
            point = call + rng.expovariate(1.0)
            ret = point + rng.expovariate(1.0)
            key = f"k{rng.randrange(keys)}"
            kind = rng.choice(("put", "get", "get", "cas"))
            op = {"client": f"c{c}", "op": kind, "key": key, "call": call, "ret": ret,
                  "value": rng.randrange(5), "expect": rng.randrange(5)}
            ops.append(op)
            effects.append((point, op))
            t = ret + rng.expovariate(4.0)
    values: dict[str, int | None] = {}
    for _, op in sorted(effects, key=lambda e: e[0]):
        cur = values.get(op["key"])
        if op["op"] == "put":
            values[op["key"]] = op["value"]
        elif op["op"] == "get":
            op["result"] = cur
        else:
            op["result"] = cur == op["expect"]
            if op["result"]:
                values[op["key"]] = op["value"]
    for op in ops[:: max(1, len(ops) // unanswered)] if unanswered else []:
        if op["op"] != "get":
            op["ret"] = INF  # the client never heard back; the effect happened anyway
    return ops


@pytest.mark.parametrize("seed", range(5))
def test_generated_concurrent_histories_are_linearizable_and_a_corrupted_read_is_caught(seed):
    ops = register_history(seed, 400, clients=6, keys=3)
    assert check_kv_history(ops).ok
    reads = [o for o in ops if o["op"] == "get" and o["result"] is not None]
    reads[len(reads) // 2]["result"] = 99  # a value nobody ever wrote
    assert not check_kv_history(ops).ok


@pytest.mark.parametrize("keys", [1, 8])
def test_thousands_of_concurrent_ops_check_fast(keys):
    ops = register_history(42, 4000, clients=16, keys=keys)
    start = time.perf_counter()
    assert check_kv_history(ops).ok
    assert time.perf_counter() - start < 10  # a generous safety net; it takes well under a second


def brute_force(ops: list[dict]) -> bool:
    """Try every order (and every subset of the unanswered ops): the definition, for small histories."""
    answered = [o for o in ops if not math.isinf(o["ret"])]
    unanswered = [o for o in ops if math.isinf(o["ret"])]
    for mask in range(1 << len(unanswered)):
        chosen = answered + [o for k, o in enumerate(unanswered) if mask >> k & 1]
        for order in itertools.permutations(chosen):
            if any(a["ret"] < b["call"] for x, b in enumerate(order) for a in order[x + 1:]):
                continue
            value, fine = None, True
            for o in order:
                if o["op"] == "put":
                    value = o["value"]
                elif o["op"] == "get":
                    fine = math.isinf(o["ret"]) or o["result"] == value
                else:
                    swapped = value == o["expect"]
                    fine = math.isinf(o["ret"]) or o["result"] == swapped
                    value = o["value"] if swapped else value
                if not fine:
                    break
            if fine:
                return True
    return False


def small_random_history(rng: random.Random) -> list[dict]:
    ops = []
    for _ in range(rng.randint(1, 6)):
        call = rng.randrange(10)
        ret = INF if rng.random() < 0.15 else call + rng.randrange(4)
        kind = rng.choice(("put", "get", "cas"))
        ops.append({"client": "c", "op": kind, "key": "k", "call": call, "ret": ret, "value": rng.randrange(3),
                    "expect": rng.choice((None, 0, 1, 2)),
                    "result": rng.choice((None, 0, 1)) if kind == "get" else rng.random() < 0.5})
    return ops


def test_the_checker_agrees_with_brute_force_on_thousands_of_small_random_histories():
    rng = random.Random(7)
    verdicts = set()
    for _ in range(3000):
        ops = small_random_history(rng)
        expected = brute_force(ops)
        assert check_kv_history(ops).ok == expected, ops
        verdicts.add(expected)
    assert verdicts == {True, False}
